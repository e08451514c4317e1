"""The executor: claims queued tasks within each worker's limit and runs them.

It runs inside the server process on its event loop. For each worker it
claims the oldest queued tasks while fewer than `max_tasks` of that worker
run on this node, runs `perform` (sync code in its own thread, async code on
the loop), and stores the final state with a conditional write. Control
requests (cancel, pause, resume) reach a running task through its context.
What a request means for the stored state is decided by `tasky.app`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tasky.context import ContextSink, TaskContext
from tasky.executor.outcome import Outcome, outcome_of_exception, outcome_of_result
from tasky.store.base import Change, Store
from tasky.task import Task, TaskState
from tasky.worker import Worker, WorkerRegistry

logger = logging.getLogger(__name__)

ACTIVE_STATES = (TaskState.RUNNING, TaskState.PAUSED)


@dataclass
class RunningTask:
    task: Task
    ctx: TaskContext
    finished: asyncio.Future[Task | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class StoreSink:
    """Forwards a context's progress and log lines to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        self._store.report_progress(task_id, done, total, message)

    def log(self, task_id: str, line: str) -> None:
        self._store.append_log(task_id, line)


class Executor:
    def __init__(self, store: Store, registry: WorkerRegistry, node: str, *, sink: ContextSink | None = None) -> None:
        self.store = store
        self.registry = registry
        self.node = node
        self._sink = sink or StoreSink(store)
        self._running: dict[str, RunningTask] = {}
        self._running_by_worker: dict[str, set[str]] = defaultdict(set)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._dispatch_pending: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # Life cycle --------------------------------------------------------------

    async def start(self) -> None:
        """Recover tasks that an earlier process left active, then start claiming."""
        restartable = [item.name for item in self.registry if item.restartable]
        for task in await self.store.recover(restartable):
            logger.warning(
                "task %s of worker %s was left %s by a stopped node; now %s",
                task.id, task.worker, "active", task.state.value,
                extra={"task_id": task.id, "worker": task.worker, "node": self.node},
            )
        self._stopping = False
        for name in self.registry.names():
            self.notify(name)

    async def stop(self, grace_s: float) -> None:
        """Stop claiming, give running tasks `grace_s` to finish, then interrupt the rest."""
        self._stopping = True
        running = [entry.finished for entry in self._running.values()]
        if running:
            logger.info("waiting up to %.1f s for %d running tasks", grace_s, len(running))
            await asyncio.wait(running, timeout=grace_s)
        leftover = list(self._running.values())
        if leftover:
            restartable = [entry.task.worker for entry in leftover if self._is_restartable(entry.task.worker)]
            for task in await self.store.recover(restartable, node=self.node):
                logger.warning("task %s interrupted by shutdown; now %s", task.id, task.state.value, extra={"task_id": task.id})
            for entry in leftover:
                entry.ctx.request_cancel()
        for job in list(self._background):
            job.cancel()

    def _is_restartable(self, worker_name: str) -> bool:
        item = self.registry.get(worker_name)
        return bool(item and item.restartable)

    # Claiming ----------------------------------------------------------------

    def notify(self, worker_name: str) -> None:
        """Ask for a claim round for one worker; rounds requested while one waits are merged."""
        if self._stopping or worker_name in self._dispatch_pending:
            return
        self._dispatch_pending.add(worker_name)
        self._spawn(self._dispatch(worker_name))

    async def _dispatch(self, worker_name: str) -> None:
        async with self._locks[worker_name]:
            self._dispatch_pending.discard(worker_name)
            item = self.registry.get(worker_name)
            if item is None or self._stopping:
                return
            free = item.max_tasks - len(self._running_by_worker[worker_name])
            if free <= 0:
                return
            try:
                claimed = await self.store.claim(worker_name, free, self.node)
            except Exception:
                logger.exception("claiming tasks of worker %s failed; will retry on the next event", worker_name)
                return
            for task in claimed:
                self._begin(item, task)

    def _begin(self, item: Worker, task: Task) -> None:
        loop = asyncio.get_running_loop()
        ctx = TaskContext(task.id, task.worker, task.attempt, self._sink, loop)
        entry = RunningTask(task=task, ctx=ctx)
        self._running[task.id] = entry
        self._running_by_worker[task.worker].add(task.id)
        logger.info(
            "task %s of worker %s started (attempt %d)", task.id, task.worker, task.attempt,
            extra={"task_id": task.id, "worker": task.worker, "node": self.node, "state": "running"},
        )
        self._spawn(self._execute(item, entry))

    # Running -----------------------------------------------------------------

    async def _execute(self, item: Worker, entry: RunningTask) -> None:
        task, ctx = entry.task, entry.ctx
        stored: Task | None = None
        try:
            outcome = await self._perform(item, task, ctx)
            ctx.flush_progress()
            stored = await self._finish(task, outcome)
        except Exception:
            logger.exception("recording the end of task %s failed", task.id, extra={"task_id": task.id})
        finally:
            self._running.pop(task.id, None)
            self._running_by_worker[task.worker].discard(task.id)
            if not entry.finished.done():
                entry.finished.set_result(stored)
            self.notify(task.worker)

    async def _perform(self, item: Worker, task: Task, ctx: TaskContext) -> Outcome:
        try:
            config = item.validate_config(task.config)
            if item.is_async:
                value = await item.perform(config, ctx)
            else:
                value = await _run_in_thread(lambda: item.perform(config, ctx), name=f"tasky-{task.id[:8]}")
        except Exception as exc:  # any failure of user code becomes the task's error
            return outcome_of_exception(exc, ctx.canceled)
        return outcome_of_result(value)

    async def _finish(self, task: Task, outcome: Outcome) -> Task | None:
        change = Change(result=outcome.result, error=outcome.error)
        stored = await self.store.transition(task.id, ACTIVE_STATES, outcome.state, attempt=task.attempt, change=change)
        extra = {"task_id": task.id, "worker": task.worker, "node": self.node, "state": outcome.state.value}
        if stored is None:
            # Shutdown or recovery already moved the task on; its stored state wins.
            logger.warning("task %s ended %s but its stored state had already changed", task.id, outcome.state.value, extra=extra)
            return await self.store.get_task(task.id)
        if outcome.error is not None:
            logger.info("task %s of worker %s failed: %s: %s", task.id, task.worker, outcome.error.type, outcome.error.message, extra=extra)
        else:
            logger.info("task %s of worker %s %s", task.id, task.worker, outcome.state.value, extra=extra)
        return stored

    # Control -----------------------------------------------------------------

    def running_entry(self, task_id: str) -> RunningTask | None:
        return self._running.get(task_id)

    def deliver_cancel(self, task_id: str) -> bool:
        entry = self._running.get(task_id)
        if entry is None:
            return False
        entry.ctx.request_cancel()
        return True

    def deliver_pause(self, task_id: str) -> bool:
        entry = self._running.get(task_id)
        if entry is None:
            return False
        entry.ctx.request_pause()
        return True

    def deliver_resume(self, task_id: str) -> bool:
        entry = self._running.get(task_id)
        if entry is None:
            return False
        entry.ctx.request_resume()
        return True

    async def wait_finished(self, task_id: str, timeout_s: float) -> Task | None:
        """Wait for a running task to be finished and stored; None if it is not running here or times out."""
        entry = self._running.get(task_id)
        if entry is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(entry.finished), timeout_s)
        except asyncio.TimeoutError:
            return None

    def running_count(self, worker_name: str) -> int:
        return len(self._running_by_worker[worker_name])

    def _spawn(self, coro: Any) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)


async def _run_in_thread(fn: Callable[[], Any], *, name: str) -> Any:
    """Run `fn` in a new daemon thread and await its value.

    A daemon thread, not a pool: a task that ignores cancel must not keep
    the process from exiting at shutdown, and its task record is already
    settled by then.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            setter(value)

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting coroutine
            _call_soon(loop, deliver, future.set_exception, exc)
        else:
            _call_soon(loop, deliver, future.set_result, value)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future


def _call_soon(loop: asyncio.AbstractEventLoop, *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(*args)
    except RuntimeError:
        pass  # the loop closed during shutdown; the task was already recovered
