"""A pool of long-lived daemon threads for sync `perform` code.

Starting an OS thread per task blocks the event loop until the thread runs,
which showed up as a large share of the loop's time in the end-to-end
profile. The pool reuses idle threads and starts a new one only when every
thread is busy, so the number of threads follows the number of tasks
running at once (bounded by the workers' `max_tasks`). Threads are daemons:
a task that ignores cancel must not keep the process from exiting at
shutdown, and its task record is settled by then.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0  # an idle thread exits after this long without work

Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class DaemonThreadPool:
    def __init__(self, name: str = "tasky-task") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` in a pool thread and await its value or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            start_thread = self._idle == 0
            if not start_thread:
                self._idle -= 1  # reserved for this job, so a second job does not count it too
            else:
                self._started += 1
                number = self._started
        self._jobs.put((fn, loop, future))
        if start_thread:
            threading.Thread(target=self._serve, name=f"{self._name}-{number}", daemon=True).start()
        return await future

    def _serve(self) -> None:
        while True:
            try:
                fn, loop, future = self._jobs.get(timeout=IDLE_TIMEOUT_S)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:
                        self._idle -= 1
                        return
                continue  # a job reserved this thread; wait for it
            _deliver(fn, loop, future)
            with self._lock:
                self._idle += 1


def _deliver(fn: Callable[[], Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
    try:
        value = fn()
    except BaseException as exc:  # handed to the awaiting coroutine
        _call_soon(loop, _set, future.set_exception, future, exc)
    else:
        _call_soon(loop, _set, future.set_result, future, value)


def _set(setter: Callable[[Any], None], future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        setter(value)


def _call_soon(loop: asyncio.AbstractEventLoop, *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(*args)
    except RuntimeError:
        pass  # the loop closed during shutdown; the task was already recovered
