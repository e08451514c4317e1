"""End-to-end: no-op tasks through tasky (over HTTP and its Python API) and through the peers, until all are completed.

Over HTTP the asyncio load generator sends the task-creating POSTs on
keep-alive connections while the node executes them. tasky's clock runs
from the first request to the `finished_at` of the last task in the store.
The peers enqueue through their own Python APIs (see `peers/driver.py`).
The systems take turns: each round runs every system once, so a busy
phase of the machine slows all of them alike, and each figure is the
median over the rounds.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from loadgen import run_asyncio_load
from servers import API, BENCH_DIR, ServerProcess, bench_env, tasky_server
from suite.childresult import read_result
from suite.peers import peers_to_run, run_driver
from suite.settings import Settings
from suite.storeprobe import finished_since, wait_drained

logger = logging.getLogger(__name__)

WARM_UP_TASKS = 200
TASKY_WORKERS = ("noop", "noop-async")


def run(settings: Settings) -> dict[str, Any]:
    folder = settings.workdir / "endtoend"
    peers, skipped = peers_to_run()
    servers = {worker: tasky_server(folder / worker) for worker in TASKY_WORKERS}
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    details: dict[str, dict[str, Any]] = {}
    try:
        for worker, server in servers.items():
            server.start()
            http_run(server, worker, WARM_UP_TASKS, settings)
        for round_number in range(settings.runs):
            logger.info("end-to-end round %d of %d", round_number + 1, settings.runs)
            for worker, server in servers.items():
                runs[f"http-{worker}"].append(http_run(server, worker, settings.e2e_tasks, settings))
            runs["python-api-noop"] += in_process(folder / f"python-api-{round_number}", settings)["runs"]
            for peer in list(peers):
                try:
                    result = run_driver(peer, "throughput", settings, tasks=settings.e2e_tasks, runs=1, timeout=settings.run_timeout_s)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    logger.error("peer %s failed: %s", peer, exc)
                    skipped[peer] = f"failed: {str(exc)[:500]}"
                    peers.remove(peer)
                    continue
                runs[peer] += result["runs"]
                details[peer] = {"worker_command": result["worker_command"], "versions": result["versions"]}
    finally:
        for server in servers.values():
            server.stop()
    results = {
        name: {"runs": items, "tasks_per_s": statistics.median(item["tasks_per_s"] for item in items), **details.get(name, {})}
        for name, items in runs.items()
    }
    return {"tasks": settings.e2e_tasks, "connections": settings.e2e_connections, "results": results, "skipped": skipped}


def http_run(server: ServerProcess, worker: str, tasks: int, settings: Settings) -> dict[str, Any]:
    """Submit `tasks` over HTTP, wait until none is unfinished, and read the times from the store."""
    store = server.folder / "tasky.db"
    since = time.time()
    load = run_asyncio_load(
        server.port, f"{API}/workers/{worker}", b"{}", settings.e2e_connections, total=tasks, duration_s=settings.run_timeout_s
    )
    submitted = time.time()
    drained = wait_drained(store, settings.run_timeout_s)
    completed, last = finished_since(store, since)
    elapsed = (last or time.time()) - since
    return {
        "tasks": tasks,
        "accepted": load.statuses.get("201", 0),
        "completed": completed,
        "timed_out": not drained,
        "elapsed_s": elapsed,
        "enqueue_s": submitted - since,
        "tasks_per_s": completed / elapsed if elapsed > 0 else 0.0,
        "submit_p50_ms": load.p50_ms,
        "submit_p99_ms": load.p99_ms,
    }


def in_process(folder: Path, settings: Settings) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, str(BENCH_DIR / "inprocess.py"), "--store", str(folder / "tasky.db"),
        "--tasks", str(settings.e2e_tasks), "--runs", "1",
        "--concurrency", str(settings.e2e_connections), "--timeout", str(settings.run_timeout_s),
    ]
    timeout_s = settings.run_timeout_s * 2 + 60
    completed = subprocess.run(command, env=bench_env(), capture_output=True, text=True, timeout=timeout_s)
    return read_result(completed, "in-process end-to-end")
