"""What each action on a task means in each state.

Every action reads the task, checks that the action is legal in its
state, and requests a conditional write from the store. When the write finds
another state (a concurrent action, the executor finishing the task), the
answer is 409 with the state actually stored, so every response agrees
with the one outcome the store kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasky.errors import IllegalTransition, PreconditionFailed
from tasky.ids import new_task_id
from tasky.store.base import NewTask
from tasky.task import Task, TaskState

if TYPE_CHECKING:
    from tasky.executor import Executor
    from tasky.store import Store
    from tasky.worker import Worker

logger = logging.getLogger(__name__)

ACTIVE = (TaskState.RUNNING, TaskState.PAUSED)
WAITING = (TaskState.QUEUED, TaskState.HELD)
ACTIONS = ("cancel", "pause", "resume", "run", "restart")

LEGAL_FROM = {
    "cancel": "held, queued, running or paused",
    "pause": "running",
    "resume": "paused",
    "run": "held",
    "restart": "completed, failed, canceled or timed_out",
    "edit": "queued or held",
}


@dataclass
class ActionResult:
    """The task after an action, and whether the action has fully taken effect."""

    task: Task
    completed: bool = True
    created: bool = False  # restart: `task` is the new task


class TaskActions:
    """Task actions of a `Tasky` node; mixed into it, using its store and executor."""

    store: Store
    executor: Executor
    cancel_wait_s: float

    async def get_task(self, task_id: str) -> Task:
        raise NotImplementedError

    def worker(self, name: str) -> Worker:
        raise NotImplementedError

    async def act(self, task_id: str, action: str) -> ActionResult:
        """Apply one of `ACTIONS` to a task."""
        return await getattr(self, action)(task_id)  # type: ignore[no-any-return]

    async def cancel(self, task_id: str) -> ActionResult:
        """Cancel a held, queued, running or paused task.

        A waiting task is canceled at once. A running or paused one is asked
        to stop, and the response waits up to `cancel_wait_s` for it. If the task
        completes or fails first, that outcome wins and the cancel is
        rejected with the stored state.
        """
        task = await self.get_task(task_id)
        if task.state in WAITING:
            canceled = await self.store.transition(task_id, [task.state], TaskState.CANCELED, change=None)
            if canceled is not None:
                logger.info(
                    "task %s canceled while %s", task_id, task.state.value,
                    extra={"task_id": task_id, "worker": task.worker, "state": "canceled"},
                )
                return ActionResult(canceled)
            task = await self.get_task(task_id)  # claimed meanwhile: cancel it as a running task
        if task.state not in ACTIVE:
            raise _illegal("cancel", task)
        requested = await self.store.request_cancel(task_id, ACTIVE)
        if requested is None:
            raise _illegal("cancel", await self.get_task(task_id))
        self.executor.deliver(task_id, "cancel")
        logger.info("cancel requested for task %s", task_id, extra={"task_id": task_id})
        return await self._await_cancel(requested)

    async def _await_cancel(self, requested: Task) -> ActionResult:
        final = await self.executor.wait_finished(requested.id, self.cancel_wait_s)
        if final is None:
            current = await self.get_task(requested.id)
            if current.state is TaskState.CANCELED:
                return ActionResult(current)
            if current.state.is_terminal:
                raise _lost_race(current)
            return ActionResult(current, completed=False)
        if final.state is not TaskState.CANCELED:
            raise _lost_race(final)
        return ActionResult(final)

    async def pause(self, task_id: str) -> ActionResult:
        return await self._switch(task_id, "pause", TaskState.RUNNING, TaskState.PAUSED)

    async def resume(self, task_id: str) -> ActionResult:
        return await self._switch(task_id, "resume", TaskState.PAUSED, TaskState.RUNNING)

    async def _switch(self, task_id: str, action: str, source: TaskState, target: TaskState) -> ActionResult:
        task = await self.get_task(task_id)
        if task.state is not source:
            raise _illegal(action, task)
        changed = await self.store.transition(task_id, [source], target, attempt=task.attempt)
        if changed is None:
            raise _illegal(action, await self.get_task(task_id))
        self.executor.deliver(task_id, action)
        logger.info("task %s %s", task_id, "paused" if action == "pause" else "resumed",
                    extra={"task_id": task_id, "worker": task.worker, "state": target.value})
        return ActionResult(changed)

    async def run(self, task_id: str) -> ActionResult:
        """Release a held task into the queue."""
        task = await self.get_task(task_id)
        if task.state is not TaskState.HELD:
            raise _illegal("run", task)
        queued = await self.store.transition(task_id, [TaskState.HELD], TaskState.QUEUED)
        if queued is None:
            raise _illegal("run", await self.get_task(task_id))
        logger.info("task %s released from hold", task_id, extra={"task_id": task_id, "worker": task.worker, "state": "queued"})
        self.executor.notify(task.worker)
        return ActionResult(queued)

    async def restart(self, task_id: str) -> ActionResult:
        """Start a new task with the worker and config of a finished one, linked both ways."""
        task = await self.get_task(task_id)
        if not task.state.is_terminal:
            raise _illegal("restart", task)
        if task.restarted_as:
            raise IllegalTransition(
                f"task {task_id} was already restarted as {task.restarted_as}; restart that task instead",
                state=task.state.value,
                detail={"id": task_id, "restarted_as": task.restarted_as},
            )
        self.worker(task.worker)  # the worker may no longer be served
        new = NewTask(id=new_task_id(), worker=task.worker, config=task.config, timeout_s=task.timeout_s, restart_of=task_id)
        created = await self.store.create_restart(task_id, new)
        if created is None:
            return await self.restart(task_id)  # restarted by a concurrent request: respond as above
        logger.info("task %s restarted as %s", task_id, created.id, extra={"task_id": created.id, "worker": created.worker})
        self.executor.notify(created.worker)
        return ActionResult(created, created=True)

    async def edit(self, task_id: str, raw_config: Any, if_match: str | None) -> Task:
        """Replace the config of a task that has not started; `if_match` is an ETag or None."""
        task = await self.get_task(task_id)
        if task.state not in WAITING:
            raise _illegal("edit", task)
        expected = parse_etag(if_match, task) if if_match is not None else None
        config = self.worker(task.worker).validate_request(raw_config).model_dump(mode="json")
        updated = await self.store.update_config(task_id, config, expected)
        if updated is not None:
            logger.info("task %s config replaced (version %d)", task_id, updated.config_version, extra={"task_id": task_id})
            return updated
        current = await self.get_task(task_id)
        if current.state not in WAITING:
            raise _illegal("edit", current)
        raise _stale(current)


def etag(task: Task) -> str:
    """Return the ETag of a task's editable representation (its config version)."""
    return f'"{task.id}.{task.config_version}"'


def parse_etag(header: str, task: Task) -> int:
    """Return the config version that an If-Match header names; raise 412 if it names another."""
    for candidate in header.split(","):
        value = candidate.strip().removeprefix("W/")
        if value == "*":
            return task.config_version
        if value == etag(task):
            return task.config_version
    raise _stale(task, header)


def _stale(task: Task, header: str | None = None) -> PreconditionFailed:
    sent = f"If-Match {header!r} does not match" if header is not None else "the task changed and no longer matches"
    return PreconditionFailed(
        f"{sent} the task's current ETag {etag(task)}; read the task again and retry with that ETag",
        detail={"id": task.id, "etag": etag(task)},
    )


def _illegal(action: str, task: Task) -> IllegalTransition:
    return IllegalTransition(
        f"cannot {action} task {task.id}: it is {task.state.value}, and {action} applies only to a {LEGAL_FROM[action]} task",
        state=task.state.value,
        detail={"id": task.id, "action": action},
    )


def _lost_race(task: Task) -> IllegalTransition:
    return IllegalTransition(
        f"task {task.id} ended {task.state.value} before the cancel took effect",
        state=task.state.value,
        detail={"id": task.id, "action": "cancel"},
    )
