"""`AsyncClient`: the asyncio Python client of the tasky REST API.

It shares the routes (`calls.py`), the response parsing and the event-stream
policy (`events.py`) with `Client`; only the awaiting differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from types import TracebackType
from typing import Any, TypeVar

import httpx2

from tasky.client import calls
from tasky.client.binding import AsyncOperation
from tasky.client.calls import ApiCall
from tasky.client.connection import REQUEST_TIMEOUT_S, Connection
from tasky.client.errors import ServerUnreachable
from tasky.client.events import EventFeed
from tasky.client.models import TaskEvent, TaskInfo

T = TypeVar("T")


class AsyncClient:
    """Asyncio client of one tasky server; the methods of `Client`, awaited.

        async with tasky.AsyncClient() as client:
            task = await client.submit("sleeper", {"seconds": 3})
            async for event in client.events(task.id):
                print(event.kind, event.state or event.message or event.line)
    """

    def __init__(self, url: str | None = None, *, token: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.connection = Connection.resolve(url, token, timeout_s)
        self._http = httpx2.AsyncClient(**self.connection.http_options())

    workers = AsyncOperation(calls.list_workers)
    worker_info = AsyncOperation(calls.worker_info)
    submit = AsyncOperation(calls.submit)
    tasks = AsyncOperation(calls.list_tasks)
    task = AsyncOperation(calls.task)
    status = AsyncOperation(calls.status)
    result = AsyncOperation(calls.result)
    action = AsyncOperation(calls.action)
    cancel = AsyncOperation(calls.cancel)
    pause = AsyncOperation(calls.pause)
    resume = AsyncOperation(calls.resume)
    restart = AsyncOperation(calls.restart)
    logs = AsyncOperation(calls.logs)
    statistics = AsyncOperation(calls.statistics)
    worker_statistics = AsyncOperation(calls.worker_statistics)
    task_statistics = AsyncOperation(calls.task_statistics)
    ready = AsyncOperation(calls.ready)

    async def send(self, call: ApiCall[T]) -> T:
        """Send one call and parse its response."""
        request = self._http.build_request(**self.connection.request_options(call))
        try:
            response = await self._http.send(request)
        except httpx2.TransportError as exc:
            raise self.connection.unreachable(exc) from exc
        return call.read(response.status_code, response.headers, response.content)

    async def events(
        self, task_id: str, *, last_event_id: int | None = None, timeout_s: float | None = None
    ) -> AsyncIterator[TaskEvent]:
        """Yield the events of a task until it reaches a terminal state (see `Client.events`)."""
        feed = EventFeed(task_id, last_event_id=last_event_id, timeout_s=timeout_s)
        while not feed.finished:
            source = self._poll(feed) if feed.polling else self._stream(feed)
            async with aclosing(source):
                async for event in source:
                    yield event
            if not feed.finished:
                await asyncio.sleep(feed.pause_s())

    async def wait(self, task_id: str, timeout_s: float | None = None) -> TaskInfo:
        """Wait until the task reaches a terminal state and return it; raise `WaitTimeout` after `timeout_s`."""
        async for _ in self.events(task_id, timeout_s=timeout_s):
            pass
        return await self.task(task_id)

    async def _stream(self, feed: EventFeed) -> AsyncGenerator[TaskEvent, None]:
        options: dict[str, Any] = {"headers": feed.stream_headers(), "timeout": self.connection.timeout(feed.read_timeout_s())}
        try:
            async with self._http.sse(calls.events_path(feed.task_id), **options) as source:
                response = source.response
                content = await response.aread() if response.status_code != 200 else b""
                if not feed.on_open(response.status_code, response.headers, content):
                    return
                async for sse in source:
                    yield feed.on_sse(sse.event, sse.data, sse.id, sse.retry)
                    if feed.finished:
                        return
            feed.on_stream_end()
        except httpx2.TransportError as exc:
            feed.on_unreachable(self.connection.unreachable(exc))

    async def _poll(self, feed: EventFeed) -> AsyncGenerator[TaskEvent, None]:
        try:
            for event in feed.on_status(await self.status(feed.task_id)):
                yield event
        except ServerUnreachable as exc:
            feed.on_unreachable(exc)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(url={self.connection.url!r})"
