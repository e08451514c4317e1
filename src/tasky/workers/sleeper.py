"""The `sleeper` example worker: waits, reporting progress every second.

It is the simplest long-running task to steer over HTTP: cancel, pause and
resume reach it through `ctx.sleep`, which wakes at once on cancel and stops
its clock while the task is paused.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from tasky.context import TaskContext
from tasky.worker import Worker

DAY_S = 86_400.0
PROGRESS_STEP_S = 1.0


class SleeperConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(60.0, gt=0, le=DAY_S, description="How long to sleep, in seconds (at most one day).")


class SleeperWorker(Worker):
    name = "sleeper"
    description = """
        Sleep for a number of seconds, reporting progress every second.

        Use it to try cancel, pause and resume: a paused sleeper's clock
        stops, and a cancel ends it at once. Config: {"seconds": 5}.
        """
    config = SleeperConfig
    max_tasks = 10
    restartable = True
    examples = [{"seconds": 5}]

    def perform(self, config: SleeperConfig, ctx: TaskContext) -> dict[str, float]:
        total = config.seconds
        steps = math.ceil(total / PROGRESS_STEP_S)
        slept = 0.0
        ctx.progress(0, total, "sleeping")
        for _ in range(steps):
            step = min(PROGRESS_STEP_S, total - slept)
            ctx.sleep(step)
            slept += step
            ctx.progress(slept, total, f"slept {slept:g} of {total:g} s")
        return {"slept_s": slept}
