"""Follow one task's events across reconnects, or by polling its status.

`EventFeed` keeps the state that both clients need to follow `GET /tasks/{id}/events`:
the `Last-Event-ID` to resume from, the deadline, the reconnect backoff and
the switch to polling `/status` on a server without an event stream. It does
no I/O: `Client.events` and `AsyncClient.events` open the stream, hand each
server-sent event to `on_sse` and ask `pause_s` how long to wait before
they reconnect or poll again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from tasky.client.errors import ServerUnreachable, WaitTimeout, api_error
from tasky.client.models import TaskEvent, TaskStatus

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 2.0
# How long reconnects go on after the connection is lost, so that a restarting
# server is waited for. Past this the server counts as gone (a chosen bound).
RECONNECT_GIVE_UP_S = 30.0
# Maximum silence on an open stream before the client reconnects, because a
# dead peer behind a proxy can leave the socket open without ever closing it.
STREAM_READ_TIMEOUT_S = 60.0
# Streams that close without a single event before the client polls /status instead.
EMPTY_STREAMS_BEFORE_POLLING = 3


class EventFeed:
    """Position of a client in one task's event stream, and the policy for its next step."""

    def __init__(
        self,
        task_id: str,
        *,
        last_event_id: int | None = None,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task_id = task_id
        self.last_event_id = last_event_id
        self.timeout_s = timeout_s
        self.finished = False
        self.polling = False
        self.state: str | None = None
        self._clock = clock
        self._deadline = None if timeout_s is None else clock() + timeout_s
        self._reached_server = False
        self._failing_since: float | None = None
        self._retry_s = RECONNECT_MIN_S
        self._backoff_s = RECONNECT_MIN_S
        self._events_in_stream = 0
        self._empty_streams = 0
        self._progress: tuple[Any, ...] | None = None
        self._poll_now = False

    def stream_headers(self) -> dict[str, str]:
        """Build the headers of the next stream request, resuming after the last event seen."""
        return {} if self.last_event_id is None else {"Last-Event-ID": str(self.last_event_id)}

    def read_timeout_s(self) -> float:
        """Return how long one read on the stream may block: the stall limit or the time left."""
        remaining = self.remaining_s()
        return STREAM_READ_TIMEOUT_S if remaining is None else max(0.01, min(STREAM_READ_TIMEOUT_S, remaining))

    def remaining_s(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._clock()

    def on_open(self, status: int, headers: Mapping[str, str], content: bytes = b"") -> bool:
        """Check the response to a stream request and return True when events will follow.

        A server without the events route makes the feed poll `/status`
        instead. Any other error status raises its `ApiError`, for example
        `ApiNotFound` for an unknown task.
        """
        self._connected()
        content_type = headers.get("content-type", "")
        if status == 200 and content_type.startswith("text/event-stream"):
            self._events_in_stream = 0
            return True

        error = None if status == 200 else api_error(status, dict(headers), content)
        if error is not None and error.code != "route_not_found":
            raise error

        # A 200 that is not an event stream cannot be followed, so it is treated like a missing route.
        logger.info("no event stream for task %s (HTTP %s, %s); polling its status", self.task_id, status, content_type)
        self.polling = self._poll_now = True
        return False

    def on_sse(self, kind: str, data: str, event_id: str, retry_ms: int | None = None) -> TaskEvent:
        """Turn one server-sent event into a `TaskEvent` and remember its id."""
        self._check_deadline()
        if event_id.isdigit():
            self.last_event_id = int(event_id)
        if retry_ms is not None:
            self._retry_s = self._backoff_s = min(max(retry_ms / 1000, RECONNECT_MIN_S), RECONNECT_MAX_S)
        self._events_in_stream += 1
        payload = _payload(data)
        fields = {
            **payload,
            "id": self.last_event_id if event_id else None,
            "kind": kind,
            "task_id": str(payload.get("task_id") or self.task_id),
            "data": payload,
        }
        try:
            event = TaskEvent.model_validate(fields)
        except ValidationError as exc:
            # Keep the stream going: the raw fields stay in `data` for the caller.
            logger.warning("event %s of task %s has unexpected fields: %s", event_id, self.task_id, exc.errors()[0]["msg"])
            event = TaskEvent(id=fields["id"], kind=kind, task_id=fields["task_id"], data=payload)
        self._note(event)
        return event

    def on_stream_end(self) -> None:
        """Note that the server closed the stream before the task finished."""
        if self._events_in_stream:
            self._empty_streams = 0
            return
        self._empty_streams += 1
        if self._empty_streams >= EMPTY_STREAMS_BEFORE_POLLING:
            logger.warning("the event stream of task %s closed %d times without events; polling its status", self.task_id, self._empty_streams)
            self.polling = self._poll_now = True

    def on_unreachable(self, error: ServerUnreachable) -> None:
        """Decide whether to retry after a failed connection, poll or read; raise when not."""
        self._check_deadline()
        if not self._reached_server:
            raise error
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > RECONNECT_GIVE_UP_S:
            raise error
        logger.info("lost the server while following task %s (%s); retrying", self.task_id, error.reason)

    def on_status(self, status: TaskStatus) -> list[TaskEvent]:
        """Turn a polled status into the events that changed since the last poll."""
        self._connected()
        events = []
        progress = status.progress
        snapshot = (progress.done, progress.total, progress.message)
        if snapshot != self._progress and any(value is not None for value in snapshot):
            self._progress = snapshot
            events.append(self._made_up("progress", status, done=progress.done, total=progress.total, message=progress.message))
        if status.state.value != self.state:
            events.append(self._made_up("state", status, state=status.state.value))
        for event in events:
            self._note(event)
        return events

    def pause_s(self) -> float:
        """Return the seconds to wait before the next poll or reconnect; raise `WaitTimeout` past the deadline."""
        self._check_deadline()
        if self._poll_now:
            self._poll_now = False
            return 0.0
        if self.polling:
            delay = POLL_INTERVAL_S
        else:
            delay = self._backoff_s
            if self._failing_since is not None:
                self._backoff_s = min(self._backoff_s * 2, RECONNECT_MAX_S)
        remaining = self.remaining_s()
        return delay if remaining is None else max(0.0, min(delay, remaining))

    def _connected(self) -> None:
        self._reached_server = True
        self._failing_since = None
        self._backoff_s = self._retry_s

    def _note(self, event: TaskEvent) -> None:
        if event.kind == "state" and event.state:
            self.state = event.state
        if event.is_terminal:
            self.finished = True

    def _check_deadline(self) -> None:
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0 and self.timeout_s is not None:
            raise WaitTimeout(self.task_id, self.timeout_s, self.state)

    def _made_up(self, kind: str, status: TaskStatus, **fields: Any) -> TaskEvent:
        at = status.progress.updated_at if kind == "progress" else None
        when = at or status.finished_at or status.started_at or status.created_at
        return TaskEvent(id=None, kind=kind, task_id=status.id, at=when, **fields)


def _payload(data: str) -> dict[str, Any]:
    if not data:
        return {}
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"text": data}
    return decoded if isinstance(decoded, dict) else {"value": decoded}
