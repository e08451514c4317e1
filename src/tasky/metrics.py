"""Prometheus metrics of one node, served at `/metrics`.

Counts of tasks by state and of finished tasks by outcome are read from the
store at each scrape, so they are right after a restart and include the
tasks that retention pruned. Run and wait time histograms are observed
in-process as tasks finish, and HTTP requests are counted by the API
middleware. Those two start from zero with the process, as Prometheus
counters do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tasky import __version__
from tasky.statistics import FinishedRun
from tasky.store.base import Store
from tasky.task import TaskState

RUN_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400)
WAIT_BUCKETS_S = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
HTTP_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)
TERMINAL = tuple(state.value for state in TaskState if state.is_terminal)


class StoreCollector(Collector):
    """Collector of the task counts that `Metrics.render` last read from the store."""

    def __init__(self, workers: Iterable[str]) -> None:
        self.workers = list(workers)
        self.stored: dict[tuple[str, str], int] = {}
        self.archived: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        workers = sorted({*self.workers, *(worker for worker, _ in self.stored), *(worker for worker, _ in self.archived)})
        tasks = GaugeMetricFamily("tasky_tasks", "Tasks in the store by worker and state.", labels=["worker", "state"])
        finished = CounterMetricFamily(
            "tasky_tasks_finished", "Finished tasks by worker and outcome, pruned ones included.", labels=["worker", "outcome"]
        )
        for worker in workers:
            for state in TaskState:
                tasks.add_metric([worker, state.value], self.stored.get((worker, state.value), 0))
            for outcome in TERMINAL:
                count = self.stored.get((worker, outcome), 0) + self.archived.get((worker, outcome), 0)
                finished.add_metric([worker, outcome], count)
        yield tasks
        yield finished


class Metrics:
    """The node's Prometheus registry and the metrics that other modules update."""

    def __init__(self, store: Store, workers: Iterable[str], node: str) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.collector = StoreCollector(workers)
        self.registry.register(self.collector)
        info = Gauge("tasky_node_info", "Constant 1, labelled with the node name and tasky version.", ["node", "version"], registry=self.registry)
        info.labels(node, __version__).set(1)
        self.run_seconds = Histogram(
            "tasky_task_run_seconds", "Run time of finished tasks, paused time left out.", ["worker"], buckets=RUN_BUCKETS_S, registry=self.registry
        )
        self.wait_seconds = Histogram(
            "tasky_task_wait_seconds", "Time tasks waited in the queue before they started.", ["worker"], buckets=WAIT_BUCKETS_S, registry=self.registry
        )
        self.http_requests = Counter(
            "tasky_http_requests", "HTTP requests by method, route template and status.", ["method", "route", "status"], registry=self.registry
        )
        self.http_seconds = Histogram(
            "tasky_http_request_duration_seconds", "Time to answer HTTP requests (streams: until they end).", ["method", "route"],
            buckets=HTTP_BUCKETS_S, registry=self.registry,
        )
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_finished(self, run: FinishedRun) -> None:
        """Record the run and wait time of a task that reached a terminal state after it had started."""
        if run.run_s is None:
            return
        self.run_seconds.labels(run.worker).observe(run.run_s)
        self.wait_seconds.labels(run.worker).observe(run.wait_s or 0.0)

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        # prometheus_client's `labels()` takes a lock and builds a key on every call,
        # so the children are kept here, one entry per series the metrics already hold.
        key = (method, route, status)
        children = self._request_series.get(key)
        if children is None:
            children = self.http_requests.labels(method, route, str(status)), self.http_seconds.labels(method, route)
            self._request_series[key] = children
        children[0].inc()
        children[1].observe(duration_s)

    async def render(self) -> bytes:
        """Read the task counts from the store and return the text exposition format."""
        self.collector.stored = await self.store.state_counts()
        self.collector.archived = await self.store.archived_counts()
        return generate_latest(self.registry)
