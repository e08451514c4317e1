"""Retention: deleting finished tasks, their events and logs once they are old enough.

A background job on each node deletes, every `interval_s`, the tasks that
finished longer ago than the configured age (per worker if overridden), in
transactions of `batch_size` tasks so the store's writer is never held for
long. The store folds their figures into aggregates first, so statistics
stay right, and keeps their ids for a while, so a read returns 410 Gone.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tasky.errors import ConfigurationError
from tasky.settings import RetentionSettings
from tasky.store.base import RetentionPlan, Store

logger = logging.getLogger(__name__)


def retention_plan(settings: RetentionSettings, workers: list[str]) -> RetentionPlan:
    """Turn the settings into a plan; 0 means keep. Rejects overrides of unknown workers."""
    unknown = sorted(set(settings.workers) - set(workers))
    if unknown:
        raise ConfigurationError(
            f"retention.workers names unknown workers: {', '.join(unknown)}; the served workers are: {', '.join(sorted(workers))}"
        )
    return RetentionPlan(
        max_age_s=settings.max_age_s or None,
        worker_max_age_s={worker: age or None for worker, age in settings.workers.items()},
    )


class RetentionJob:
    """The background deletion loop of one node."""

    def __init__(self, store: Store, settings: RetentionSettings, plan: RetentionPlan) -> None:
        self.store = store
        self.settings = settings
        self.plan = plan
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.plan.max_age_s is not None or any(age is not None for age in self.plan.worker_max_age_s.values())

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tasky-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> int:
        """Delete every task that is due, batch by batch; returns how many."""
        total = 0
        while True:
            pruned = await self.store.prune_finished(self.plan, batch_size=self.settings.batch_size, now=time.time())
            total += pruned
            if pruned < self.settings.batch_size:
                break
            await asyncio.sleep(0)  # let other writes in between two batches
        if self.settings.tombstone_max_age_s:
            await self.store.prune_tombstones(time.time() - self.settings.tombstone_max_age_s)
        return total

    async def _run(self) -> None:
        while True:
            try:
                pruned = await self.run_once()
                if pruned:
                    logger.info("retention deleted %d finished tasks with their events and logs", pruned)
            except Exception:  # the next round retries; a failed round deleted nothing
                logger.exception("retention round failed; retrying in %.0f s", self.settings.interval_s)
            await asyncio.sleep(self.settings.interval_s)
