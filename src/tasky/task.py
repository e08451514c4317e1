"""Task states, the legal transitions between them and the task record.

This module owns the state machine only. The store enforces it with
conditional writes, and the executor decides when to ask for a transition.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict


class TaskState(str, enum.Enum):
    HELD = "held"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        """True while the task holds one of its worker's `max_tasks` slots."""
        return self in (TaskState.RUNNING, TaskState.PAUSED)


TERMINAL_STATES = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.TIMED_OUT}
)

# A paused task may still reach completed or failed: pause is cooperative, so
# work that finishes before its next checkpoint ends with its real outcome.
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.HELD: frozenset({TaskState.QUEUED, TaskState.CANCELED}),
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.CANCELED}),
    TaskState.RUNNING: frozenset(
        {
            TaskState.PAUSED,
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELED,
            TaskState.TIMED_OUT,
            TaskState.QUEUED,  # a retry, or interrupted by a node crash and restartable
        }
    ),
    TaskState.PAUSED: frozenset(
        {
            TaskState.RUNNING,
            TaskState.CANCELED,
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.TIMED_OUT,
            TaskState.QUEUED,
        }
    ),
    TaskState.COMPLETED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELED: frozenset(),
    TaskState.TIMED_OUT: frozenset(),
}


def is_legal(current: TaskState, target: TaskState) -> bool:
    return target in TRANSITIONS[current]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Progress(BaseModel):
    done: float | None = None
    total: float | None = None
    message: str | None = None
    updated_at: datetime | None = None


class TaskError(BaseModel):
    """Why a task failed: exception type, message and traceback text."""

    type: str
    message: str
    traceback: str | None = None
    reason: str | None = None  # for example "interrupted" when a node died


class Task(BaseModel):
    """Everything the store keeps about one task."""

    model_config = ConfigDict(use_enum_values=False)

    id: str
    seq: int
    worker: str
    state: TaskState
    config: dict[str, Any]
    attempt: int = 1
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    paused_at: datetime | None = None
    paused_total_s: float = 0.0
    progress: Progress = Progress()
    result: Any = None
    error: TaskError | None = None
    cancel_requested: bool = False
    node: str | None = None
    updated_at: datetime
    callback_url: str | None = None  # where the final status is POSTed (webhook)
    log_lines: int = 0  # log lines stored
    log_dropped: int = 0  # log lines dropped after the task's log reached its limit
    run_after: datetime | None = None  # a retry waits in `queued` until then
    timeout_s: float | None = None
    restart_of: str | None = None
    restarted_as: str | None = None
    config_version: int = 1

    def run_time_s(self, now: datetime | None = None) -> float | None:
        """Return the time spent running, leaving out the time spent paused."""
        if self.started_at is None:
            return None
        end = self.finished_at or now or utcnow()
        paused = self.paused_total_s
        if self.paused_at is not None and self.finished_at is None:
            paused += (end - self.paused_at).total_seconds()
        return max(0.0, (end - self.started_at).total_seconds() - paused)

    def paused_time_s(self, now: datetime | None = None) -> float:
        """Return the time spent paused, including a pause still going on."""
        if self.paused_at is None or self.finished_at is not None:
            return self.paused_total_s
        return self.paused_total_s + ((now or utcnow()) - self.paused_at).total_seconds()

    def wait_time_s(self, now: datetime | None = None) -> float:
        """Return the time between creation and the start of the run (or now)."""
        end = self.started_at or self.finished_at or now or utcnow()
        return max(0.0, (end - self.created_at).total_seconds())
