"""The `Store` protocol: what every store (SQLite, PostgreSQL) must provide.

The store is the single source of truth for tasks and their events. Every
state change is a conditional write: it names the states the task may be in
(and the attempt it belongs to) and changes nothing if the stored row no
longer matches, so a late writer can never overwrite a newer state. Methods
that return a `Task` after a write return the row as stored by that write.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tasky.statistics import ArchivedFigures, FinishedRun
from tasky.task import Task, TaskError, TaskState


@dataclass(frozen=True)
class TaskFilter:
    """Filters of `GET /tasks`; every field is optional and they combine with AND."""

    states: tuple[TaskState, ...] = ()
    worker: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_before_seq: int | None  # pass back to get the next (older) page; None on the last page


@dataclass(frozen=True)
class Change:
    """Fields that a transition sets besides the state; None leaves a field as it is."""

    result: Any = None
    error: TaskError | None = None
    reason: str | None = None  # recorded with the transition event
    run_after: float | None = None  # Unix time before which a re-queued task is not claimed


@dataclass(frozen=True)
class NewTask:
    """A task to insert, with the checks that must hold atomically with the insert."""

    id: str
    worker: str
    config: dict[str, Any]
    held: bool = False
    timeout_s: float | None = None
    restart_of: str | None = None
    max_queued: int | None = None  # reject with QueueFull when this many already wait
    idempotency_key: str | None = None
    body_hash: str | None = None
    idempotency_ttl_s: float = 86_400.0
    callback_url: str | None = None  # POSTed the final status (webhook)
    # Node that claims the task in the creating transaction, set when it has a
    # free slot. An older due task of the worker still goes first.
    claim_node: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One finished run of a task: its times, how it ended and its error."""

    attempt: int
    started_at: datetime | None
    finished_at: datetime
    outcome: str
    error: TaskError | None


class QueueFull(Exception):
    """`NewTask.max_queued` tasks of the worker already wait."""

    def __init__(self, queued: int) -> None:
        super().__init__(f"{queued} tasks already queued")
        self.queued = queued


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different body."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"key already used for task {task_id}")
        self.task_id = task_id


@dataclass(frozen=True)
class Event:
    """One entry of a task's history: a state change, a progress report or a log line."""

    id: int
    task_id: str
    worker: str
    at: datetime
    kind: str  # "state", "progress" or "log"
    data: dict[str, Any]


@dataclass(frozen=True)
class LogLine:
    """One line of a task's log; `seq` counts the task's lines from 1."""

    seq: int
    at: datetime
    line: str


@dataclass(frozen=True)
class LogPage:
    lines: list[LogLine]
    has_more: bool  # more lines after the last one of this page were already stored


