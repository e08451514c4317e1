"""JSON shapes of tasks in responses, and a fast JSON response class.

Responses are built from `Task` objects the store produced, so they are
dumped with orjson directly instead of being validated again by FastAPI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from tasky.task import Task

API_PREFIX = "/tasky/v1"


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def task_path(task_id: str) -> str:
    return f"{API_PREFIX}/tasks/{task_id}"


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def iso_time(value: datetime | None) -> str | None:
    """Return an aware UTC time as ISO-8601 text ending in Z, or None."""
    return _time(value)


def progress_json(task: Task) -> dict[str, Any]:
    progress = task.progress
    percent = None
    if progress.done is not None and progress.total:
        percent = round(min(100.0, 100.0 * progress.done / progress.total), 2)
    return {
        "done": progress.done,
        "total": progress.total,
        "percent": percent,
        "message": progress.message,
        "updated_at": _time(progress.updated_at),
    }


def status_json(task: Task) -> dict[str, Any]:
    """Build the status of a task: state, timestamps, durations and progress."""
    run_time = task.run_time_s()
    return {
        "id": task.id,
        "worker": task.worker,
        "state": task.state.value,
        "attempt": task.attempt,
        "created_at": _time(task.created_at),
        "started_at": _time(task.started_at),
        "finished_at": _time(task.finished_at),
        "paused_at": _time(task.paused_at),
        "wait_time_s": round(task.wait_time_s(), 6),
        "run_time_s": round(run_time, 6) if run_time is not None else None,
        "paused_time_s": round(task.paused_time_s(), 6),
        "progress": progress_json(task),
        "cancel_requested": task.cancel_requested,
        "next_attempt_at": _time(task.run_after) if task.state.value == "queued" else None,
        "timeout_s": task.timeout_s,
    }


def result_json(task: Task) -> dict[str, Any]:
    """Build the outcome of a finished task: its result, or its error."""
    return {
        "id": task.id,
        "worker": task.worker,
        "state": task.state.value,
        "result": task.result,
        "error": task.error.model_dump() if task.error is not None else None,
    }


def task_json(task: Task) -> dict[str, Any]:
    """Everything about a task."""
    body = status_json(task)
    body.update(
        config=task.config,
        result=task.result,
        error=task.error.model_dump() if task.error is not None else None,
        node=task.node,
        updated_at=_time(task.updated_at),
        restart_of=task.restart_of,
        restarted_as=task.restarted_as,
        config_version=task.config_version,
        links={
            "self": task_path(task.id),
            "status": f"{task_path(task.id)}/status",
            "result": f"{task_path(task.id)}/result",
            "actions": f"{task_path(task.id)}/actions",
            "events": f"{task_path(task.id)}/events",
            "logs": f"{task_path(task.id)}/logs",
            "statistics": f"{task_path(task.id)}/statistics",
            "callback": f"{task_path(task.id)}/callback",
            "attempts": f"{task_path(task.id)}/attempts",
        },
        callback_url=task.callback_url,
    )
    return body


def attempt_json(attempt: Any) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "started_at": _time(attempt.started_at),
        "finished_at": _time(attempt.finished_at),
        "outcome": attempt.outcome,
        "error": attempt.error.model_dump() if attempt.error is not None else None,
    }
