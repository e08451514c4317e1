"""The `Tasky` application object: workers, store and executor of one node.

It is what a user's own `main` builds (register workers, then `serve()` or
mount `asgi()`), and what the HTTP layer calls to create and steer tasks.
This module decides what an action means in each state; the store makes
the change durable and the executor delivers it to running code.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasky.errors import IllegalTransition, TaskNotFound, TaskPruned, WorkerDisabled, WorkerNotFound
from tasky.executor import Executor
from tasky.observability import Observability
from tasky.settings import RetentionSettings, TaskLogSettings, WebhookSettings
from tasky.store import Store, open_store
from tasky.task import Task, TaskState
from tasky.worker import Worker, WorkerRegistry

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

ACTIVE = (TaskState.RUNNING, TaskState.PAUSED)


@dataclass
class ActionResult:
    """The task after an action, and whether the action has fully taken effect."""

    task: Task
    completed: bool = True


class Tasky:
    """One tasky node: register workers, then serve them over HTTP.

    `store` is a SQLite file path (or a ready `Store`). `cancel_wait_s` is how
    long a cancel request waits for a running task to stop before it is
    answered with 202 and the task still running. `task_logs`, `retention`
    and `webhooks` are the sections of the same name in `tasky.settings`.
    """

    def __init__(
        self,
        workers: Iterable[Worker] = (),
        *,
        store: str | Store = "tasky.db",
        node: str | None = None,
        cancel_wait_s: float = 2.0,
        shutdown_grace_s: float = 10.0,
        max_body_bytes: int = 1024 * 1024,
        task_logs: TaskLogSettings | None = None,
        retention: RetentionSettings | None = None,
        webhooks: WebhookSettings | None = None,
    ) -> None:
        self.registry = WorkerRegistry(workers)
        self.store: Store = open_store(store) if isinstance(store, str) else store
        self.node = node or f"{socket.gethostname()}-{os.getpid()}"
        self.cancel_wait_s = cancel_wait_s
        self.shutdown_grace_s = shutdown_grace_s
        self.max_body_bytes = max_body_bytes
        self.observability = Observability(
            self.store, self.registry, self.node, task_logs=task_logs, retention=retention, webhooks=webhooks
        )
        self.executor = Executor(self.store, self.registry, self.node, sink=self.observability.sink)
        self.ready = False
        self._asgi: FastAPI | None = None

    def register(self, item: Worker) -> Worker:
        """Add a worker before the app starts; returns it, so it works as a decorator result."""
        if self._asgi is not None:
            raise RuntimeError("register workers before building the ASGI app or serving")
        return self.registry.register(item)

    # Life cycle --------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        await self.observability.start()
        await self.executor.start()
        self.ready = True
        logger.info("node %s ready with workers: %s", self.node, ", ".join(self.registry.names()) or "(none)")

    def begin_shutdown(self) -> None:
        """Report not ready and end the event streams; the server calls it when a stop signal arrives."""
        self.ready = False
        self.observability.begin_shutdown()

    async def stop(self) -> None:
        self.begin_shutdown()
        await self.executor.stop(self.shutdown_grace_s)
        await self.observability.stop()
        await self.store.close()
        logger.info("node %s stopped", self.node)

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """Start and stop the node; pass it as the lifespan of an app that mounts `asgi()`."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def asgi(self) -> FastAPI:
        """Build (once) the FastAPI app that serves this node's REST API."""
        if self._asgi is None:
            from tasky.api import create_api

            self._asgi = create_api(self)
        return self._asgi

    def serve(self, addr: str = "127.0.0.1:8888", **options: Any) -> None:
        """Serve the REST API until SIGINT or SIGTERM; see `tasky.server.run`."""
        from tasky.server import run

        run(self, addr, **options)

    # Workers -----------------------------------------------------------------

    def worker(self, name: str) -> Worker:
        found = self.registry.get(name)
        if found is None:
            raise WorkerNotFound(_unknown_worker_message(name, self.registry.names()), detail={"workers": self.registry.names()})
        return found

    # Tasks -------------------------------------------------------------------

    async def create_task(self, worker_name: str, raw_config: Any, *, callback_url: str | None = None) -> Task:
        """Validate the config (and callback URL), store the task as `queued` (durably) and wake the executor."""
        item = self.worker(worker_name)
        reason = item.disabled_reason()
        if reason:
            raise WorkerDisabled(f"worker {worker_name!r} is disabled: {reason}", detail={"worker": worker_name})
        config = item.validate_config(raw_config)
        if callback_url is not None:
            callback_url = self.observability.webhooks.check_url(callback_url)
        task = await self.store.create_task(str(uuid.uuid4()), worker_name, config.model_dump(mode="json"), callback_url=callback_url)
        logger.info("task %s of worker %s queued", task.id, worker_name, extra={"task_id": task.id, "worker": worker_name, "state": "queued"})
        self.executor.notify(worker_name)
        return task

    async def get_task(self, task_id: str) -> Task:
        task = await self.store.get_task(task_id)
        if task is None:
            pruned_at = await self.store.pruned_at(task_id)
            if pruned_at is not None:
                raise TaskPruned(
                    f"task {task_id!r} finished long ago and was deleted by retention at {pruned_at.isoformat()}",
                    detail={"id": task_id, "pruned_at": pruned_at.isoformat()},
                )
            raise TaskNotFound(f"no task with id {task_id!r}; list tasks at /tasky/v1/tasks", detail={"id": task_id})
        return task

    async def cancel(self, task_id: str) -> ActionResult:
        """Cancel a queued, running or paused task.

        A queued task is canceled at once. A running or paused one is asked
        to stop; the answer waits up to `cancel_wait_s` for it. If the task
        completes or fails first, that outcome wins and the cancel is
        rejected with the stored state.
        """
        task = await self.get_task(task_id)
        if task.state is TaskState.QUEUED:
            canceled = await self.store.transition(task_id, [TaskState.QUEUED], TaskState.CANCELED)
            if canceled is not None:
                logger.info(
                    "task %s of worker %s canceled while queued", task_id, task.worker,
                    extra={"task_id": task_id, "worker": task.worker, "node": self.node, "state": "canceled"},
                )
                return ActionResult(canceled)
            task = await self.get_task(task_id)  # claimed meanwhile: cancel it as a running task
        if task.state not in ACTIVE:
            raise _illegal("cancel", task)
        requested = await self.store.request_cancel(task_id, ACTIVE)
        if requested is None:
            raise _illegal("cancel", await self.get_task(task_id))
        self.executor.deliver_cancel(task_id)
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
        task = await self.get_task(task_id)
        if task.state is not TaskState.RUNNING:
            raise _illegal("pause", task)
        paused = await self.store.transition(task_id, [TaskState.RUNNING], TaskState.PAUSED, attempt=task.attempt)
        if paused is None:
            raise _illegal("pause", await self.get_task(task_id))
        self.executor.deliver_pause(task_id)
        logger.info("task %s paused", task_id, extra={"task_id": task_id, "worker": task.worker, "state": "paused"})
        return ActionResult(paused)

    async def resume(self, task_id: str) -> ActionResult:
        task = await self.get_task(task_id)
        if task.state is not TaskState.PAUSED:
            raise _illegal("resume", task)
        resumed = await self.store.transition(task_id, [TaskState.PAUSED], TaskState.RUNNING, attempt=task.attempt)
        if resumed is None:
            raise _illegal("resume", await self.get_task(task_id))
        self.executor.deliver_resume(task_id)
        logger.info("task %s resumed", task_id, extra={"task_id": task_id, "worker": task.worker, "state": "running"})
        return ActionResult(resumed)


LEGAL_FROM = {
    "cancel": "queued, running or paused",
    "pause": "running",
    "resume": "paused",
}


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


def _unknown_worker_message(name: str, known: list[str]) -> str:
    message = f"no worker named {name!r}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; the workers are listed at /tasky/v1/workers"
