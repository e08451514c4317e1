"""Running one attempt of a task: thread, event loop or child process, under a timeout.

`run_attempt` turns a failure of the worker's code into a failed outcome
rather than raising it. The timeout counts running time only: the clock stops while
the task is paused. When it expires, thread and async work are asked to
stop through `ctx` (as a cancel), and a child process gets SIGTERM, then
SIGKILL after the worker's grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tasky.context import TaskContext, terminate_group
from tasky.executor.outcome import Outcome, outcome_of_exception, outcome_of_result
from tasky.executor.process import ChildOutcome, ChildProcess
from tasky.executor.threads import DaemonThreadPool
from tasky.task import Task, TaskError, TaskState
from tasky.worker import Worker

logger = logging.getLogger(__name__)


@dataclass
class Attempt:
    """A running attempt, as the executor and control requests see it."""

    task: Task
    ctx: TaskContext
    worker: Worker
    timeout_s: float | None = None
    threads: DaemonThreadPool = field(default_factory=DaemonThreadPool)  # runs sync perform
    child: ChildProcess | None = None
    timed_out: bool = False
    finished: asyncio.Future[Task | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def cancel(self) -> None:
        self.ctx.request_cancel()
        if self.child is not None and self.child.pid is not None:
            terminate_group(self.child.pid, self.worker.kill_grace_s)

    def pause(self) -> None:
        self.ctx.request_pause()
        if self.child is not None:
            self.child.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.ctx.request_resume()
        if self.child is not None:
            self.child.signal(signal.SIGCONT)

    def kill_now(self) -> None:
        """Stop the attempt without a grace period (shutdown after its grace)."""
        self.ctx.request_cancel()
        if self.child is not None:
            self.child.signal(signal.SIGKILL)


@dataclass(frozen=True)
class AttemptEnd:
    outcome: Outcome
    exception: BaseException | None = None  # what perform raised, for the retry decision
    lingering: asyncio.Future[Any] | None = None  # timed-out work still running in its thread


async def run_attempt(attempt: Attempt) -> AttemptEnd:
    """Run the attempt to its end, or to its timeout plus the grace period."""
    work = asyncio.ensure_future(_perform(attempt))
    if attempt.timeout_s is not None:
        await _watch_timeout(attempt, work)
    if attempt.timed_out:
        # Thread work that ignores the stop request keeps running, but the
        # task's outcome is settled: it timed out.
        done, _ = await asyncio.wait({work}, timeout=attempt.worker.kill_grace_s + 1.0)
        return AttemptEnd(_timed_out(attempt), lingering=None if done else work)
    outcome, exc = await work
    return AttemptEnd(outcome, exc)


async def _perform(attempt: Attempt) -> tuple[Outcome, BaseException | None]:
    item, task, ctx = attempt.worker, attempt.task, attempt.ctx
    if item.isolation == "process":
        return await _perform_in_child(attempt)
    try:
        config = item.validate_config(task.config)
        if item.is_async:
            value = await item.perform(config, ctx)
        else:
            value = await attempt.threads.run(lambda: item.perform(config, ctx))
    except Exception as exc:  # any failure of user code becomes the task's error
        return outcome_of_exception(exc, ctx.canceled), exc
    return outcome_of_result(value), None


async def _perform_in_child(attempt: Attempt) -> tuple[Outcome, BaseException | None]:
    task = attempt.task
    sink = attempt.ctx._sink  # the child's reports go where the parent's would
    child = ChildProcess(attempt.worker, task.config, task.id, task.attempt, sink)
    attempt.child = child
    reported: ChildOutcome = await run_in_thread(child.run, name=f"tasky-child-{task.id[:8]}")
    if reported.kind == "result":
        return outcome_of_result(reported.value), None
    if reported.kind == "canceled" or attempt.ctx.canceled:
        return Outcome(TaskState.CANCELED), None
    assert reported.error is not None
    return Outcome(TaskState.FAILED, error=reported.error), RuntimeError(reported.error.message)


async def _watch_timeout(attempt: Attempt, work: asyncio.Future[Any]) -> None:
    assert attempt.timeout_s is not None
    while not work.done():
        remaining = attempt.timeout_s - attempt.ctx.active_time_s()
        if remaining <= 0 and not attempt.ctx.paused:
            logger.info(
                "task %s passed its timeout of %.1f s; stopping it", attempt.task.id, attempt.timeout_s,
                extra={"task_id": attempt.task.id, "worker": attempt.task.worker},
            )
            attempt.timed_out = True
            attempt.cancel()
            return
        # While paused the remaining time does not shrink, so this wakes and checks again.
        await asyncio.wait({work}, timeout=max(remaining, 0.05))


def _timed_out(attempt: Attempt) -> Outcome:
    error = TaskError(
        type="TimedOut",
        message=f"the task ran longer than its timeout of {attempt.timeout_s:g} s (paused time not counted)",
        reason="timeout",
    )
    return Outcome(TaskState.TIMED_OUT, error=error)


async def run_in_thread(fn: Callable[[], Any], *, name: str) -> Any:
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
