"""The workers that the benchmarks run; served with `tasky serve --workers bench_workers`.

`noop` is the unit of the throughput and round-trip benchmarks: a plain
function, so it runs the way most workers run (in a thread of its own).
`noop-async` is the same as a coroutine. `nap` is a cooperative long task
for the cancel benchmark: `ctx.sleep` returns at once when a cancel arrives.
`NOOP_MAX_TASKS` sets how many no-op tasks run at once on the node
(default 32, set through the environment variable BENCH_NOOP_MAX_TASKS).
"""

from __future__ import annotations

import os

import tasky
from tasky import TaskContext

NOOP_MAX_TASKS = int(os.environ.get("BENCH_NOOP_MAX_TASKS", "32"))


@tasky.worker(max_tasks=NOOP_MAX_TASKS)
def noop() -> None:
    """Do nothing; one task is the unit of the throughput benchmarks."""


@tasky.worker(name="noop-async", max_tasks=NOOP_MAX_TASKS)
async def noop_async() -> None:
    """Do nothing, as a coroutine on the node's event loop."""


@tasky.worker(max_tasks=16)
def nap(ctx: TaskContext, seconds: float = 60.0) -> float:
    """Sleep cooperatively: a cancel request ends the sleep at once."""
    ctx.sleep(seconds)
    return seconds
