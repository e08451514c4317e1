"""Workers used only by the tests; served with `--workers jobs`."""

from __future__ import annotations

import time

from pydantic import BaseModel

import tasky
from tasky import TaskContext, Worker


@tasky.worker(max_tasks=4)
def add(a: int, b: int = 0) -> int:
    """Add two integers."""
    return a + b


@tasky.worker(max_tasks=4)
def fail(message: str = "it broke") -> None:
    """Raise ValueError with the given message."""
    raise ValueError(message)


@tasky.worker(name="async-nap", max_tasks=3)
async def async_nap(ctx: TaskContext, seconds: float = 1.0) -> dict[str, float]:
    """Sleep through the async context API."""
    await ctx.asleep(seconds)
    return {"slept_s": seconds}


@tasky.worker(name="stubborn", max_tasks=2)
def stubborn(seconds: float = 1.0) -> str:
    """Sleep with time.sleep, ignoring cancel and pause."""
    time.sleep(seconds)
    return "done"


@tasky.worker(name="not-json", max_tasks=1)
def not_json() -> object:
    """Return a value that JSON cannot represent."""
    return {1, 2, 3}


class NapConfig(BaseModel):
    seconds: float = 30.0


class FragileNap(Worker):
    """A long sleep whose worker is not restartable, for crash recovery tests."""

    name = "fragile-nap"
    description = "Sleep; a crash of the node fails the task instead of re-queuing it."
    config = NapConfig
    max_tasks = 2
    restartable = False

    def perform(self, config: NapConfig, ctx: TaskContext) -> float:
        ctx.sleep(config.seconds)
        return config.seconds


fragile_nap = FragileNap()


# Task control --------------------------------------------------------------

import os
import signal
from pathlib import Path

from tasky.retry import RetryPolicy


@tasky.worker(name="flaky", max_tasks=2, retry=RetryPolicy(max_attempts=3, backoff_s=0.3, jitter=0.1, retry_on=(OSError,)))
def flaky(counter: str, failures: int = 2, kind: str = "os") -> int:
    """Fail the first `failures` attempts (counted in a file), then return the attempt count."""
    path = Path(counter)
    seen = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(seen))
    if seen <= failures:
        raise (OSError if kind == "os" else ValueError)(f"attempt {seen} failed on purpose")
    return seen


@tasky.worker(name="slowpoke", max_tasks=4, timeout_s=1.0)
def slowpoke(ctx: TaskContext, seconds: float = 5.0) -> str:
    """Sleep cooperatively; its worker times out after 1 s of run time."""
    ctx.sleep(seconds)
    return "finished"


@tasky.worker(name="proc-sleep", max_tasks=3, isolation="process", kill_grace_s=1.0)
def proc_sleep(ctx: TaskContext, seconds: float = 30.0, ignore_term: bool = False, pid_file: str = "") -> dict:
    """Sleep in a child process with time.sleep, reporting progress and a log line each step."""
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    steps = int(seconds / 0.1)
    for step in range(steps):
        time.sleep(0.1)
        ctx.progress(step + 1, steps, "sleeping")
        if step % 10 == 0:
            ctx.log(f"step {step}")
    return {"pid": os.getpid()}


@tasky.worker(name="proc-spin", max_tasks=1, isolation="process", kill_grace_s=1.0)
def proc_spin(pid_file: str, seconds: float = 30.0) -> int:
    """Burn CPU in a child process for `seconds` of wall time."""
    Path(pid_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        count += 1
    return count


@tasky.worker(name="proc-crash", max_tasks=1, isolation="process")
def proc_crash(how: str = "exit") -> None:
    """Die without reporting: os._exit(3), or SIGKILL to itself."""
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)


@tasky.worker(name="shell", max_tasks=2)
def shell(ctx: TaskContext, script: str) -> int:
    """Run a shell script through ctx.run."""
    return ctx.run(["sh", "-c", script]).returncode


@tasky.worker(name="bounded", max_tasks=1, max_queued=2, queue_policy="reject")
def bounded(ctx: TaskContext, seconds: float = 5.0) -> None:
    """Sleep; at most 2 tasks may wait in its queue."""
    ctx.sleep(seconds)


# Observability ---------------------------------------------------------------


@tasky.worker(name="outcome", max_tasks=4)
def outcome(fail: bool = False, seconds: float = 0.0) -> str:
    """Sleep `seconds`, then fail if asked: a worker whose outcomes a test chooses."""
    time.sleep(seconds)
    if fail:
        raise RuntimeError("failed on purpose")
    return "ok"


@tasky.worker(name="chatty", max_tasks=4)
def chatty(ctx: TaskContext, lines: int = 10, width: int = 10, interval_s: float = 0.0) -> int:
    """Write `lines` log lines of at least `width` characters, `interval_s` apart."""
    for number in range(1, lines + 1):
        ctx.log(f"line {number} ".ljust(width, "x"))
        if interval_s:
            ctx.sleep(interval_s)
    return lines
