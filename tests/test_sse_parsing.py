"""Event-stream parsing and resumption of `Client.events` and `AsyncClient.events`.

A scripted HTTP server on 127.0.0.1 plays the stream, so each test controls
where the stream breaks and checks the `Last-Event-ID` the client resumes with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from scripted_server import ScriptedServer, event, json_reply, sse_reply
from tasky.client import ApiAuthError, ApiNotFound, AsyncClient, Client, ServerUnreachable, TaskEvent, WaitTimeout
from tasky.client import events as events_module

TASK = "t1"
EVENTS = f"/tasky/v1/tasks/{TASK}/events"
STATUS = f"/tasky/v1/tasks/{TASK}/status"
AT = "2026-01-02T03:04:05Z"


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    yield server
    server.stop()


def state(event_id: int | None, name: str) -> str:
    return event(event_id, "state", task_id=TASK, at=AT, state=name)


def progress(event_id: int, done: float, total: float, message: str) -> str:
    return event(event_id, "progress", task_id=TASK, at=AT, done=done, total=total, message=message)


def status_body(name: str, done: float | None = None, total: float | None = None, message: str | None = None) -> dict:
    return {
        "id": TASK,
        "worker": "sleeper",
        "state": name,
        "created_at": AT,
        "progress": {"done": done, "total": total, "percent": None, "message": message, "updated_at": None},
    }


def ids(events: list[TaskEvent]) -> list[int | None]:
    return [item.id for item in events]


def test_stream_yields_each_kind_in_order(scripted: ScriptedServer) -> None:
    scripted.on(
        EVENTS,
        sse_reply(
            state(1, "running"),
            progress(2, 1, 3, "one of three"),
            event(3, "log", task_id=TASK, at=AT, line="hello"),
            event(4, "lease", task_id=TASK, at=AT, node="n1"),
            state(5, "completed"),
        ),
    )

    received = list(Client(scripted.url).events(TASK))

    assert ids(received) == [1, 2, 3, 4, 5]
    assert [item.kind for item in received] == ["state", "progress", "log", "lease", "state"]
    assert received[0].state == "running"
    assert (received[1].done, received[1].total, received[1].message) == (1, 3, "one of three")
    assert received[2].line == "hello"
    assert received[3].data["node"] == "n1"
    assert received[4].is_terminal
    assert len(scripted.requests_to(EVENTS)) == 1


def test_stream_stops_at_terminal_state(scripted: ScriptedServer) -> None:
    scripted.on(EVENTS, sse_reply(state(1, "running"), state(2, "canceled"), ending="hold", hold_s=30))

    received = list(Client(scripted.url).events(TASK))

    assert [item.state for item in received] == ["running", "canceled"]


def test_disconnect_mid_event_resumes_after_last_id(scripted: ScriptedServer) -> None:
    partial = 'id: 3\nevent: progress\ndata: {"task_id": "t1", "do'
    scripted.on(
        EVENTS,
        sse_reply(state(1, "running"), progress(2, 1, 4, "one"), partial, ending="abort"),
        sse_reply(progress(3, 2, 4, "two"), state(4, "completed")),
    )

    received = list(Client(scripted.url).events(TASK))

    assert ids(received) == [1, 2, 3, 4]
    first, second = scripted.requests_to(EVENTS)
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "2"


def test_clean_close_before_terminal_reconnects(scripted: ScriptedServer) -> None:
    scripted.on(EVENTS, sse_reply(state(1, "running")), sse_reply(state(2, "failed")))

    received = list(Client(scripted.url).events(TASK))

    assert [item.state for item in received] == ["running", "failed"]
    assert scripted.requests_to(EVENTS)[1].headers["last-event-id"] == "1"


def test_resume_from_given_event_id(scripted: ScriptedServer) -> None:
    scripted.on(EVENTS, sse_reply(state(8, "completed")))

    received = list(Client(scripted.url).events(TASK, last_event_id=7))

    assert ids(received) == [8]
    assert scripted.requests_to(EVENTS)[0].headers["last-event-id"] == "7"


def test_multiline_data_comments_crlf_and_retry(scripted: ScriptedServer) -> None:
    raw = (
        ": keep-alive\r\n"
        "retry: 300\r\n"
        "id: 1\r\n"
        "event: log\r\n"
        'data: {"task_id": "t1",\r\n'
        'data: "line": "a line"}\r\n'
        "\r\n"
    )
    scripted.on(EVENTS, sse_reply(raw, state(2, "completed")))

    received = list(Client(scripted.url).events(TASK))

    assert received[0].kind == "log"
    assert received[0].line == "a line"
    assert received[0].id == 1
    assert received[1].is_terminal


def test_event_without_id_carries_last_id(scripted: ScriptedServer) -> None:
    scripted.on(
        EVENTS,
        sse_reply(state(5, "running"), event(None, "log", task_id=TASK, at=AT, line="no id")),
        sse_reply(state(6, "completed")),
    )

    received = list(Client(scripted.url).events(TASK))

    # As in browsers' EventSource, an event without an id field carries the last id seen.
    assert ids(received) == [5, 5, 6]
    assert scripted.requests_to(EVENTS)[1].headers["last-event-id"] == "5"


def test_missing_events_route_falls_back_to_polling(scripted: ScriptedServer) -> None:
    scripted.on(EVENTS, json_reply(404, {"error": {"code": "route_not_found", "message": "no route", "detail": None}}))
    scripted.on(
        STATUS,
        json_reply(200, status_body("queued")),
        json_reply(200, status_body("running", 1, 2, "half")),
        json_reply(200, status_body("running", 2, 2, "all")),
        json_reply(200, status_body("completed", 2, 2, "all")),
    )

    received = list(Client(scripted.url).events(TASK))

    assert [(item.kind, item.state or item.message) for item in received] == [
        ("state", "queued"),
        ("progress", "half"),
        ("state", "running"),
        ("progress", "all"),
        ("state", "completed"),
    ]
    assert ids(received) == [None] * 5
    assert len(scripted.requests_to(STATUS)) == 4


def test_unknown_task_raises_not_found(scripted: ScriptedServer) -> None:
    body = {"error": {"code": "task_not_found", "message": "no task with id 't1'", "detail": None}}
    scripted.on(EVENTS, json_reply(404, body))

    with pytest.raises(ApiNotFound) as caught:
        list(Client(scripted.url).events(TASK))

    assert caught.value.code == "task_not_found"
    assert caught.value.status == 404
    assert caught.value.message == "no task with id 't1'"


def test_rejected_token_raises_auth_error(scripted: ScriptedServer) -> None:
    body = {"error": {"code": "unauthorized", "message": "invalid API token", "detail": None}}
    scripted.on(EVENTS, json_reply(401, body))

    with pytest.raises(ApiAuthError) as caught:
        list(Client(scripted.url, token="wrong").events(TASK))

    assert caught.value.status == 401
    assert scripted.requests_to(EVENTS)[0].headers["authorization"] == "Bearer wrong"


def test_silent_stream_times_out(scripted: ScriptedServer) -> None:
    scripted.on(EVENTS, sse_reply(state(1, "running"), ending="hold", hold_s=30))

    with pytest.raises(WaitTimeout) as caught:
        list(Client(scripted.url).events(TASK, timeout_s=0.5))

    assert caught.value.task_id == TASK
    assert caught.value.state == "running"


def test_server_gone_raises_unreachable(scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "RECONNECT_GIVE_UP_S", 0.5)
    scripted.on(EVENTS, sse_reply(state(1, "running"), ending="abort"))
    stream = Client(scripted.url).events(TASK)

    assert next(stream).state == "running"
    scripted.stop()
    with pytest.raises(ServerUnreachable) as caught:
        next(stream)

    assert caught.value.url == scripted.url


def test_async_disconnect_resumes_after_last_id(scripted: ScriptedServer) -> None:
    scripted.on(
        EVENTS,
        sse_reply(state(1, "running"), 'id: 2\nevent: state\ndata: {"ta', ending="abort"),
        sse_reply(progress(2, 1, 1, "done"), state(3, "completed")),
    )

    async def collect() -> list[TaskEvent]:
        async with AsyncClient(scripted.url) as client:
            return [item async for item in client.events(TASK)]

    received = asyncio.run(collect())

    assert ids(received) == [1, 2, 3]
    assert scripted.requests_to(EVENTS)[1].headers["last-event-id"] == "1"


def test_async_polling_fallback_and_timeout(scripted: ScriptedServer) -> None:
    scripted.on(STATUS, json_reply(200, status_body("running", 1, 10, "slow")))

    async def follow() -> list[TaskEvent]:
        received: list[TaskEvent] = []
        async with AsyncClient(scripted.url) as client:
            with pytest.raises(WaitTimeout):
                async for item in client.events(TASK, timeout_s=0.6):
                    received.append(item)
        return received

    received = asyncio.run(follow())

    assert [(item.kind, item.state or item.message) for item in received] == [("progress", "slow"), ("state", "running")]
    assert len(scripted.requests_to(STATUS)) >= 2


def test_malformed_event_fields_stay_in_data(scripted: ScriptedServer) -> None:
    scripted.on(EVENTS, sse_reply(event(1, "progress", task_id=TASK, done="half"), state(2, "completed")))

    received = list(Client(scripted.url).events(TASK))

    assert received[0].kind == "progress"
    assert received[0].done is None
    assert received[0].data["done"] == "half"
    assert received[1].is_terminal
