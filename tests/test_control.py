"""Task control over HTTP: edit, hold, restart, timeouts, retries, processes, switches."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest

from conftest import Server, create, wait_state, wait_until


def read_pid(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip(), what=f"pid file {path}")
    return int(path.read_text())


def process_gone(pid: int) -> bool:
    """True once no process (not even a zombie) has this pid."""
    return not psutil.pid_exists(pid)


def test_edit_queued_task_with_etag(api: httpx.Client) -> None:
    task = api.post("/workers/sleeper?hold=true", json={"seconds": 5}).json()
    read = api.get(f"/tasks/{task['id']}")
    tag = read.headers["etag"]
    edited = api.put(f"/tasks/{task['id']}", json={"seconds": 7}, headers={"If-Match": tag})
    assert edited.status_code == 200
    assert edited.json()["config"] == {"seconds": 7.0}
    assert edited.headers["etag"] != tag
    stale = api.put(f"/tasks/{task['id']}", json={"seconds": 9}, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.json()["error"]["detail"]["etag"] == edited.headers["etag"]
    assert api.get(f"/tasks/{task['id']}").json()["config"] == {"seconds": 7.0}
    without = api.put(f"/tasks/{task['id']}", json={"seconds": 8})
    assert without.status_code == 200
    assert without.json()["config_version"] == 3


def test_edit_invalid_or_started(api: httpx.Client) -> None:
    held = api.post("/workers/sleeper?hold=true", json={"seconds": 5}).json()
    invalid = api.put(f"/tasks/{held['id']}", json={"seconds": "soon"})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["detail"][0]["field"] == "seconds"
    running = create(api, "sleeper", {"seconds": 30})
    wait_state(api, running["id"], "running")
    started = api.put(f"/tasks/{running['id']}", json={"seconds": 1})
    assert started.status_code == 409
    assert started.json()["error"]["detail"]["state"] == "running"
    api.post(f"/tasks/{running['id']}/cancel")


def test_hold_then_run(api: httpx.Client) -> None:
    response = api.post("/workers/add", params={"hold": "true"}, json={"a": 1, "b": 1})
    assert response.status_code == 201
    task = response.json()
    assert task["state"] == "held"
    time.sleep(0.3)  # a held task must not start on its own during this interval
    assert api.get(f"/tasks/{task['id']}").json()["state"] == "held"
    released = api.post(f"/tasks/{task['id']}/actions", json={"action": "run"})
    assert released.status_code == 200
    assert wait_state(api, task["id"], "completed")["result"] == 2
    again = api.post(f"/tasks/{task['id']}/run")
    assert again.status_code == 409


def test_cancel_held_task(api: httpx.Client) -> None:
    task = api.post("/workers/add?hold=1", json={"a": 1}).json()
    assert api.post(f"/tasks/{task['id']}/cancel").json()["state"] == "canceled"


def test_restart_links_both_ways(api: httpx.Client) -> None:
    original = create(api, "add", {"a": 20, "b": 1})
    wait_state(api, original["id"], "completed")
    response = api.post(f"/tasks/{original['id']}/actions", json={"action": "restart"})
    assert response.status_code == 201
    copy = response.json()
    assert response.headers["location"] == f"/tasky/v1/tasks/{copy['id']}"
    assert copy["restart_of"] == original["id"]
    assert copy["config"] == original["config"]
    assert api.get(f"/tasks/{original['id']}").json()["restarted_as"] == copy["id"]
    assert wait_state(api, copy["id"], "completed")["result"] == 21
    twice = api.post(f"/tasks/{original['id']}/restart")
    assert twice.status_code == 409
    assert copy["id"] in twice.json()["error"]["message"]


def test_restart_running_is_409(api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 30})
    wait_state(api, task["id"], "running")
    response = api.post(f"/tasks/{task['id']}/restart")
    assert response.status_code == 409
    assert response.json()["error"]["detail"]["state"] == "running"
    api.post(f"/tasks/{task['id']}/cancel")


def test_worker_timeout_thread_task(api: httpx.Client) -> None:
    task = create(api, "slowpoke", {"seconds": 30})
    done = wait_state(api, task["id"], {"timed_out", "completed", "failed"})
    assert done["state"] == "timed_out"
    assert done["error"]["reason"] == "timeout"
    assert 0.9 <= done["run_time_s"] < 5


def test_task_timeout_override(api: httpx.Client) -> None:
    response = api.post("/workers/sleeper", params={"timeout": 0.5}, json={"seconds": 30})
    assert response.json()["timeout_s"] == 0.5
    done = wait_state(api, response.json()["id"], {"timed_out", "completed"})
    assert done["state"] == "timed_out"
    assert api.post("/workers/sleeper", params={"timeout": -1}, json={}).status_code == 400


def test_timeout_leaves_out_paused_time(api: httpx.Client) -> None:
    task = api.post("/workers/sleeper", params={"timeout": 2.5}, json={"seconds": 2}).json()
    wait_state(api, task["id"], "running")
    api.post(f"/tasks/{task['id']}/pause")
    time.sleep(3)  # paused longer than the timeout; this time must not count
    api.post(f"/tasks/{task['id']}/resume")
    done = wait_state(api, task["id"], {"completed", "timed_out"})
    assert done["state"] == "completed"
    assert done["paused_time_s"] >= 2.9


def test_retries_with_backoff(api: httpx.Client, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    task = create(api, "flaky", {"counter": str(counter), "failures": 2})
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    assert done["result"] == 3
    assert done["attempt"] == 3
    history = api.get(f"/tasks/{task['id']}/attempts").json()["attempts"]
    assert [item["outcome"] for item in history] == ["failed", "failed", "completed"]
    assert history[0]["error"]["message"] == "attempt 1 failed on purpose"
    assert history[1]["error"]["type"] == "OSError"
    first_end = datetime.fromisoformat(history[0]["finished_at"])
    second_start = datetime.fromisoformat(history[1]["started_at"])
    assert (second_start - first_end).total_seconds() >= 0.25


def test_retry_status_shows_next_attempt(api: httpx.Client, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    task = create(api, "flaky", {"counter": str(counter), "failures": 1})
    waiting = wait_until(
        lambda: (body := api.get(f"/tasks/{task['id']}/status").json())["attempt"] == 2 and body, what="second attempt"
    )
    assert waiting["state"] in ("queued", "running", "completed")
    if waiting["state"] == "queued":
        assert waiting["next_attempt_at"] is not None
    assert wait_state(api, task["id"], "completed")["attempt"] == 2


def test_no_retry_for_other_errors(api: httpx.Client, tmp_path: Path) -> None:
    task = create(api, "flaky", {"counter": str(tmp_path / "c"), "failures": 5, "kind": "value"})
    done = wait_state(api, task["id"], {"completed", "failed"})
    assert done["state"] == "failed"
    assert done["attempt"] == 1


def test_retries_exhausted_fail(api: httpx.Client, tmp_path: Path) -> None:
    task = create(api, "flaky", {"counter": str(tmp_path / "c"), "failures": 5})
    done = wait_state(api, task["id"], "failed")
    assert done["attempt"] == 3
    assert done["error"]["message"] == "attempt 3 failed on purpose"


def test_process_task_progress_and_logs(api: httpx.Client, tmp_path: Path, server: Server) -> None:
    pid_file = tmp_path / "pid"
    task = create(api, "proc-sleep", {"seconds": 1.0, "pid_file": str(pid_file)})
    done = wait_state(api, task["id"], {"completed", "failed"}, timeout_s=20)
    assert done["state"] == "completed", done["error"]
    assert done["result"]["pid"] == read_pid(pid_file)
    assert done["result"]["pid"] != server.process.pid
    assert done["progress"]["done"] == done["progress"]["total"] == 10


def test_process_cancel_ignoring_sigterm(api: httpx.Client, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = create(api, "proc-sleep", {"seconds": 60, "ignore_term": True, "pid_file": str(pid_file)})
    pid = read_pid(pid_file)
    wait_state(api, task["id"], "running")
    started = time.monotonic()
    api.post(f"/tasks/{task['id']}/cancel")
    wait_until(lambda: process_gone(pid), timeout_s=5, what=f"process {pid} to exit")
    assert time.monotonic() - started < 1.0 + 1.0 + 0.5  # grace of 1 s, plus 1 s, plus slack for a busy machine
    done = wait_state(api, task["id"], "canceled")
    assert done["state"] == "canceled"
    ps = subprocess.run(["ps", "-eo", "pid,stat"], capture_output=True, text=True, check=True).stdout
    assert not any(line.split()[0] == str(pid) for line in ps.splitlines()[1:])


def test_process_timeout_kills_child(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--workers", "jobs")
    pid_file = tmp_path / "pid"
    with server.client() as api:
        task = api.post("/workers/proc-sleep", params={"timeout": 1}, json={"seconds": 60, "ignore_term": True, "pid_file": str(pid_file)}).json()
        pid = read_pid(pid_file)
        done = wait_state(api, task["id"], {"timed_out", "failed", "completed"}, timeout_s=15)
    assert done["state"] == "timed_out"
    wait_until(lambda: process_gone(pid), timeout_s=5, what=f"process {pid} to exit")


def test_process_pause_stops_cpu(api: httpx.Client, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = create(api, "proc-spin", {"pid_file": str(pid_file), "seconds": 60})
    child = psutil.Process(read_pid(pid_file))
    wait_until(lambda: child.cpu_times().user > 0.2, what="child to use CPU")
    api.post(f"/tasks/{task['id']}/pause")
    wait_until(lambda: child.status() == psutil.STATUS_STOPPED, what="child to stop")
    before = sum(child.cpu_times()[:2])
    time.sleep(1.0)  # a stopped process must not gain CPU time during this interval
    assert sum(child.cpu_times()[:2]) == before
    api.post(f"/tasks/{task['id']}/resume")
    wait_until(lambda: sum(child.cpu_times()[:2]) > before + 0.1, what="child to use CPU again")
    api.post(f"/tasks/{task['id']}/cancel")
    wait_state(api, task["id"], "canceled")


@pytest.mark.parametrize(("how", "expected"), [("exit", "status 3"), ("kill", "SIGKILL")])
def test_crashing_child_fails_task(api: httpx.Client, how: str, expected: str) -> None:
    task = create(api, "proc-crash", {"how": how})
    done = wait_state(api, task["id"], {"failed", "completed"}, timeout_s=20)
    assert done["state"] == "failed"
    assert done["error"]["type"] == "ChildProcessDied"
    assert expected in done["error"]["message"]


def test_ctx_run_logs_and_cancel_kills_group(api: httpx.Client, tmp_path: Path) -> None:
    ok = create(api, "shell", {"script": "echo hello; echo oops >&2"})
    assert wait_state(api, ok["id"], {"completed", "failed"})["result"] == 0

    pid_file = tmp_path / "sleep.pid"
    task = create(api, "shell", {"script": f"sleep 60 & echo $! > {pid_file}; wait"})
    pid = read_pid(pid_file)
    wait_state(api, task["id"], "running")
    assert api.post(f"/tasks/{task['id']}/cancel").json()["state"] == "canceled"
    wait_until(lambda: process_gone(pid), timeout_s=5, what=f"sleep {pid} to exit")


def test_ctx_run_failure_is_task_error(api: httpx.Client) -> None:
    task = create(api, "shell", {"script": "exit 4"})
    done = wait_state(api, task["id"], {"failed", "completed"})
    assert done["state"] == "failed"
    assert "status 4" in done["error"]["message"]


def test_disable_and_enable_worker(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--workers", "jobs")
    with server.client() as api:
        blocker = [create(api, "stubborn", {"seconds": 1})["id"] for _ in range(2)]
        waiting = create(api, "stubborn", {"seconds": 0.1})
        response = api.post("/workers/stubborn/actions", json={"action": "disable", "reason": "maintenance"})
        assert response.status_code == 200
        assert response.json()["status"] == "disabled"
        rejected = api.post("/workers/stubborn", json={})
        assert rejected.status_code == 409
        assert "maintenance" in rejected.json()["error"]["message"]
        for task_id in blocker:
            wait_state(api, task_id, "completed")
        assert api.get(f"/tasks/{waiting['id']}").json()["state"] == "queued"
    server.stop()

    again = start_server("--workers", "jobs", folder=server.folder)
    with again.client() as api:
        assert api.get("/workers/stubborn/info").json()["status"] == "disabled"
        assert api.post("/workers/stubborn/actions", json={"action": "enable"}).json()["status"] == "enabled"
        wait_state(api, waiting["id"], "completed")
        assert api.post("/workers/stubborn/actions", json={"action": "explode"}).status_code == 422


def test_bounded_queue_rejects_with_429(api: httpx.Client) -> None:
    ids = [create(api, "bounded", {"seconds": 30})["id"]]
    wait_state(api, ids[0], "running")
    ids += [create(api, "bounded", {"seconds": 30})["id"] for _ in range(2)]
    full = api.post("/workers/bounded", json={"seconds": 30})
    assert full.status_code == 429
    assert int(full.headers["retry-after"]) >= 1
    assert full.json()["error"]["code"] == "queue_full"
    api.post(f"/tasks/{ids[1]}/cancel")
    assert api.post("/workers/bounded", json={"seconds": 30}).status_code == 201


def test_idempotency_key(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "order-17"}
    first = api.post("/workers/add", json={"a": 1}, headers=headers)
    assert first.status_code == 201
    repeat = api.post("/workers/add", json={"a": 1}, headers=headers)
    assert repeat.status_code == 200
    assert repeat.json()["id"] == first.json()["id"]
    other = api.post("/workers/add", json={"a": 2}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    listed = api.get("/tasks", params={"worker": "add"}).json()["tasks"]
    assert len(listed) == 1


def test_sigterm_drains_within_grace(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--workers", "jobs", "--examples", "--shutdown-grace", "3")
    with server.client() as api:
        quick = create(api, "sleeper", {"seconds": 1})
        slow = create(api, "sleeper", {"seconds": 60})
        fragile = create(api, "fragile-nap", {"seconds": 60})
        queued = [create(api, "stubborn", {"seconds": 30}) for _ in range(3)]
        for task in (quick, slow, fragile):
            wait_state(api, task["id"], "running")
    assert server.stop(signal.SIGTERM) == 0

    again = start_server("--workers", "jobs", "--examples", folder=server.folder)
    with again.client() as api:
        assert api.get(f"/tasks/{quick['id']}").json()["state"] == "completed"
        assert api.get(f"/tasks/{slow['id']}").json()["attempt"] == 2
        assert api.get(f"/tasks/{fragile['id']}").json()["state"] == "failed"
        states = [api.get(f"/tasks/{task['id']}").json()["state"] for task in queued]
        assert states.count("failed") == 2  # two were running, and stubborn is not restartable
        assert all(state in ("failed", "queued", "running") for state in states)


def test_cancel_racing_completion_one_winner(api: httpx.Client) -> None:
    for _ in range(40):
        task = create(api, "async-nap", {"seconds": 0.01})
        response = api.post(f"/tasks/{task['id']}/cancel")
        final = wait_state(api, task["id"], {"completed", "canceled"})
        if response.status_code == 200:
            assert response.json()["state"] == "canceled"
            assert final["state"] == "canceled"
        else:
            assert response.status_code == 409
            assert response.json()["error"]["detail"]["state"] == final["state"] == "completed"


def test_two_cancels_at_once_agree(server: Server) -> None:
    with server.client() as api:
        task = create(api, "sleeper", {"seconds": 30})
        wait_state(api, task["id"], "running")

    def cancel(_: int) -> tuple[int, str]:
        with server.client() as client:
            response = client.post(f"/tasks/{task['id']}/cancel")
            body = response.json()
            return response.status_code, body.get("state") or body["error"]["detail"]["state"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(cancel, range(4)))
    with server.client() as api:
        final = api.get(f"/tasks/{task['id']}").json()["state"]
    assert final == "canceled"
    assert all(state == "canceled" for _, state in answers)
    assert {code for code, _ in answers} <= {200, 409}
    assert os.path.exists(server.store)
