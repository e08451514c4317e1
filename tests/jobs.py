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
