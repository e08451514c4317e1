"""The `Tasky` application object: workers, store and executor of one node.

It is what a user's own `main` builds (register workers, then `serve()` or
mount `asgi()`), and what the HTTP layer calls to create and steer tasks.
The meaning of each action in each state lives in `tasky.actions`; this
module wires the parts together and owns creation and worker switches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson

from tasky.actions import ActionResult, TaskActions
from tasky.errors import ConflictError, QueueFull, TaskNotFound, TaskPruned, WorkerDisabled, WorkerNotFound
from tasky.executor import Executor
from tasky.ids import new_task_id
from tasky.observability import Observability
from tasky.security import SecurityOptions
from tasky.settings import RetentionSettings, TaskLogSettings, WebhookSettings
from tasky.store import Store, open_store
from tasky.store.base import IdempotencyConflict, NewTask
from tasky.store.base import QueueFull as StoreQueueFull
from tasky.task import Task, TaskState
from tasky.worker import Worker, WorkerRegistry

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

__all__ = ["ActionResult", "Tasky"]

DEFAULT_IDEMPOTENCY_TTL_S = 86_400.0


class Tasky(TaskActions):
    """One tasky node: register workers, then serve them over HTTP.

    `store` is a SQLite file path (or a ready `Store`). `cancel_wait_s` is how
    long a cancel request waits for a running task to stop before it is
    answered with 202 and the task still running. `security` holds the
    auth, limit and CORS settings (see `tasky.security`).
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
        idempotency_ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S,
        security: SecurityOptions | None = None,
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
        self.idempotency_ttl_s = idempotency_ttl_s
        self.security = security or SecurityOptions()
        self.disabled: dict[str, str] = {}  # worker name -> reason, as switched by an operator
        self.observability = Observability(
            self.store, self.registry, self.node, task_logs=task_logs, retention=retention, webhooks=webhooks
        )
        self.executor = Executor(
            self.store, self.registry, self.node, is_enabled=lambda name: name not in self.disabled, sink=self.observability.sink
        )
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
        for name, (enabled, reason) in (await self.store.worker_settings()).items():
            if not enabled and name in self.registry:
                self.disabled[name] = reason or "disabled by an operator"
        await self.observability.start()
        await self.executor.start()
        self.ready = True
        logger.info("node %s ready with workers: %s", self.node, ", ".join(self.registry.names()) or "(none)")

    def begin_shutdown(self) -> None:
        """Report not ready, stop claiming and end the event streams at once; `stop()` does the rest."""
        self.ready = False
        self.executor.begin_stop()
        self.observability.begin_shutdown()

    async def drain(self) -> None:
        """Stop claiming, give running tasks the grace period, then interrupt the rest."""
        self.begin_shutdown()
        await self.executor.stop(self.shutdown_grace_s)

    async def stop(self) -> None:
        await self.drain()
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

    def disabled_reason(self, item: Worker) -> str | None:
        return self.disabled.get(item.name) or item.disabled_reason()

    def worker_info(self, item: Worker) -> dict[str, Any]:
        info = item.info()
        reason = self.disabled_reason(item)
        info["status"] = "disabled" if reason else "enabled"
        info["status_reason"] = reason
        return info

    async def set_worker_enabled(self, name: str, enabled: bool, reason: str | None = None) -> dict[str, Any]:
        """Switch a worker on or off; persisted, and queued tasks stay queued while it is off."""
        item = self.worker(name)
        own_reason = item.disabled_reason()
        if enabled and own_reason:
            raise WorkerDisabled(
                f"worker {name!r} cannot be enabled: {own_reason}", detail={"worker": name, "reason": own_reason}
            )
        reason = None if enabled else (reason or "disabled by an operator")
        await self.store.set_worker_enabled(name, enabled, reason)
        if enabled:
            self.disabled.pop(name, None)
            self.executor.notify(name)
        else:
            self.disabled[name] = reason or ""
        logger.info("worker %s %s", name, "enabled" if enabled else f"disabled: {reason}", extra={"worker": name})
        return self.worker_info(item)

    # Tasks -------------------------------------------------------------------

    async def create_task(
        self,
        worker_name: str,
        raw_config: Any,
        *,
        hold: bool = False,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> tuple[Task, bool]:
        """Validate the config (and callback URL) and store the task durably; returns it and whether it is new.

        With an `idempotency_key` seen before with the same body, the earlier
        task is returned and nothing is created.
        """
        item = self.worker(worker_name)
        reason = self.disabled_reason(item)
        if reason:
            raise WorkerDisabled(f"worker {worker_name!r} is disabled: {reason}", detail={"worker": worker_name})
        config = item.validate_request(raw_config).model_dump(mode="json")
        if callback_url is not None:
            callback_url = self.observability.webhooks.check_url(callback_url)
        new = NewTask(
            id=new_task_id(),
            worker=worker_name,
            config=config,
            held=hold,
            timeout_s=timeout_s,
            max_queued=item.max_queued if item.queue_policy == "reject" else None,
            idempotency_key=idempotency_key,
            body_hash=_body_hash(config, hold, timeout_s, callback_url) if idempotency_key is not None else None,
            idempotency_ttl_s=self.idempotency_ttl_s,
            callback_url=callback_url,
        )
        # A free slot lets the creating transaction claim the task as well.
        slots = 0 if hold else self.executor.reserve(item, 1)
        if slots:
            # Shielded: a task claimed for this node must start even if the caller stops waiting.
            claimed = dataclasses.replace(new, claim_node=self.node)
            return await asyncio.shield(self._insert_and_start(item, claimed, slots))
        return await self._insert_and_start(item, new, 0)

    async def _insert_and_start(self, item: Worker, new: NewTask, slots: int) -> tuple[Task, bool]:
        try:
            task, created = await self._insert(item, new)
        finally:
            self.executor.release(item, slots)
        if created:
            first = TaskState.HELD if new.held else TaskState.QUEUED
            logger.info("task %s of worker %s %s", task.id, item.name, first.value,
                        extra={"task_id": task.id, "worker": item.name, "state": first.value})
            if task.state is TaskState.RUNNING:
                self.executor.begin(item, task)  # claimed in the creating transaction
            else:
                self.executor.notify(item.name)
        return task, created

    async def _insert(self, item: Worker, new: NewTask) -> tuple[Task, bool]:
        try:
            return await self.store.create_task(new)
        except IdempotencyConflict as exc:
            raise ConflictError(
                f"idempotency key {new.idempotency_key!r} was already used for task {exc.task_id} with a different body; "
                "use a new key for a different request",
                code="idempotency_conflict",
                detail={"task_id": exc.task_id},
            ) from None
        except StoreQueueFull as exc:
            raise QueueFull(
                f"worker {item.name!r} already has {exc.queued} queued tasks, its limit; retry later",
                retry_after_s=_retry_after_s(item),
                detail={"worker": item.name, "max_queued": item.max_queued},
            ) from None

    async def wait_finished(self, task_id: str, timeout_s: float) -> Task:
        """Return the task once it is in a final state, or as it is after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        task = await self.get_task(task_id)
        async for _ in self.observability.hub.changes(timeout_s=timeout_s):
            task = await self.get_task(task_id)
            remaining = deadline - loop.time()
            if task.state.is_terminal or remaining <= 0:
                return task
        return task  # the hub closed: the node is shutting down

    async def get_task(self, task_id: str) -> Task:
        task = await self.store.get_task(task_id)
        if task is None:
            pruned_at = await self.store.pruned_at(task_id)
            if pruned_at is not None:
                raise TaskPruned(
                    f"task {task_id!r} was deleted by retention at {pruned_at.isoformat()}, some time after it finished",
                    detail={"id": task_id, "pruned_at": pruned_at.isoformat()},
                )
            raise TaskNotFound(f"no task with id {task_id!r}; list tasks at /tasky/v1/tasks", detail={"id": task_id})
        return task


def _body_hash(config: dict[str, Any], hold: bool, timeout_s: float | None, callback_url: str | None = None) -> str:
    body = {"config": config, "hold": hold, "timeout_s": timeout_s}
    if callback_url is not None:
        body["callback_url"] = callback_url  # only when given, so hashes stored before it existed still match
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _retry_after_s(item: Worker) -> int:
    # NOTE: a fixed estimate; tasky does not yet predict when a queue slot frees up.
    return 1 if item.timeout_s is None else max(1, min(60, int(item.timeout_s)))


def _unknown_worker_message(name: str, known: list[str]) -> str:
    message = f"no worker named {name!r}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; the workers are listed at /tasky/v1/workers"
