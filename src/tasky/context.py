"""The `ctx` object that a worker's `perform` receives.

It carries the task id, reports progress and log lines, and delivers the
control requests (cancel, pause, resume) that the executor sets. Sync
`perform` code calls `checkpoint()` and `sleep()`; async code awaits
`acheckpoint()` and `asleep()`. Where progress and log lines end up is the
executor's business: the context only forwards them to its sink.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

from tasky.errors import TaskCanceled

# Progress is forwarded to the store at most this often per task, so a copy
# reporting every 1 MiB chunk does not turn into thousands of writes a second.
PROGRESS_INTERVAL_S = 0.2


class ContextSink(Protocol):
    """Receiver of what a running task reports; called from any thread."""

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None: ...

    def log(self, task_id: str, line: str) -> None: ...


class TaskContext:
    """Handle given to `perform(config, ctx)` for one attempt of one task."""

    def __init__(
        self,
        task_id: str,
        worker: str,
        attempt: int,
        sink: ContextSink,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.task_id = task_id
        self.worker = worker
        self.attempt = attempt
        self._sink = sink
        self._loop = loop
        self._lock = threading.Condition()
        self._canceled = False
        self._paused = False
        self._async_wakeup: asyncio.Event | None = None
        self._last_progress_at = 0.0
        self._pending_progress: tuple[float | None, float | None, str | None] | None = None

    # Reporting -------------------------------------------------------------

    def progress(self, done: float | None, total: float | None = None, message: str | None = None) -> None:
        """Report how far the task is; `done` and `total` share any unit."""
        now = time.monotonic()
        finished = total is not None and done is not None and done >= total
        with self._lock:
            self._pending_progress = (done, total, message)
            if not finished and now - self._last_progress_at < PROGRESS_INTERVAL_S:
                return
            self._last_progress_at = now
            self._pending_progress = None
        self._sink.progress(self.task_id, done, total, message)

    def flush_progress(self) -> None:
        """Forward progress that the rate limit held back; the executor calls it at the end."""
        with self._lock:
            pending, self._pending_progress = self._pending_progress, None
        if pending is not None:
            self._sink.progress(self.task_id, *pending)

    def log(self, line: str) -> None:
        """Append one line to the task's log."""
        self._sink.log(self.task_id, str(line))

    # Control, as seen by the worker ----------------------------------------

    @property
    def canceled(self) -> bool:
        return self._canceled

    @property
    def paused(self) -> bool:
        return self._paused

    def checkpoint(self) -> None:
        """Raise `TaskCanceled` if the task is canceled; block while it is paused."""
        with self._lock:
            while self._paused and not self._canceled:
                self._lock.wait()
            if self._canceled:
                raise TaskCanceled(f"task {self.task_id} was canceled")

    def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` of running time: wakes at once on cancel, and the clock stops while paused."""
        remaining = float(seconds)
        with self._lock:
            while True:
                while self._paused and not self._canceled:
                    self._lock.wait()
                if self._canceled:
                    raise TaskCanceled(f"task {self.task_id} was canceled")
                if remaining <= 0:
                    return
                started = time.monotonic()
                self._lock.wait(remaining)
                remaining -= time.monotonic() - started

    async def acheckpoint(self) -> None:
        """Async form of `checkpoint()`, for `async def perform`."""
        while self._paused and not self._canceled:
            await self._wakeup_event().wait()
        if self._canceled:
            raise TaskCanceled(f"task {self.task_id} was canceled")

    async def asleep(self, seconds: float) -> None:
        """Async form of `sleep()`, for `async def perform`."""
        remaining = float(seconds)
        while True:
            await self.acheckpoint()
            if remaining <= 0:
                return
            started = time.monotonic()
            try:
                await asyncio.wait_for(self._wakeup_event().wait(), remaining)
            except asyncio.TimeoutError:
                pass
            remaining -= time.monotonic() - started

    # Control, as set by the executor ----------------------------------------

    def request_cancel(self) -> None:
        with self._lock:
            self._canceled = True
            self._lock.notify_all()
        self._wake_async()

    def request_pause(self) -> None:
        with self._lock:
            self._paused = True
            self._lock.notify_all()
        self._wake_async()

    def request_resume(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()
        self._wake_async()

    def _wakeup_event(self) -> asyncio.Event:
        if self._async_wakeup is None:
            self._async_wakeup = asyncio.Event()
        return self._async_wakeup

    def _wake_async(self) -> None:
        # Async waiters live on the executor's loop; replace the event so the
        # next wait blocks again after this wake-up.
        event, self._async_wakeup = self._async_wakeup, None
        if event is None:
            return
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(event.set)
        else:
            event.set()
