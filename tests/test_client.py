"""`tasky.Client` and `tasky.AsyncClient` against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import Server, free_port, wait_state
from scripted_server import ScriptedServer, json_reply
from tasky import AsyncClient, Client
from tasky.client import (
    ApiConflict,
    ApiInvalidConfig,
    ApiNotFound,
    ApiServerError,
    ServerUnreachable,
    TaskInfo,
    WaitTimeout,
    WorkerInfo,
)
from tasky.task import TaskState


@pytest.fixture
def client(server: Server):
    with Client(server.url) as opened:
        yield opened


def test_workers_are_typed(client: Client) -> None:
    found = {item.name: item for item in client.workers()}

    assert isinstance(found["sleeper"], WorkerInfo)
    assert found["sleeper"].limits is not None
    assert found["sleeper"].limits.max_tasks == 10
    assert "seconds" in found["sleeper"].config_schema["properties"]


def test_worker_info(client: Client) -> None:
    described = client.worker_info("add")

    assert described.name == "add"
    assert described.config_schema["required"] == ["a"]


def test_submit_and_wait(client: Client) -> None:
    created = client.submit("add", {"a": 2, "b": 5})

    finished = client.wait(created.id, timeout_s=30)

    assert isinstance(created, TaskInfo)
    assert created.state in (TaskState.QUEUED, TaskState.RUNNING, TaskState.COMPLETED)
    assert created.config == {"a": 2, "b": 5}
    assert finished.state == TaskState.COMPLETED
    assert finished.result == 7
    assert client.result(created.id).result == 7
    assert client.status(created.id).is_finished


def test_events_end_with_terminal_state(client: Client) -> None:
    created = client.submit("sleeper", {"seconds": 1.2})

    received = list(client.events(created.id, timeout_s=30))

    assert received[-1].kind == "state"
    assert received[-1].state == "completed"
    progress = [item for item in received if item.kind == "progress"]
    assert progress
    assert progress[-1].done == pytest.approx(1.2)


def test_list_tasks_filters_and_pages(client: Client) -> None:
    first = client.submit("add", {"a": 1})
    second = client.submit("add", {"a": 2})
    failing = client.submit("fail", {})
    for task in (first, second, failing):
        client.wait(task.id, timeout_s=30)

    completed = client.tasks(state="completed", worker="add")
    page_one = client.tasks(limit=2)
    page_two = client.tasks(limit=2, cursor=page_one.next_cursor)
    failed = client.tasks(state=["failed", "canceled"])

    assert [task.id for task in completed.tasks] == [second.id, first.id]
    assert [task.id for task in page_one.tasks] == [failing.id, second.id]
    assert [task.id for task in page_two.tasks] == [first.id]
    assert [task.id for task in failed.tasks] == [failing.id]


def test_cancel_pause_resume(client: Client, server: Server) -> None:
    created = client.submit("sleeper", {"seconds": 30})
    with server.client() as api:
        wait_state(api, created.id, "running")

    paused = client.pause(created.id)
    resumed = client.resume(created.id)
    canceled = client.cancel(created.id)

    assert paused.state == TaskState.PAUSED
    assert resumed.state == TaskState.RUNNING
    assert canceled.state == TaskState.CANCELED or canceled.cancel_requested
    assert client.wait(created.id, timeout_s=30).state == TaskState.CANCELED


def test_errors_carry_code_message_and_status(client: Client) -> None:
    with pytest.raises(ApiNotFound) as not_found:
        client.worker_info("copyfiel")
    with pytest.raises(ApiInvalidConfig) as invalid:
        client.submit("add", {"a": "x"})
    running = client.submit("sleeper", {"seconds": 30})
    with pytest.raises(ApiConflict) as conflict:
        client.result(running.id)
    client.cancel(running.id)

    assert not_found.value.status == 404
    assert not_found.value.code == "worker_not_found"
    assert "copyfiel" in not_found.value.message
    assert isinstance(not_found.value, LookupError)
    assert invalid.value.status == 422
    assert invalid.value.detail[0]["field"] == "a"
    assert conflict.value.status == 409
    assert conflict.value.state in ("queued", "running")


def test_unreachable_server_names_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ServerUnreachable) as caught:
        Client(url).workers()

    assert caught.value.url == url
    assert caught.value.reason == "connection refused"
    assert isinstance(caught.value, ConnectionError)


def test_wait_timeout_leaves_task_running(client: Client) -> None:
    created = client.submit("sleeper", {"seconds": 30})

    with pytest.raises(WaitTimeout) as caught:
        client.wait(created.id, timeout_s=0.5)

    assert caught.value.task_id == created.id
    assert client.status(created.id).state in (TaskState.QUEUED, TaskState.RUNNING)
    client.cancel(created.id)


def test_url_and_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = ScriptedServer().on("/tasky/v1/workers", json_reply(200, {"workers": []})).start()
    monkeypatch.setenv("TASKY_URL", scripted.url + "/tasky/v1/")
    monkeypatch.setenv("TASKY_TOKEN", "s3cret")
    try:
        with Client() as client:
            assert client.workers() == []
            assert client.connection.url == scripted.url
            assert "s3cret" not in repr(client.connection)
    finally:
        scripted.stop()

    assert scripted.requests[0].headers["authorization"] == "Bearer s3cret"


def test_argument_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKY_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("TASKY_TOKEN", raising=False)

    client = Client("http://127.0.0.1:2", token="given")

    assert client.connection.url == "http://127.0.0.1:2"
    assert client.connection.token == "given"
    assert Client().connection.token is None


def test_async_client_paths(server: Server) -> None:
    async def scenario() -> dict[str, object]:
        async with AsyncClient(server.url) as client:
            seen: dict[str, object] = {"workers": [item.name for item in await client.workers()]}
            created = await client.submit("add", {"a": 40, "b": 2})
            seen["states"] = [item.state async for item in client.events(created.id, timeout_s=30) if item.kind == "state"]
            seen["finished"] = await client.wait(created.id, timeout_s=30)
            sleeper = await client.submit("sleeper", {"seconds": 30})
            seen["canceled"] = await client.cancel(sleeper.id)
            try:
                await client.task("no-such-task")
            except ApiNotFound as exc:
                seen["error"] = exc
            return seen

    seen = asyncio.run(scenario())

    finished, canceled = seen["finished"], seen["canceled"]
    assert isinstance(finished, TaskInfo)
    assert isinstance(canceled, TaskInfo)
    assert "add" in seen["workers"]  # type: ignore[operator]
    assert seen["states"][-1] == "completed"  # type: ignore[index]
    assert finished.result == 42
    assert canceled.state == TaskState.CANCELED or canceled.cancel_requested
    assert isinstance(seen["error"], ApiNotFound)


def test_async_unreachable() -> None:
    async def scenario() -> None:
        async with AsyncClient(f"http://127.0.0.1:{free_port()}") as client:
            await client.tasks()

    with pytest.raises(ServerUnreachable):
        asyncio.run(scenario())


def test_event_ids_resume_on_real_server(client: Client) -> None:
    created = client.submit("sleeper", {"seconds": 2})
    stream = client.events(created.id, timeout_s=30)
    first = next(stream)
    stream.close()

    rest = list(client.events(created.id, last_event_id=first.id, timeout_s=30))

    assert first.id is not None
    assert all(item.id is not None and item.id > first.id for item in rest)
    assert rest[-1].state == "completed"


def test_async_event_resume_on_real_server(server: Server) -> None:
    async def scenario() -> tuple[int, list[int]]:
        async with AsyncClient(server.url) as client:
            created = await client.submit("sleeper", {"seconds": 2})
            stream = client.events(created.id, timeout_s=30)
            first = await anext(stream)
            await stream.aclose()
            rest = [item async for item in client.events(created.id, last_event_id=first.id, timeout_s=30)]
            return first.id, [item.id for item in rest]

    first_id, rest_ids = asyncio.run(scenario())

    assert rest_ids
    assert min(rest_ids) > first_id


def test_logs_of_copyfile(client: Client, copy_root: Path) -> None:
    (copy_root / "in.txt").write_text("hello")
    created = client.submit("copyfile", {"source": "in.txt", "destination": "out.txt"})
    client.wait(created.id, timeout_s=30)

    page = client.logs(created.id)

    assert any("copied" in line.line for line in page.lines)
    assert [line.seq for line in page.lines] == sorted(line.seq for line in page.lines)


def test_statistics_and_restart(client: Client) -> None:
    created = client.submit("add", {"a": 1})
    client.wait(created.id, timeout_s=30)

    restarted = client.restart(created.id)

    assert restarted.restart_of == created.id
    assert restarted.config == created.config
    assert isinstance(client.statistics(), dict)
    assert isinstance(client.worker_statistics("add"), dict)
    assert isinstance(client.task_statistics(created.id), dict)


def test_non_tasky_response_is_api_error() -> None:
    scripted = ScriptedServer().on("/tasky/v1/workers", json_reply(200, {"items": []})).start()
    try:
        with pytest.raises(ApiServerError) as caught:
            Client(scripted.url).workers()
    finally:
        scripted.stop()

    assert caught.value.code == "unexpected_response"
    assert caught.value.status == 200
    assert "tasky server" in caught.value.message
