"""Task logs and the Server-Sent Events streams, against a real server."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Callable

import httpx

from conftest import Server, create, wait_state
from sse import SSE, read_events

STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def collect(server: Server, path: str, headers: dict[str, str] | None = None, stop_after: int | None = None) -> list[SSE]:
    """Read a stream until the server ends it, or until `stop_after` events (then disconnect)."""
    events: list[SSE] = []
    with httpx.Client(base_url=server.api, timeout=STREAM_TIMEOUT) as client:
        with client.stream("GET", path, headers=headers or {}) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in read_events(response):
                events.append(event)
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events


# Logs ------------------------------------------------------------------------


def test_logs_paged_with_after(api: httpx.Client) -> None:
    task = create(api, "chatty", {"lines": 25})
    wait_state(api, task["id"], "completed")
    first = api.get(f"/tasks/{task['id']}/logs", params={"limit": 10}).json()
    assert [line["seq"] for line in first["lines"]] == list(range(1, 11))
    assert first["lines"][0]["line"].startswith("line 1 ")
    assert first["lines"][0]["at"].endswith("Z")
    assert first["next_after"] == 10
    assert first["truncated"] is False
    rest = api.get(f"/tasks/{task['id']}/logs", params={"after": 20, "limit": 10}).json()
    assert [line["seq"] for line in rest["lines"]] == list(range(21, 26))
    assert rest["next_after"] is None


def test_logs_cap_marks_the_cut(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server("--workers", "jobs", env={"TASKY_TASK_LOGS__MAX_LINES": "5", "TASKY_TASK_LOGS__MAX_LINE_CHARS": "100"})
    with server.client() as api:
        task = create(api, "chatty", {"lines": 12, "width": 300})
        wait_state(api, task["id"], "completed")
        body = api.get(f"/tasks/{task['id']}/logs").json()
        events = collect(server, f"/tasks/{task['id']}/events")
    assert len(body["lines"]) == 5
    assert body["truncated"] is True
    assert body["dropped_lines"] == 7
    assert body["max_lines"] == 5
    assert all(len(line["line"]) == 100 for line in body["lines"])
    assert body["lines"][0]["line"].endswith("[... 300 characters, cut to 100]")
    cuts = [event for event in events if event.event == "log_truncated"]
    assert len(cuts) == 1
    assert cuts[0].data["after_seq"] == 5


def test_logs_of_ctx_run_output(api: httpx.Client) -> None:
    task = create(api, "shell", {"script": "echo first; echo second"})
    wait_state(api, task["id"], "completed")
    lines = [line["line"] for line in api.get(f"/tasks/{task['id']}/logs").json()["lines"]]
    assert any(line.endswith("first") for line in lines)
    assert any(line.endswith("second") for line in lines)


def test_logs_bad_parameters(api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    assert api.get(f"/tasks/{task['id']}/logs", params={"after": -1}).status_code == 400
    assert api.get(f"/tasks/{task['id']}/logs", params={"limit": 0}).status_code == 400
    assert api.get(f"/tasks/{task['id']}/logs", params={"afterr": 1}).json()["error"]["code"] == "invalid_parameter"
    missing = api.get("/tasks/no-such-task/logs")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "task_not_found"


# One task's stream -------------------------------------------------------------


def test_stream_shows_sleeper_to_the_end(server: Server, api: httpx.Client) -> None:
    task = create(api, "sleeper", {"seconds": 2})
    events = collect(server, f"/tasks/{task['id']}/events")
    states = [event.data["state"] for event in events if event.event == "state"]
    assert states[0] == "queued"
    assert "running" in states
    assert states[-1] == "completed"
    assert events[-1].event == "state"  # the stream ends right after the terminal state
    progress = [event.data for event in events if event.event == "progress"]
    assert progress[-1]["done"] == 2
    assert progress[-1]["total"] == 2
    assert "slept" in progress[-1]["message"]
    ids = [event.id for event in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(event.data["task_id"] == task["id"] and event.data["at"] for event in events)


def test_stream_resume_gets_each_event_once(server: Server, api: httpx.Client) -> None:
    task = create(api, "chatty", {"lines": 30, "interval_s": 0.05})
    path = f"/tasks/{task['id']}/events"
    first = collect(server, path, stop_after=8)
    second = collect(server, path, headers={"Last-Event-ID": str(first[-1].id)}, stop_after=10)
    third = collect(server, f"{path}?last_event_id={second[-1].id}")
    received = [event.id for event in [*first, *second, *third]]
    everything = [event.id for event in collect(server, path)]
    assert received == everything
    assert len(set(received)) == len(received)
    logged = [event.data["line"] for event in [*first, *second, *third] if event.event == "log"]
    assert len(logged) == 30
    assert third[-1].data["state"] == "completed"


def test_stream_of_finished_task_replays_and_ends(server: Server, api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1, "b": 2})
    wait_state(api, task["id"], "completed")
    events = collect(server, f"/tasks/{task['id']}/events")
    assert [event.data["state"] for event in events if event.event == "state"] == ["queued", "running", "completed"]
    assert collect(server, f"/tasks/{task['id']}/events", headers={"Last-Event-ID": str(events[-1].id)}) == []


def test_stream_rejects_bad_requests(server: Server, api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    bad = api.get(f"/tasks/{task['id']}/events", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.json()["error"]["message"]
    missing = api.get("/tasks/no-such-task/events")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "task_not_found"


def test_unread_stream_does_not_block_tasks(server: Server, api: httpx.Client) -> None:
    task = create(api, "chatty", {"lines": 3000, "width": 500})
    with httpx.Client(base_url=server.api, timeout=STREAM_TIMEOUT) as client:
        with client.stream("GET", f"/tasks/{task['id']}/events") as response:
            assert response.status_code == 200
            # Read nothing: about 1.5 MB of events pile up behind this client.
            done = wait_state(api, task["id"], "completed", timeout_s=60)
            other = create(api, "add", {"a": 2, "b": 2})
            assert wait_state(api, other["id"], "completed")["result"] == 4
    assert done["result"] == 3000


# Every task's stream -----------------------------------------------------------


def test_all_events_filtered_by_worker(server: Server, api: httpx.Client) -> None:
    received: list[SSE] = []
    opened = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=server.api, timeout=STREAM_TIMEOUT) as client:
            with client.stream("GET", "/events", params={"worker": "add"}) as response:
                opened.set()
                for event in read_events(response):
                    received.append(event)
                    if event.event == "state" and event.data["state"] == "completed":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)
    create(api, "fail", {})
    task = create(api, "add", {"a": 5})
    listener.join(20)
    assert not listener.is_alive()
    assert {event.data["worker"] for event in received} == {"add"}
    assert {event.event for event in received} == {"state"}
    assert [event.data["state"] for event in received if event.data["task_id"] == task["id"]][-1] == "completed"


def test_all_events_resume_from_id(server: Server, api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    wait_state(api, task["id"], "completed")
    history = collect(server, f"/tasks/{task['id']}/events")
    queued_id = history[0].id
    replay = collect(server, "/events", headers={"Last-Event-ID": str(queued_id)}, stop_after=2)
    assert [event.data["state"] for event in replay] == ["running", "completed"]
    assert [event.id for event in replay] == [event.id for event in history[1:]]


def test_shutdown_ends_open_streams(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "jobs", "--shutdown-grace", "30")
    opened, ended = threading.Event(), threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=server.api, timeout=STREAM_TIMEOUT) as client:
            with client.stream("GET", "/events") as response:
                opened.set()
                list(read_events(response))
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(10)
    started = time.monotonic()
    assert server.stop(signal.SIGTERM, timeout_s=60) == 0
    assert ended.wait(5)
    # Without ending the streams, uvicorn waits shutdown_grace + 5 s (35 s) for them to close.
    assert time.monotonic() - started < 20


def test_huge_resume_ids_are_400(api: httpx.Client) -> None:
    task = create(api, "add", {"a": 1})
    huge = str(2**64)
    assert api.get(f"/tasks/{task['id']}/logs", params={"after": huge}).status_code == 400
    assert api.get(f"/tasks/{task['id']}/events", headers={"Last-Event-ID": huge}).status_code == 400
    assert api.get("/events", params={"last_event_id": huge}).status_code == 400


def test_events_unknown_worker_is_404(api: httpx.Client) -> None:
    response = api.get("/events", params={"worker": "nosuch"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "worker_not_found"
