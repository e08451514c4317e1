"""The observability services of one node, started and stopped with it.

It wires the store's commit notices to the event hub (live event streams),
the task log sink, Prometheus metrics, webhook callbacks and retention, and
follows terminal state changes to feed the metrics and the webhooks.
"""

from __future__ import annotations

import asyncio
import logging

from tasky.events import READ_BATCH, EventHub, follow_batches
from tasky.metrics import Metrics
from tasky.retention import RetentionJob, retention_plan
from tasky.settings import RetentionSettings, TaskLogSettings, WebhookSettings
from tasky.statistics import FinishedRun
from tasky.store.base import Store
from tasky.tasklog import TaskLogSink
from tasky.webhooks import WebhookDispatcher
from tasky.worker import WorkerRegistry

logger = logging.getLogger(__name__)


class Observability:
    """Event hub, log sink, metrics, webhooks and retention of one node."""

    def __init__(
        self,
        store: Store,
        registry: WorkerRegistry,
        node: str,
        *,
        task_logs: TaskLogSettings | None = None,
        retention: RetentionSettings | None = None,
        webhooks: WebhookSettings | None = None,
    ) -> None:
        retention = retention or RetentionSettings()
        self.store = store
        self.hub = EventHub()
        self.sink = TaskLogSink(store, task_logs or TaskLogSettings())
        self.metrics = Metrics(store, registry.names(), node)
        self.webhooks = WebhookDispatcher(store, webhooks or WebhookSettings())
        self.retention = RetentionJob(store, retention, retention_plan(retention, registry.names()))
        self._listening = False
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start after the store opened and before the executor claims tasks."""
        loop = asyncio.get_running_loop()
        self.hub.attach(loop)
        if not self._listening:
            self.store.add_commit_listener(self.hub.notify_threadsafe)
            self._listening = True
        cursor = await self.store.last_event_id()
        await self.webhooks.start()
        self._follower = loop.create_task(self._follow_finished(cursor), name="tasky-finished-follower")
        self.retention.start()

    def begin_shutdown(self) -> None:
        """End every event stream, so open streams do not hold up the shutdown."""
        self.hub.close()

    async def stop(self) -> None:
        self.hub.close()
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None
        await self.retention.stop()
        await self.webhooks.stop()

    async def _follow_finished(self, cursor: int) -> None:
        """Feed the run-time metrics and the webhooks with every task that reaches a final state."""

        async def read(after: int) -> list[tuple[int, str, FinishedRun]]:
            return await self.store.finished_since(after, limit=READ_BATCH)

        async for batch in follow_batches(self.store, self.hub, cursor, read, lambda entry: entry[0]):
            await self._handle_finished(batch)

    async def _handle_finished(self, batch: list[tuple[int, str, FinishedRun]]) -> None:
        for _, _, run in batch:
            self.metrics.observe_finished(run)
        try:
            await self.webhooks.tasks_finished([task_id for _, task_id, _ in batch])
        except Exception:  # a store error must not stop the metrics and webhooks of every later task
            ids = ", ".join(task_id for _, task_id, _ in batch[:5])
            logger.exception("creating the webhook deliveries of %d finished tasks (%s, ...) failed", len(batch), ids)
