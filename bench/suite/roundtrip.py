"""Round trip: one task submitted and its result read, one after another, for tasky and the peers.

tasky's client reads `GET /tasks/{id}/result?wait=5`, which answers as
soon as the task has finished. Huey polls its result every millisecond. Celery and Dramatiq
wait on Redis with their defaults. The systems take turns in blocks
(tasky, then each peer, and again), so other work on the machine slows
them alike. Each system's percentiles pool all its blocks.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import time
from collections import defaultdict
from typing import Any

from servers import API, tasky_server
from suite.client import Client
from suite.peers import peers_to_run, run_driver
from suite.settings import Settings
from loadgen import percentile

logger = logging.getLogger(__name__)

WARM_UP = 10
CALL_TIMEOUT_S = 10.0


def run(settings: Settings) -> dict[str, Any]:
    peers, skipped = peers_to_run()
    samples: dict[str, list[float]] = defaultdict(list)
    details: dict[str, dict[str, Any]] = {}
    phases: list[dict[str, float]] = []
    blocks = [settings.round_trips // settings.runs + (index < settings.round_trips % settings.runs) for index in range(settings.runs)]
    with tasky_server(settings.workdir / "roundtrip") as server:
        for block in blocks:
            # A new connection per block: the server closes idle keep-alive
            # connections (after 5 s in uvicorn) while the peers take their turn.
            with Client(server.port) as client:
                for _ in range(WARM_UP):
                    round_trip(client)
                samples["tasky"] += timed_round_trips(client, block, settings.run_timeout_s, phases)
            for peer in list(peers):
                try:
                    result = run_driver(peer, "round-trip", settings, count=block, timeout=settings.run_timeout_s)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    logger.error("peer %s failed: %s", peer, exc)
                    skipped[peer] = f"failed: {str(exc)[:500]}"
                    peers.remove(peer)
                    continue
                samples[peer] += result["samples_ms"]
                details[peer] = {"worker_command": result["worker_command"], "versions": result["versions"]}
    results = {name: {**summary(values), **details.get(name, {})} for name, values in samples.items()}
    results["tasky"]["phases_p50_ms"] = {name: statistics.median(item[name] for item in phases) for name in phases[0]}
    return {
        "count": settings.round_trips,
        "blocks": len(blocks),
        "result_wait_s": CALL_TIMEOUT_S,
        "results": results,
        "skipped": skipped,
    }


def timed_round_trips(client: Client, count: int, timeout_s: float, phases: list[dict[str, float]]) -> list[float]:
    """Time `count` round trips; append to `phases` where each one's time went, from the task's stored times."""
    samples_ms = []
    deadline = time.monotonic() + timeout_s
    for _ in range(count):
        started = time.perf_counter()
        task_id = round_trip(client)
        elapsed_ms = (time.perf_counter() - started) * 1000
        samples_ms.append(elapsed_ms)
        phases.append(split_phases(client, task_id, elapsed_ms))
        if time.monotonic() > deadline:
            break
    return samples_ms


def split_phases(client: Client, task_id: str, elapsed_ms: float) -> dict[str, float]:
    """Split one round trip into queue wait, run time (start to stored finish) and the rest (HTTP and polling)."""
    status, body = client.get(f"{API}/tasks/{task_id}/status")
    if status != 200:
        raise RuntimeError(f"reading the status of task {task_id} returned {status}: {body}")
    wait_ms = body["wait_time_s"] * 1000
    run_ms = (body["run_time_s"] or 0.0) * 1000
    return {"queued": wait_ms, "running": run_ms, "client": elapsed_ms - wait_ms - run_ms}


def summary(samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    return {"count": len(ordered), "p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99), "max_ms": ordered[-1]}


def round_trip(client: Client) -> str:
    """Create a no-op task, poll its result until it is there, and return the task id."""
    status, body = client.post(f"{API}/workers/noop")
    if status != 201:
        raise RuntimeError(f"creating a task returned {status}: {body}")
    task_id = body["id"]
    status, body = client.get(f"{API}/tasks/{task_id}/result?wait={CALL_TIMEOUT_S:g}")
    if status != 200:
        raise RuntimeError(f"reading the result returned {status}: {body}")
    return task_id
