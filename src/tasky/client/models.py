"""Typed mirrors of the JSON that the REST API returns.

The models accept fields they do not know (`extra="allow"`), so a newer
server that adds fields still works with this client, and `model_dump`
returns those fields too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasky.task import TaskState

TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "timed_out"})

Statistics = dict[str, Any]


class _Mirror(BaseModel):
    model_config = ConfigDict(extra="allow")


class WorkerLimits(_Mirror):
    max_tasks: int
    restartable: bool
    timeout_s: float | None = None


class WorkerInfo(_Mirror):
    """A worker as `GET /workers` and `GET /workers/{name}/info` describe it."""

    name: str
    description: str = ""
    status: str = "enabled"
    status_reason: str | None = None
    config_schema: dict[str, Any] = {}
    examples: list[Any] = []
    limits: WorkerLimits | None = None


class Progress(_Mirror):
    done: float | None = None
    total: float | None = None
    percent: float | None = None
    message: str | None = None
    updated_at: datetime | None = None


class TaskError(_Mirror):
    """Why a task failed: exception type, message, traceback text and reason."""

    type: str
    message: str
    traceback: str | None = None
    reason: str | None = None


class TaskStatus(_Mirror):
    """State, timestamps, durations and progress (`GET /tasks/{id}/status`)."""

    id: str
    worker: str
    state: TaskState
    attempt: int = 1
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    paused_at: datetime | None = None
    wait_time_s: float | None = None
    run_time_s: float | None = None
    paused_time_s: float | None = None
    progress: Progress = Progress()
    cancel_requested: bool = False

    @property
    def is_finished(self) -> bool:
        return self.state.value in TERMINAL_STATES


class TaskInfo(TaskStatus):
    """Everything about a task (`GET /tasks/{id}`, and the body of create and actions)."""

    config: dict[str, Any] = {}
    result: Any = None
    error: TaskError | None = None
    node: str | None = None
    updated_at: datetime | None = None
    restart_of: str | None = None
    links: dict[str, str] = {}


class TaskResult(_Mirror):
    """Result or error of a finished task (`GET /tasks/{id}/result`)."""

    id: str
    worker: str
    state: TaskState
    result: Any = None
    error: TaskError | None = None


class TaskPage(_Mirror):
    """One page of `GET /tasks`; pass `next_cursor` back for the next page."""

    tasks: list[TaskInfo]
    next_cursor: str | None = None


class LogLine(_Mirror):
    seq: int
    at: datetime
    line: str


class LogPage(_Mirror):
    """One page of a task's log lines; pass `next_after` back as `after` for more."""

    lines: list[LogLine]
    next_after: int | None = None


class TaskEvent(_Mirror):
    """One event of a task's event stream.

    `kind` is `state`, `progress` or `log`, or a kind this client does not
    know yet, whose fields stay in `data`. `id` is None for events that the
    client made up itself while polling a server without an event stream.
    """

    id: int | None = None
    kind: str
    task_id: str
    at: datetime | None = None
    state: str | None = None
    done: float | None = None
    total: float | None = None
    message: str | None = None
    line: str | None = None
    data: dict[str, Any] = {}

    @property
    def is_terminal(self) -> bool:
        return self.kind == "state" and self.state in TERMINAL_STATES
