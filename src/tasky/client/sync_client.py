"""`Client`: the blocking Python client of the tasky REST API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx2

from tasky.client import calls
from tasky.client.binding import SyncOperation
from tasky.client.calls import ApiCall
from tasky.client.connection import REQUEST_TIMEOUT_S, Connection
from tasky.client.errors import ServerUnreachable
from tasky.client.events import EventFeed
from tasky.client.models import TaskEvent, TaskInfo

T = TypeVar("T")


class Client:
    """Blocking client of one tasky server.

    `url` and `token` default to the `TASKY_URL` and `TASKY_TOKEN`
    environment variables, then to http://127.0.0.1:8888 without a token.
    Errors are `ApiError` subclasses for error responses and
    `ServerUnreachable` when no response came; see `tasky.client.errors`.

        with tasky.Client() as client:
            task = client.submit("sleeper", {"seconds": 3})
            done = client.wait(task.id, timeout_s=30)
    """

    def __init__(self, url: str | None = None, *, token: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.connection = Connection.resolve(url, token, timeout_s)
        self._http = httpx2.Client(**self.connection.http_options())

    workers = SyncOperation(calls.list_workers)
    worker_info = SyncOperation(calls.worker_info)
    submit = SyncOperation(calls.submit)
    tasks = SyncOperation(calls.list_tasks)
    task = SyncOperation(calls.task)
    status = SyncOperation(calls.status)
    result = SyncOperation(calls.result)
    action = SyncOperation(calls.action)
    cancel = SyncOperation(calls.cancel)
    pause = SyncOperation(calls.pause)
    resume = SyncOperation(calls.resume)
    restart = SyncOperation(calls.restart)
    logs = SyncOperation(calls.logs)
    statistics = SyncOperation(calls.statistics)
    worker_statistics = SyncOperation(calls.worker_statistics)
    task_statistics = SyncOperation(calls.task_statistics)
    ready = SyncOperation(calls.ready)

    def send(self, call: ApiCall[T]) -> T:
        """Send one call and parse its response."""
        request = self._http.build_request(**self.connection.request_options(call))
        try:
            response = self._http.send(request)
        except httpx2.TransportError as exc:
            raise self.connection.unreachable(exc) from exc
        return call.read(response.status_code, response.headers, response.content)

    def events(self, task_id: str, *, last_event_id: int | None = None, timeout_s: float | None = None) -> Iterator[TaskEvent]:
        """Yield the events of a task until it reaches a terminal state.

        The iterator reconnects with `Last-Event-ID` when the stream breaks,
        polls `/status` on a server without an event stream, and raises
        `WaitTimeout` once `timeout_s` has passed.
        """
        feed = EventFeed(task_id, last_event_id=last_event_id, timeout_s=timeout_s)
        while not feed.finished:
            if feed.polling:
                yield from self._poll(feed)
            else:
                yield from self._stream(feed)
            if not feed.finished:
                time.sleep(feed.pause_s())

    def wait(self, task_id: str, timeout_s: float | None = None) -> TaskInfo:
        """Block until the task reaches a terminal state and return it; raise `WaitTimeout` after `timeout_s`."""
        for _ in self.events(task_id, timeout_s=timeout_s):
            pass
        return self.task(task_id)

    def _stream(self, feed: EventFeed) -> Iterator[TaskEvent]:
        options: dict[str, Any] = {"headers": feed.stream_headers(), "timeout": self.connection.timeout(feed.read_timeout_s())}
        try:
            with self._http.sse(calls.events_path(feed.task_id), **options) as source:
                response = source.response
                content = response.read() if response.status_code != 200 else b""
                if not feed.on_open(response.status_code, response.headers, content):
                    return
                for sse in source:
                    yield feed.on_sse(sse.event, sse.data, sse.id, sse.retry)
                    if feed.finished:
                        return
            feed.on_stream_end()
        except httpx2.TransportError as exc:
            feed.on_unreachable(self.connection.unreachable(exc))

    def _poll(self, feed: EventFeed) -> Iterator[TaskEvent]:
        try:
            yield from feed.on_status(self.status(feed.task_id))
        except ServerUnreachable as exc:
            feed.on_unreachable(exc)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(url={self.connection.url!r})"