@dataclass(frozen=True)
class RetentionPlan:
    """How long finished tasks are kept; None keeps them forever."""

    max_age_s: float | None
    worker_max_age_s: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackAttempt:
    """One POST of a task's final status to its callback URL."""

    number: int
    at: datetime
    duration_s: float
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class CallbackDelivery:
    """The webhook delivery of one finished attempt of a task: pending, delivered or failed."""

    task_id: str
    task_attempt: int
    url: str
    state: str
    attempts: int
    next_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Store(Protocol):
    """Durable home of tasks and events.

    Async methods are called from the event loop. `report_progress` and
    `append_log` may be called from any thread (worker threads call them)
    and do not wait for the write.
    """

    async def open(self) -> None:
        """Create or migrate the schema; idempotent. Readiness follows its return."""

    async def close(self) -> None:
        """Flush pending writes and release connections; idempotent."""

    async def create_task(self, new: NewTask) -> tuple[Task, bool]:
        """Insert a `queued` (or `held`) task and its first event; returns only once committed.

        With `new.claim_node` set and no due `queued` task of the worker
        before it, the same transaction also claims the task for that node:
        it is returned `running`, with both state events stored.

        Returns the task and True, or, when `new.idempotency_key` names an
        unexpired key with the same body hash, the earlier task and False.
        Raises `IdempotencyConflict` for a known key with another body and
        `QueueFull` when `new.max_queued` tasks of the worker already wait.
        """

    async def update_config(self, task_id: str, config: dict[str, Any], expected_version: int | None) -> Task | None:
        """Replace the config of a `queued` or `held` task and bump its version.

        None when the task is in another state or its version differs from
        `expected_version` (when given); nothing is written then.
        """

    async def create_restart(self, original_id: str, new: NewTask) -> Task | None:
        """Insert `new` as the restart of a finished, not yet restarted task, linking both ways.

        None (nothing written) when the original is not finished or was already restarted.
        """

    async def attempts(self, task_id: str) -> list[Attempt]:
        """Return the finished attempts of a task, oldest first."""

    async def worker_settings(self) -> dict[str, tuple[bool, str | None]]:
        """Return the operator's enable or disable switch per worker name, with its reason."""

    async def set_worker_enabled(self, name: str, enabled: bool, reason: str | None) -> None:
        """Store the operator's switch for one worker; it survives restarts."""

    async def next_run_after(self) -> dict[str, float]:
        """Return, per worker, the earliest `run_after` among its queued tasks still waiting."""

    async def get_task(self, task_id: str) -> Task | None:
        """Return the task, or None if no task has that id."""

    async def list_tasks(self, filters: TaskFilter, *, limit: int, before_seq: int | None) -> TaskPage:
        """Return a page of tasks, newest first, strictly older than `before_seq` when given."""

    async def claim(self, worker: str, limit: int, node: str) -> list[Task]:
        """Move up to `limit` of the worker's oldest `queued` tasks to `running`, owned by `node`.

        Atomic: two claims never return the same task.
        """

    async def transition(
        self,
        task_id: str,
        expected: Collection[TaskState],
        target: TaskState,
        *,
        attempt: int | None = None,
        change: Change | None = None,
    ) -> Task | None:
        """Move a task to `target` if its state is in `expected` (and its attempt matches).

        Returns the updated task, or None when the row did not match, in
        which case nothing was written. Keeps started/finished/paused
        timestamps and paused time consistent with the new state.
        """

    async def finish_and_claim(
        self,
        task_id: str,
        expected: Collection[TaskState],
        target: TaskState,
        *,
        attempt: int,
        change: Change,
        claim: tuple[str, int, str] | None,
    ) -> tuple[Task | None, list[Task]]:
        """Store the end of an attempt as `transition` does and, in the same transaction, claim its successors.

        `claim` is (worker, limit, node) as for `claim`: the slot the attempt
        frees goes to the oldest due queued task at once, with no second write.
        Returns the stored task (None when its state had moved on) and the claimed tasks.
        """

    async def request_cancel(self, task_id: str, expected: Collection[TaskState]) -> Task | None:
        """Record a cancel request on an active task; None if its state is not in `expected`."""

    def report_progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        """Store the task's latest progress and a progress event; fire and forget."""

    def append_log(self, task_id: str, line: str, *, max_lines: int | None = None) -> None:
        """Append a log line event to the task; fire and forget.

        Once the task has `max_lines` lines, further lines are counted in
        its `log_dropped` and not stored; the first dropped line adds one
        `log_truncated` event, so the cut shows in the event stream.
        """

    async def recover(self, restartable: Iterable[str], node: str | None = None) -> list[Task]:
        """Re-queue (restartable workers) or fail (others, reason `interrupted`) active tasks.

        With `node` None every active task is recovered (one-node start-up);
        otherwise only the tasks owned by that node. Returns the changed tasks.
        """

    async def count_active(self, worker: str) -> int:
        """Count the worker's tasks in `running` or `paused`."""

    async def events(self, task_id: str, *, after_id: int = 0, kinds: Collection[str] = (), limit: int = 1000) -> list[Event]:
        """Return the task's events with id greater than `after_id`, oldest first."""

    # Observability: commit notices, logs, event streams, statistics,
    # retention and webhook callbacks.

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit of new rows; it runs on the writer thread and must not block."""

    async def logs(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> LogPage:
        """Return the task's log lines with `seq` greater than `after_seq`, oldest first."""

    async def last_event_id(self) -> int:
        """Return the id of the newest stored event, 0 when there is none."""

    async def events_since(
        self, after_id: int, *, kinds: Collection[str] = (), workers: Collection[str] = (), limit: int = 1000
    ) -> list[Event]:
        """Return events of every task with id greater than `after_id`, oldest first."""

    async def finished_since(self, after_event_id: int, *, limit: int = 500) -> list[tuple[int, str, FinishedRun]]:
        """Return (event id, task id, durations) of tasks whose terminal event came after `after_event_id`."""

    async def state_counts(self, worker: str | None = None, *, finished_since: float | None = None) -> dict[tuple[str, str], int]:
        """Count stored tasks per (worker, state); `finished_since` limits the terminal states."""

    async def archived_counts(self) -> dict[tuple[str, str], int]:
        """Count pruned tasks per (worker, final state), from the aggregates retention keeps."""

    async def finished_runs(self, worker: str | None = None, *, since: float | None = None) -> list[FinishedRun]:
        """Return run and wait times of stored finished tasks, finished at or after `since`."""

    async def archived_figures(self, worker: str | None = None, *, since: float | None = None) -> list[ArchivedFigures]:
        """Return the aggregates of pruned tasks whose hour of finishing ends after `since`."""

    async def prune_finished(self, plan: RetentionPlan, *, batch_size: int, now: float) -> int:
        """Delete at most `batch_size` finished tasks older than the plan allows, in one transaction.

        Their figures are added to the aggregates and their ids kept as
        tombstones in the same transaction; returns how many were deleted.
        """

    async def prune_tombstones(self, before: float) -> int:
        """Forget pruned task ids pruned before `before`; returns how many."""

    async def pruned_at(self, task_id: str) -> datetime | None:
        """Return when retention deleted the task, or None if it has no tombstone."""

    async def enqueue_callbacks(self, task_ids: Collection[str] | None, now: float) -> int:
        """Create pending deliveries for finished tasks with a callback URL that have none yet.

        With `task_ids` None every stored task is considered (start-up catch-up).
        Idempotent; returns how many deliveries it created.
        """

    async def due_callbacks(self, now: float, *, limit: int, exclude: Collection[tuple[str, int]] = ()) -> list[CallbackDelivery]:
        """Return pending deliveries whose next attempt is due, oldest first."""

    async def next_callback_at(self, *, exclude: Collection[tuple[str, int]] = ()) -> float | None:
        """Return the time of the earliest pending delivery not in `exclude`, or None."""

    async def record_callback_attempt(
        self, delivery: CallbackDelivery, attempt: CallbackAttempt, *, state: str, next_at: float | None
    ) -> None:
        """Store one attempt and the delivery's new state (pending, delivered or failed)."""

    async def callbacks(self, task_id: str) -> list[tuple[CallbackDelivery, list[CallbackAttempt]]]:
        """Return the task's deliveries with their attempts, oldest first."""
