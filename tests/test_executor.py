"""Executor behaviour seen over HTTP: limits, order, cancel, pause."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from conftest import Server, create, wait_state, wait_until


def states_of(api: httpx.Client, worker: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in api.get("/tasks", params={"worker": worker, "limit": 1000}).json()["tasks"]:
        counts[task["state"]] = counts.get(task["state"], 0) + 1
    return counts


def test_twelve_sleepers_ten_run(api: httpx.Client) -> None:
    ids = [create(api, "sleeper", {"seconds": 60})["id"] for _ in range(12)]
    wait_until(lambda: states_of(api, "sleeper").get("running") == 10, what="10 running sleepers")
    assert states_of(api, "sleeper") == {"running": 10, "queued": 2}

    running = [task_id for task_id in ids if api.get(f"/tasks/{task_id}").json()["state"] == "running"]
    canceled = api.post(f"/tasks/{running[0]}/cancel")
    assert canceled.json()["state"] == "canceled"
    wait_until(lambda: states_of(api, "sleeper").get("running") == 10 and states_of(api, "sleeper").get("queued") == 1,
               what="a queued sleeper to start")
    assert states_of(api, "sleeper") == {"running": 10, "queued": 1, "canceled": 1}
    for task_id in ids:
        api.post(f"/tasks/{task_id}/cancel")


def test_queued_tasks_start_in_order(api: httpx.Client) -> None:
    # stubborn allows 2 at once; the third and later must start oldest first.
    ids = [create(api, "stubborn", {"seconds": 0.3})["id"] for _ in range(6)]
    for task_id in ids:
        wait_state(api, task_id, "completed")
    started = [api.get(f"/tasks/{task_id}").json()["started_at"] for task_id in ids]
    assert started == sorted(started)


def test_burst_of_posts_respects_limit(server: Server) -> None:
    def post(_: int) -> int:
        with httpx.Client(base_url=server.api, timeout=30) as client:
            return client.post("/workers/stubborn", json={"seconds": 0.5}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(post, range(100)))
    assert codes == [201] * 100

    most_running = 0
    with server.client() as api:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = states_of(api, "stubborn")
            running = counts.get("running", 0) + counts.get("paused", 0)
            most_running = max(most_running, running)
            assert running <= 2, counts
            if counts.get("completed") == 100:
                break
        assert states_of(api, "stubborn") == {"completed": 100}
    assert most_running == 2


def test_cancel_queued_task(api: httpx.Client) -> None:
    blockers = [create(api, "stubborn", {"seconds": 2})["id"] for _ in range(2)]
    queued = create(api, "stubborn", {"seconds": 2})
    assert api.get(f"/tasks/{queued['id']}").json()["state"] == "queued"
    response = api.post(f"/tasks/{queued['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert response.json()["started_at"] is None
    for task_id in blockers:
        wait_state(api, task_id, "completed")
    assert api.get(f"/tasks/{queued['id']}").json()["state"] == "canceled"


def test_cancel_running_sleeper_fast(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 60})
    wait_state(api, task["id"], "running")
    started = time.monotonic()
    response = api.post(f"/tasks/{task['id']}/cancel")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert elapsed < 1.0, f"cancel took {elapsed:.3f} s"


def test_cancel_uncooperative_task_is_202(api: httpx.Client) -> None:
    task = create(api, "stubborn", {"seconds": 4})
    wait_state(api, task["id"], "running")
    response = api.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["state"] == "running"
    assert response.json()["cancel_requested"] is True
    # The work ignored the request and returned: its completion wins.
    final = wait_state(api, task["id"], "completed")
    assert final["result"] == "done"


def test_pause_stops_progress_and_clock(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 3})
    wait_until(lambda: (api.get(f"/tasks/{task['id']}").json()["progress"]["done"] or 0) >= 1, what="first progress step")
    pause = api.post(f"/tasks/{task['id']}/pause")
    assert pause.json()["state"] == "paused"
    at_pause = api.get(f"/tasks/{task['id']}").json()["progress"]["done"]
    time.sleep(1.5)  # the paused task must not advance during this interval
    still = api.get(f"/tasks/{task['id']}").json()
    assert still["state"] == "paused"
    assert still["progress"]["done"] == at_pause
    api.post(f"/tasks/{task['id']}/resume")
    done = wait_state(api, task["id"], "completed")
    assert done["paused_time_s"] >= 1.4
    assert 2.8 <= done["run_time_s"] < 3.0 + 1.0
    assert done["result"] == {"slept_s": 3.0}


def test_cancel_paused_task(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    wait_state(api, task["id"], "running")
    api.post(f"/tasks/{task['id']}/pause")
    response = api.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"


def test_async_worker_pause_and_cancel(api: httpx.Client) -> None:
    task = create(api, "async-nap", {"seconds": 30})
    wait_state(api, task["id"], "running")
    assert api.post(f"/tasks/{task['id']}/pause").json()["state"] == "paused"
    assert api.post(f"/tasks/{task['id']}/resume").json()["state"] == "running"
    response = api.post(f"/tasks/{task['id']}/cancel")
    assert response.json()["state"] == "canceled"


def test_async_worker_completes(api: httpx.Client) -> None:
    task = create(api, "async-nap", {"seconds": 0.2})
    done = wait_state(api, task["id"], "completed")
    assert done["result"] == {"slept_s": 0.2}


def test_sync_work_does_not_block_http(api: httpx.Client) -> None:
    for _ in range(2):
        create(api, "stubborn", {"seconds": 3})
    started = time.monotonic()
    assert api.get("/workers").status_code == 200
    assert time.monotonic() - started < 1.0
