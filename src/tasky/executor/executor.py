"""The executor: claims queued tasks within each worker's limit and runs them.

It runs inside the server process on its event loop. For each worker it
claims the oldest queued tasks while fewer than `max_tasks` of that worker
run on this node, runs each attempt (see `executor.attempt`), and stores the
outcome with a conditional write: final, or back to `queued` for a retry
after the worker's backoff. Control requests reach a running attempt
through its context. What a request means for the stored state is decided
by `tasky.app`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from tasky.context import ContextSink, TaskContext
from tasky.executor.attempt import Attempt, AttemptEnd, run_attempt
from tasky.executor.threads import DaemonThreadPool
from tasky.store.base import Change, Store
from tasky.task import Task, TaskState
from tasky.worker import Worker, WorkerRegistry

logger = logging.getLogger(__name__)

ACTIVE_STATES = (TaskState.RUNNING, TaskState.PAUSED)
SWEEP_INTERVAL_S = 5.0  # safety net: claim rounds for every worker at this pace


class StoreSink:
    """Forwards a context's progress and log lines to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        self._store.report_progress(task_id, done, total, message)

    def log(self, task_id: str, line: str) -> None:
        self._store.append_log(task_id, line)


class Executor:
    def __init__(
        self,
        store: Store,
        registry: WorkerRegistry,
        node: str,
        is_enabled: Callable[[str], bool] = lambda _: True,
        *,
        sink: ContextSink | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.node = node
        self.is_enabled = is_enabled
        self._sink = sink or StoreSink(store)
        self._threads = DaemonThreadPool()
        self._running: dict[str, Attempt] = {}
        self._running_by_worker: dict[str, set[str]] = defaultdict(set)
        # Slots promised to claims still in the store's write queue, per worker.
        self._reserved: dict[str, int] = defaultdict(int)
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
                "recovered task %s of worker %s, interrupted when its node stopped; now %s", task.id, task.worker, task.state.value,
                extra={"task_id": task.id, "worker": task.worker, "node": self.node, "state": task.state.value},
            )
        self._stopping = False
        for name, due in (await self.store.next_run_after()).items():
            self.notify_at(name, due)
        self._spawn(self._sweep())

    def begin_stop(self) -> None:
        """Stop claiming new tasks at once (called from the signal handler)."""
        self._stopping = True

    async def stop(self, grace_s: float) -> None:
        """Stop claiming, give running tasks `grace_s` to finish, then interrupt the rest."""
        self._stopping = True
        running = [entry.finished for entry in self._running.values()]
        if running:
            logger.info("waiting up to %.1f s for %d running tasks", grace_s, len(running))
            await asyncio.wait(running, timeout=grace_s)
        leftover = list(self._running.values())
        if leftover:
            restartable = [entry.task.worker for entry in leftover if entry.worker.restartable]
            for task in await self.store.recover(restartable, node=self.node):
                logger.warning("task %s interrupted by shutdown; now %s", task.id, task.state.value, extra={"task_id": task.id})
            for entry in leftover:
                entry.kill_now()
        for job in list(self._background):
            job.cancel()

    # Claiming ----------------------------------------------------------------

    def notify(self, worker_name: str) -> None:
        """Ask for a claim round for one worker; rounds requested while one waits are merged."""
        if self._stopping or worker_name in self._dispatch_pending:
            return
        self._dispatch_pending.add(worker_name)
        self._spawn(self._dispatch(worker_name))

    def notify_at(self, worker_name: str, unix_time: float) -> None:
        """Ask for a claim round once `unix_time` has passed (a retry's backoff)."""
        delay = max(0.0, unix_time - time.time()) + 0.001
        asyncio.get_running_loop().call_later(delay, self.notify, worker_name)

    async def _sweep(self) -> None:
        while not self._stopping:
            for name in self.registry.names():
                self.notify(name)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def _dispatch(self, worker_name: str) -> None:
        async with self._locks[worker_name]:
            self._dispatch_pending.discard(worker_name)
            item = self.registry.get(worker_name)
            if item is None:
                return
            free = self.reserve(item, item.max_tasks)
            if free == 0:
                return
            try:
                claimed = await self.store.claim(worker_name, free, self.node)
            except Exception:
                logger.exception("claiming tasks of worker %s failed; the next sweep retries", worker_name)
                claimed = []
            self.release(item, free)
            for task in claimed:
                self.begin(item, task)

    def reserve(self, item: Worker, requested: int) -> int:
        """Reserve up to `requested` free slots of the worker for a claim about to be written, and return the count.

        The slots count as taken until `release`, so a claim made while
        another is in the store's queue cannot exceed `max_tasks`.
        """
        if self._stopping or not self.is_enabled(item.name):
            return 0
        in_use = len(self._running_by_worker[item.name]) + self._reserved[item.name]
        granted = max(0, min(requested, item.max_tasks - in_use))
        self._reserved[item.name] += granted
        return granted

    def release(self, item: Worker, count: int) -> None:
        """Release slots taken by `reserve`. Call it before `begin` runs the tasks that the claim returned."""
        self._reserved[item.name] -= count

    def begin(self, item: Worker, task: Task) -> None:
        """Run a task this node has claimed in the store."""
        loop = asyncio.get_running_loop()
        ctx = TaskContext(task.id, task.worker, task.attempt, self._sink, loop, kill_grace_s=item.kill_grace_s)
        entry = Attempt(task=task, ctx=ctx, worker=item, timeout_s=task.timeout_s or item.timeout_s, threads=self._threads)
        self._running[task.id] = entry
        self._running_by_worker[task.worker].add(task.id)
        logger.info(
            "task %s of worker %s started (attempt %d)", task.id, task.worker, task.attempt,
            extra={"task_id": task.id, "worker": task.worker, "node": self.node, "state": "running"},
        )
        self._spawn(self._execute(entry))

    # Running -----------------------------------------------------------------

    async def _execute(self, entry: Attempt) -> None:
        task = entry.task
        stored: Task | None = None
        end: AttemptEnd | None = None
        successors: list[Task] | None = None  # Tasks claimed by the finishing write, or None without such a claim.
        try:
            end = await run_attempt(entry)
            entry.ctx.flush_progress()
            stored, successors = await self._finish(entry, end)
        except Exception:
            logger.exception("recording the end of task %s failed", task.id, extra={"task_id": task.id})
        finally:
            if not entry.finished.done():
                entry.finished.set_result(stored)
            if end is not None and end.lingering is not None:
                # The slot stays taken until the ignored thread really ends.
                logger.warning("task %s timed out but its thread is still running", task.id, extra={"task_id": task.id})
                await asyncio.wait({end.lingering})
            self._running.pop(task.id, None)
            self._running_by_worker[task.worker].discard(task.id)
            if successors is None:
                self.notify(task.worker)
            for successor in successors or ():
                self.begin(entry.worker, successor)

    async def _finish(self, entry: Attempt, end: AttemptEnd) -> tuple[Task | None, list[Task] | None]:
        """Store the attempt's outcome, and claim the next queued task for the freed slot in the same write."""
        task, outcome = entry.task, end.outcome
        extra = {"task_id": task.id, "worker": task.worker, "node": self.node, "state": outcome.state.value}
        policy = entry.worker.retry
        if outcome.state is TaskState.FAILED and policy and end.exception and policy.should_retry(end.exception, task.attempt):
            return await self._schedule_retry(entry, end), None
        hand_over = end.lingering is None and not self._stopping and self.is_enabled(task.worker)
        stored, successors = await self.store.finish_and_claim(
            task.id, ACTIVE_STATES, outcome.state, attempt=task.attempt,
            change=Change(result=outcome.result, error=outcome.error),
            claim=(task.worker, 1, self.node) if hand_over else None,
        )  # fmt: skip
        claimed = successors if hand_over else None
        if stored is None:
            # Shutdown, a timeout or recovery already moved the task on, so its stored state wins.
            logger.info("task %s ended %s after its stored state had changed", task.id, outcome.state.value, extra=extra)
            return await self._read_after_change(task), claimed
        if outcome.error is not None:
            logger.info("task %s of worker %s %s: %s: %s", task.id, task.worker, outcome.state.value,
                        outcome.error.type, outcome.error.message, extra=extra)
        else:
            logger.info("task %s of worker %s %s", task.id, task.worker, outcome.state.value, extra=extra)
        return stored, claimed

    async def _read_after_change(self, task: Task) -> Task | None:
        """Read a task whose state moved on during its run. A failed read returns None, so the claimed successors still start."""
        try:
            return await self.store.get_task(task.id)
        except Exception:
            logger.exception("reading task %s after its state changed failed", task.id, extra={"task_id": task.id})
            return None

    async def _schedule_retry(self, entry: Attempt, end: AttemptEnd) -> Task | None:
        task, policy = entry.task, entry.worker.retry
        assert policy is not None
        run_after = time.time() + policy.delay_s(task.attempt)
        change = Change(error=end.outcome.error, reason="retry", run_after=run_after)
        stored = await self.store.transition(task.id, ACTIVE_STATES, TaskState.QUEUED, attempt=task.attempt, change=change)
        if stored is not None:
            logger.info(
                "task %s attempt %d failed; attempt %d in %.2f s", task.id, task.attempt, stored.attempt, run_after - time.time(),
                extra={"task_id": task.id, "worker": task.worker, "node": self.node, "state": "queued"},
            )
            self.notify_at(task.worker, run_after)
        return stored

    # Control -----------------------------------------------------------------

    def running_entry(self, task_id: str) -> Attempt | None:
        return self._running.get(task_id)

    def deliver(self, task_id: str, action: str) -> bool:
        """Pass cancel, pause or resume to a task running on this node; False if it runs nowhere here."""
        entry = self._running.get(task_id)
        if entry is None:
            return False
        getattr(entry, action)()
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
