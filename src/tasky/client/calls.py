"""Every REST route as an `ApiCall`: the request to send and how to read the response.

This module does no I/O. `Client` and `AsyncClient` bind each builder below
as a method (see `binding.py`) and differ only in how they send the request,
so both clients share one definition of paths, parameters, expected statuses
and response models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from tasky.client.errors import ApiServerError, api_error
from tasky.client.models import (
    LogPage,
    Statistics,
    TaskInfo,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)

T = TypeVar("T")

API_PREFIX = "/tasky/v1"

Action = Literal["cancel", "pause", "resume", "restart"]


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One request and the parser of its successful response."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    ok_statuses: frozenset[int] = frozenset({200})

    def read(self, status: int, headers: Mapping[str, str], content: bytes) -> T:
        """Parse a successful response, or raise the `ApiError` for an error status."""
        if status not in self.ok_statuses:
            raise api_error(status, {key.lower(): value for key, value in headers.items()}, content)
        try:
            return self.parse(orjson.loads(content) if content else None)
        except (orjson.JSONDecodeError, ValidationError, TypeError, KeyError) as exc:
            raise ApiServerError(
                f"{self.method} {self.path} returned HTTP {status} with a body this client cannot read "
                f"({type(exc).__name__}); check that the URL points at a tasky server",
                status=status,
                code="unexpected_response",
            ) from exc


def list_workers() -> ApiCall[list[WorkerInfo]]:
    """List the workers the server runs, with their config schemas."""
    return ApiCall("GET", _api("workers"), lambda body: [WorkerInfo.model_validate(item) for item in body["workers"]])


def worker_info(name: str) -> ApiCall[WorkerInfo]:
    """Describe one worker: usage, config schema, examples and limits."""
    return ApiCall("GET", _api("workers", name, "info"), WorkerInfo.model_validate)


def submit(worker: str, config: Mapping[str, Any] | None = None) -> ApiCall[TaskInfo]:
    """Create a task of `worker` with `config`; the server stores it as queued."""
    return ApiCall(
        "POST", _api("workers", worker), TaskInfo.model_validate, json=dict(config or {}), ok_statuses=frozenset({201})
    )


def list_tasks(
    state: str | Iterable[str] | None = None,
    worker: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ApiCall[TaskPage]:
    """List tasks, newest first; pass `next_cursor` of one page as `cursor` for the next."""
    states = [state] if isinstance(state, str) else list(state or [])
    params = {
        "state": ",".join(states) or None,
        "worker": worker,
        "created_after": created_after.isoformat() if created_after else None,
        "created_before": created_before.isoformat() if created_before else None,
        "limit": limit,
        "cursor": cursor,
    }
    return ApiCall("GET", _api("tasks"), TaskPage.model_validate, params=_present(params))


def task(task_id: str) -> ApiCall[TaskInfo]:
    """Return everything about one task."""
    return ApiCall("GET", _api("tasks", task_id), TaskInfo.model_validate)


def status(task_id: str) -> ApiCall[TaskStatus]:
    """Return the state, timestamps, durations and progress of a task."""
    return ApiCall("GET", _api("tasks", task_id, "status"), TaskStatus.model_validate)


def result(task_id: str) -> ApiCall[TaskResult]:
    """Return the result or error of a finished task; raises `ApiConflict` before it finishes."""
    return ApiCall("GET", _api("tasks", task_id, "result"), TaskResult.model_validate)


def action(task_id: str, action: Action) -> ApiCall[TaskInfo]:
    """Send an action to a task and return the task as the server has it afterwards.

    A cancel of a running task returns while the task still runs, with
    `cancel_requested` set. A restart returns the new task, whose
    `restart_of` names this one.
    """
    return ApiCall(
        "POST",
        _api("tasks", task_id, "actions"),
        TaskInfo.model_validate,
        json={"action": action},
        ok_statuses=frozenset({200, 201, 202}),
    )


def cancel(task_id: str) -> ApiCall[TaskInfo]:
    """Cancel a queued, running or paused task."""
    return action(task_id, "cancel")


def pause(task_id: str) -> ApiCall[TaskInfo]:
    """Pause a running task at its next checkpoint."""
    return action(task_id, "pause")


def resume(task_id: str) -> ApiCall[TaskInfo]:
    """Resume a paused task."""
    return action(task_id, "resume")


def restart(task_id: str) -> ApiCall[TaskInfo]:
    """Start a new task with the worker and config of a finished one; returns the new task."""
    return action(task_id, "restart")


def logs(task_id: str, after: int | None = None, limit: int | None = None) -> ApiCall[LogPage]:
    """Return a task's log lines with `seq` greater than `after`, oldest first."""
    params = _present({"after": after, "limit": limit})
    return ApiCall("GET", _api("tasks", task_id, "logs"), LogPage.model_validate, params=params)


def statistics() -> ApiCall[Statistics]:
    """Return the statistics of the whole server."""
    return ApiCall("GET", _api("statistics"), dict)


def worker_statistics(name: str) -> ApiCall[Statistics]:
    """Return counts by state, failure rate and duration percentiles of one worker."""
    return ApiCall("GET", _api("workers", name, "statistics"), dict)


def task_statistics(task_id: str) -> ApiCall[Statistics]:
    """Return the wait time, run time and attempts of one task."""
    return ApiCall("GET", _api("tasks", task_id, "statistics"), dict)


def ready() -> ApiCall[dict[str, Any]]:
    """Return the server's readiness; raises `ApiBusy` (503) while it is starting or stopping."""
    return ApiCall("GET", "/readyz", dict)


def events_path(task_id: str) -> str:
    return _api("tasks", task_id, "events")


def _api(*segments: str) -> str:
    return "/".join([API_PREFIX, *(quote(segment, safe="") for segment in segments)])


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}
