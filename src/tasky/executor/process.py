"""Running one attempt of a task in a child process (`isolation="process"`).

The child is started with the `spawn` method, leads its own process group
and dies with the thread that started it (Linux PR_SET_PDEATHSIG), so a
killed node leaves no orphan. It sends progress, log lines and its final
outcome to the parent over a pipe. The parent turns control requests into
signals on the child's group. Cancel and timeout are SIGTERM, then SIGKILL
after the worker's grace period. Pause and resume are SIGSTOP and SIGCONT.
A child that ends without reporting an outcome (a signal, `os._exit`, the
OOM killer) fails the task with its exit status.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tasky.context import ContextSink, TaskContext, signal_group
from tasky.errors import TaskCanceled
from tasky.task import TaskError
from tasky.worker import Worker

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildOutcome:
    """Report of a child: its final message, or only the exit code when it died without one."""

    kind: str | None  # "result", "error", "canceled" or None
    value: Any = None
    error: TaskError | None = None
    exitcode: int | None = None


class PipeSink:
    """Context sink of the child: sends each report to the parent."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        self._conn.send(("progress", done, total, message))

    def log(self, task_id: str, line: str) -> None:
        self._conn.send(("log", line))


def child_main(conn: Connection, item: Worker, config: dict[str, Any], task_id: str, attempt: int) -> None:
    """Entry point of the child process."""
    os.setpgrp()
    _die_with_parent()
    ctx = TaskContext(task_id, item.name, attempt, PipeSink(conn), kill_grace_s=item.kill_grace_s)
    signal.signal(signal.SIGTERM, lambda *_: _raise_canceled(ctx))
    try:
        value = item.perform(item.validate_config(config), ctx)
        ctx.flush_progress()
        conn.send(("result", value))
    except TaskCanceled:
        conn.send(("canceled",))
    except BaseException as exc:  # reported to the parent as the task's error
        conn.send(("error", type(exc).__qualname__, str(exc), "".join(traceback.format_exception(exc))))
    finally:
        conn.close()


def _raise_canceled(ctx: TaskContext) -> None:
    ctx.request_cancel()
    raise TaskCanceled(f"task {ctx.task_id} was canceled (SIGTERM)")


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        logger.warning("cannot set PR_SET_PDEATHSIG; a killed node may leave this child running")


class ChildProcess:
    """Parent-side handle of one child; `run()` blocks its thread until the child exits."""

    def __init__(self, item: Worker, config: dict[str, Any], task_id: str, attempt: int, sink: ContextSink) -> None:
        self.item = item
        self.task_id = task_id
        self._sink = sink
        context = multiprocessing.get_context("spawn")
        self._reader, writer = context.Pipe(duplex=False)
        self._writer = writer
        self._process = context.Process(
            target=child_main, args=(writer, item, config, task_id, attempt), name=f"tasky-{task_id[:8]}", daemon=True
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def run(self) -> ChildOutcome:
        """Start the child, relay its reports and return its outcome once it has exited."""
        self._process.start()
        self._writer.close()  # only the child has the write end open now, so EOF means it exited
        final: tuple[Any, ...] | None = None
        while True:
            try:
                message = self._reader.recv()
            except (EOFError, OSError):
                break
            final = self._relay(message) or final
        self._process.join()
        self._reader.close()
        return _outcome(final, self._process.exitcode)

    def _relay(self, message: tuple[Any, ...]) -> tuple[Any, ...] | None:
        kind = message[0]
        if kind == "progress":
            self._sink.progress(self.task_id, *message[1:])
            return None
        if kind == "log":
            self._sink.log(self.task_id, message[1])
            return None
        return message

    def signal(self, sig: int) -> None:
        if self._process.pid is not None:
            signal_group(self._process.pid, sig)


def _outcome(final: tuple[Any, ...] | None, exitcode: int | None) -> ChildOutcome:
    if final is None:
        return ChildOutcome(None, error=_death_error(exitcode), exitcode=exitcode)
    if final[0] == "result":
        return ChildOutcome("result", value=final[1], exitcode=exitcode)
    if final[0] == "canceled":
        return ChildOutcome("canceled", exitcode=exitcode)
    _, kind, message, trace = final
    return ChildOutcome("error", error=TaskError(type=kind, message=message, traceback=trace), exitcode=exitcode)


def _death_error(exitcode: int | None) -> TaskError:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        text = f"the task's process was killed by signal {name} ({-exitcode})"
        if -exitcode == signal.SIGKILL:
            text += "; the kernel's OOM killer is one cause, check the system log"
    else:
        text = f"the task's process exited with status {exitcode} before reporting a result"
    return TaskError(type="ChildProcessDied", message=text, reason=f"exitcode {exitcode}")
