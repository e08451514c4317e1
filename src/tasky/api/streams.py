"""Server-Sent Events routes: one task's events, and every task's state changes.

Each SSE event carries the store's event id as `id`, its kind as `event`
and a JSON object as `data`. A client that reconnects with `Last-Event-ID`
(header, or the `last_event_id` query parameter) gets the events after that
id, each once. FastAPI sends a `: ping` comment every 15 s of silence, which
also detects a client that went away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tasky.api.params import reject_unknown_params
from tasky.api.serialize import iso_time
from tasky.app import Tasky
from tasky.errors import BadRequest
from tasky.events import follow_all, follow_task
from tasky.store.base import Event
from tasky.task import Task


def event_data(event: Event) -> dict[str, Any]:
    """Build the JSON object sent as `data` of one SSE event."""
    return {"task_id": event.task_id, "worker": event.worker, "at": iso_time(event.at), **event.data}


def to_sse(event: Event) -> ServerSentEvent:
    return ServerSentEvent(id=str(event.id), event=event.kind, raw_data=orjson.dumps(event_data(event)).decode())


MAX_EVENT_ID = 2**63 - 1  # the largest SQLite INTEGER


def resume_point(
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", description="Id of the last event received.")] = None,
    last_event_id: Annotated[str | None, Query(description="Same as the Last-Event-ID header, for clients that cannot set it.")] = None,
) -> int | None:
    """Parse the id to resume after; None when the client starts afresh."""
    raw = last_event_id_header if last_event_id_header is not None else last_event_id
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    if not text.isdigit() or int(text) > MAX_EVENT_ID:
        raise BadRequest(
            f"invalid Last-Event-ID {raw!r}: it must be the integer id of an event this stream sent",
            code="invalid_parameter",
        )
    return int(text)


async def existing_task(task_id: str, request: Request) -> Task:
    """Return the task named in the path, raising 404 (or 410) before the stream starts."""
    reject_unknown_params(request, ("last_event_id",))
    tasky: Tasky = request.app.state.tasky
    return await tasky.get_task(task_id)


async def stream_start(request: Request, after: Annotated[int | None, Depends(resume_point)]) -> int:
    """Return the event id that a stream of every task starts after: the client's, or the newest one."""
    # Fixed before the response starts, so a client that acts once it has
    # the response headers receives every change that its actions cause.
    reject_unknown_params(request, ("last_event_id", "worker"))
    tasky: Tasky = request.app.state.tasky
    for item in request.query_params.getlist("worker"):
        for name in filter(None, (part.strip() for part in item.split(","))):
            tasky.worker(name)  # 404 with the known workers, so a typo does not wait forever
    return after if after is not None else await tasky.store.last_event_id()


def build_stream_router(tasky: Tasky) -> APIRouter:
    router = APIRouter(tags=["events"])
    hub, store = tasky.observability.hub, tasky.store

    @router.get(
        "/tasks/{task_id}/events",
        response_class=EventSourceResponse,
        summary="Live stream of one task's state changes, progress and log lines (SSE)",
        description="Starts with the task's stored history and ends after its terminal state.",
    )
    async def task_events(
        task: Annotated[Task, Depends(existing_task)],
        after: Annotated[int | None, Depends(resume_point)],
    ) -> AsyncIterator[ServerSentEvent]:
        async for event in follow_task(store, hub, task.id, after or 0):
            yield to_sse(event)

    @router.get(
        "/events",
        response_class=EventSourceResponse,
        summary="Live stream of every task's state changes (SSE), for dashboards",
        description="Without Last-Event-ID it starts with the next change; it ends only when the node stops.",
    )
    async def all_events(
        start: Annotated[int, Depends(stream_start)],
        worker: Annotated[list[str] | None, Query(description="Only these workers; repeat or separate with commas.")] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        workers = [name.strip() for item in worker or [] for name in item.split(",") if name.strip()]
        async for event in follow_all(store, hub, start, kinds=("state",), workers=workers):
            yield to_sse(event)

    return router
