"""The `ctx` object that a worker's `perform` receives.

It carries the task id, reports progress and log lines, and delivers the
control requests (cancel, pause, resume) that the executor sets. Sync
`perform` code calls `checkpoint()` and `sleep()`; async code awaits
`acheckpoint()` and `asleep()`. Where progress and log lines end up is the
executor's business: the context only forwards them to its sink.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from tasky.errors import TaskCanceled

if TYPE_CHECKING:
    from tasky.subprocesses import CommandResult

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
        kill_grace_s: float = 5.0,
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
        self.kill_grace_s = kill_grace_s
        self._started = time.monotonic()
        self._paused_since: float | None = None
        self._paused_total_s = 0.0
        self._process_groups: set[int] = set()

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

    def run(self, argv: Sequence[str], **options: Any) -> CommandResult:
        """Run a command whose process group follows this task's cancel, pause and resume.

        Its stdout and stderr lines go to the task's log. Options are those
        of `tasky.subprocesses.run_command`; for `async def perform`, call it
        through `asyncio.to_thread`.
        """
        from tasky.subprocesses import run_command

        return run_command(self, argv, **options)

    def active_time_s(self) -> float:
        """Return the seconds this attempt has run, leaving out the time paused."""
        now = time.monotonic()
        paused = self._paused_total_s
        if self._paused_since is not None:
            paused += now - self._paused_since
        return now - self._started - paused

    # Control, as set by the executor ----------------------------------------

    def request_cancel(self) -> None:
        with self._lock:
            self._canceled = True
            groups = list(self._process_groups)
            self._lock.notify_all()
        for group in groups:
            terminate_group(group, self.kill_grace_s)
        self._wake_async()

    def request_pause(self) -> None:
        with self._lock:
            if not self._paused:
                self._paused_since = time.monotonic()
            self._paused = True
            groups = list(self._process_groups)
            self._lock.notify_all()
        for group in groups:
            signal_group(group, signal.SIGSTOP)
        self._wake_async()

    def request_resume(self) -> None:
        with self._lock:
            if self._paused_since is not None:
                self._paused_total_s += time.monotonic() - self._paused_since
                self._paused_since = None
            self._paused = False
            groups = list(self._process_groups)
            self._lock.notify_all()
        for group in groups:
            signal_group(group, signal.SIGCONT)
        self._wake_async()

    def attach_process_group(self, group: int) -> None:
        """Make a process group follow this task's control requests (used by `run`)."""
        with self._lock:
            self._process_groups.add(group)
            paused, canceled = self._paused, self._canceled
        if canceled:
            terminate_group(group, self.kill_grace_s)
        elif paused:
            signal_group(group, signal.SIGSTOP)

    def detach_process_group(self, group: int) -> None:
        with self._lock:
            self._process_groups.discard(group)

    def wait_changed(self, timeout_s: float) -> None:
        """Block until a control request arrives or `timeout_s` passes."""
        with self._lock:
            self._lock.wait(timeout_s)

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


def signal_group(group: int, sig: int) -> bool:
    """Send `sig` to a process group; False if the group no longer exists."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


def terminate_group(group: int, grace_s: float) -> None:
    """Send SIGTERM (and SIGCONT, so a stopped group can act on it), then SIGKILL after `grace_s`."""
    if not signal_group(group, signal.SIGTERM):
        return
    signal_group(group, signal.SIGCONT)
    timer = threading.Timer(grace_s, signal_group, args=(group, signal.SIGKILL))
    timer.daemon = True
    timer.start()
