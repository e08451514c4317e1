"""Statistics routes: per worker, for every worker, and per task.

`/tasky/v1/{worker}/statistics` returns the same as `/tasky/v1/workers/{name}/statistics`,
because that is the spelling the original Go project planned.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tasky.api.params import reject_unknown_params
from tasky.api.serialize import JSON, iso_time
from tasky.app import Tasky
from tasky.statistics import StatisticsInput, compute_statistics
from tasky.store.base import Store

SINCE = Query(description="ISO-8601 time: only tasks that finished at or after it; queued and running counts are always current.")


def build_statistics_router(tasky: Tasky) -> APIRouter:
    router = APIRouter(tags=["statistics"])

    @router.get("/statistics", summary="Statistics of every worker, and their total")
    async def all_statistics(request: Request, since: Annotated[datetime | None, SINCE] = None) -> JSON:
        reject_unknown_params(request, ("since",))
        since_s = _timestamp(since)
        inputs = await _gather(tasky.store, None, since_s)
        now = time.time()
        workers = sorted({*tasky.registry.names(), *inputs})
        total = _merge(list(inputs.values()))
        return JSON(
            {
                "generated_at": iso_time(datetime.fromtimestamp(now, timezone.utc)),
                "since": iso_time(since),
                "total": compute_statistics(total, now=now),
                "workers": {
                    name: _worker_body(name, inputs.get(name, StatisticsInput({}, [], [])), now, since) for name in workers
                },
            }
        )

    async def worker_statistics(request: Request, name: str, since: datetime | None) -> JSON:
        reject_unknown_params(request, ("since",))
        tasky.worker(name)  # 404 for an unknown worker
        inputs = await _gather(tasky.store, name, _timestamp(since))
        return JSON(_worker_body(name, inputs.get(name, StatisticsInput({}, [], [])), time.time(), since))

    @router.get("/workers/{name}/statistics", summary="Counts by state, failure rate, run and wait time percentiles")
    async def statistics_of_worker(request: Request, name: str, since: Annotated[datetime | None, SINCE] = None) -> JSON:
        return await worker_statistics(request, name, since)

    @router.get("/tasks/{task_id}/statistics", summary="Wait, run and paused time and attempts of one task")
    async def task_statistics(task_id: str) -> JSON:
        task = await tasky.get_task(task_id)
        run_time = task.run_time_s()
        end = task.finished_at or datetime.now(timezone.utc)
        return JSON(
            {
                "id": task.id,
                "worker": task.worker,
                "state": task.state.value,
                "attempts": task.attempt,
                "wait_time_s": round(task.wait_time_s(), 6),
                "run_time_s": round(run_time, 6) if run_time is not None else None,
                "paused_time_s": round(task.paused_total_s + _open_pause_s(task.paused_at, task.finished_at), 6),
                "total_time_s": round((end - task.created_at).total_seconds(), 6),
                "log_lines": task.log_lines,
                "dropped_log_lines": task.log_dropped,
            }
        )

    @router.get("/{worker}/statistics", summary="Same as /workers/{name}/statistics")
    async def statistics_short_route(request: Request, worker: str, since: Annotated[datetime | None, SINCE] = None) -> JSON:
        return await worker_statistics(request, worker, since)

    return router


async def _gather(store: Store, worker: str | None, since: float | None) -> dict[str, StatisticsInput]:
    """Read counts, finished runs and pruned aggregates, grouped by worker."""
    grouped: dict[str, StatisticsInput] = defaultdict(lambda: StatisticsInput({}, [], []))
    for (name, state), count in (await store.state_counts(worker, finished_since=since)).items():
        grouped[name].counts[state] = count
    for run in await store.finished_runs(worker, since=since):
        grouped[run.worker].runs.append(run)
    for block in await store.archived_figures(worker, since=since):
        grouped[block.worker].archived.append(block)
    return dict(grouped)


def _merge(inputs: list[StatisticsInput]) -> StatisticsInput:
    counts: dict[str, int] = defaultdict(int)
    merged = StatisticsInput({}, [], [])
    for item in inputs:
        for state, count in item.counts.items():
            counts[state] += count
        merged.runs.extend(item.runs)
        merged.archived.extend(item.archived)
    merged.counts = dict(counts)
    return merged


def _worker_body(name: str, data: StatisticsInput, now: float, since: datetime | None) -> dict[str, Any]:
    return {"worker": name, "since": iso_time(since), **compute_statistics(data, now=now)}


def _timestamp(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # a time without offset is read as UTC
    return value.timestamp()


def _open_pause_s(paused_at: datetime | None, finished_at: datetime | None) -> float:
    if paused_at is None or finished_at is not None:
        return 0.0
    return (datetime.now(timezone.utc) - paused_at).total_seconds()
