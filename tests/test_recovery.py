"""A killed server loses no task and leaves none running."""

from __future__ import annotations

import signal

from conftest import create, wait_state


def test_kill_9_then_restart(start_server, copy_root) -> None:  # type: ignore[no-untyped-def]
    args = ("--workers", "jobs", "--examples", "--copy-root", str(copy_root))
    first = start_server(*args)
    with first.client() as api:
        restartable = create(api, "sleeper", {"seconds": 60})
        fragile = create(api, "fragile-nap", {"seconds": 60})
        paused = create(api, "sleeper", {"seconds": 60})
        for task in (restartable, fragile, paused):
            wait_state(api, task["id"], "running")
        api.post(f"/tasks/{paused['id']}/pause")
        queued = [create(api, "stubborn", {"seconds": 30}) for _ in range(3)]
        done = create(api, "add", {"a": 1})
        wait_state(api, done["id"], "completed")
    first.stop(signal.SIGKILL)

    second = start_server(*args, folder=first.folder)
    with second.client() as api:
        tasks = {task["id"]: task for task in api.get("/tasks", params={"limit": 100}).json()["tasks"]}
        assert len(tasks) == 7
        for task_id in (restartable["id"], paused["id"]):
            assert tasks[task_id]["state"] in ("queued", "running")
            assert tasks[task_id]["attempt"] == 2
        assert tasks[fragile["id"]]["state"] == "failed"
        assert tasks[fragile["id"]]["error"]["reason"] == "interrupted"
        assert f"recovered task {fragile['id']} of worker fragile-nap" in second.log()
        assert f"recovered task {restartable['id']} of worker sleeper" in second.log()
        assert tasks[done["id"]]["state"] == "completed"
        # stubborn is not restartable: the two that ran fail, the queued one still runs.
        stubborn_states = sorted(tasks[task["id"]]["state"] for task in queued)
        assert stubborn_states.count("failed") == 2
        assert stubborn_states.count("failed") + stubborn_states.count("running") + stubborn_states.count("queued") == 3
        wait_state(api, restartable["id"], "running")
        assert api.post(f"/tasks/{restartable['id']}/cancel").json()["state"] == "canceled"

        running_nodes = {task["node"] for task in api.get("/tasks", params={"state": "running,paused"}).json()["tasks"]}
        assert running_nodes <= {second_node(api)}


def second_node(api) -> str:  # type: ignore[no-untyped-def]
    import httpx

    base = str(api.base_url).removesuffix("/tasky/v1/")
    return httpx.get(f"{base}/readyz").json()["node"]


def test_sigterm_interrupts_and_exits_zero(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--workers", "jobs", "--examples", "--shutdown-grace", "0.5")
    with server.client() as api:
        restartable = create(api, "sleeper", {"seconds": 60})
        fragile = create(api, "fragile-nap", {"seconds": 60})
        wait_state(api, restartable["id"], "running")
        wait_state(api, fragile["id"], "running")
    assert server.stop(signal.SIGTERM) == 0

    again = start_server("--workers", "jobs", "--examples", folder=server.folder)
    with again.client() as api:
        assert api.get(f"/tasks/{fragile['id']}").json()["state"] == "failed"
        assert api.get(f"/tasks/{restartable['id']}").json()["attempt"] == 2
