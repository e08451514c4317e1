"""End-to-end: no-op tasks submitted over HTTP and through the Python API, until all are completed.

Over HTTP the asyncio load generator sends the task-creating POSTs on
keep-alive connections while the node executes them. The clock runs from
the first request to the `finished_at` of the last task in the store.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import run_asyncio_load
from servers import API, BENCH_DIR, ServerProcess, bench_env, tasky_server
from suite.settings import Settings
from suite.storeprobe import finished_since, wait_drained

WARM_UP_TASKS = 200


def run(settings: Settings) -> dict[str, Any]:
    folder = settings.workdir / "endtoend"
    results = {}
    for worker in ("noop", "noop-async"):
        with tasky_server(folder / worker) as server:
            store = server.folder / "tasky.db"
            http_run(server, store, worker, WARM_UP_TASKS, settings)
            runs = [http_run(server, store, worker, settings.e2e_tasks, settings) for _ in range(settings.runs)]
        results[f"http-{worker}"] = {"runs": runs, "tasks_per_s": statistics.median(run["tasks_per_s"] for run in runs)}
    results["python-api-noop"] = in_process(folder / "inprocess", settings)
    return {"tasks": settings.e2e_tasks, "connections": settings.e2e_connections, "results": results}


def http_run(server: ServerProcess, store: Path, worker: str, tasks: int, settings: Settings) -> dict[str, Any]:
    """Submit `tasks` over HTTP, wait until none is unfinished, and read the times from the store."""
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
        "--tasks", str(settings.e2e_tasks), "--runs", str(settings.runs),
        "--concurrency", str(settings.e2e_connections), "--timeout", str(settings.run_timeout_s),
    ]
    timeout_s = settings.run_timeout_s * (settings.runs + 1) + 60
    completed = subprocess.run(command, env=bench_env(), capture_output=True, text=True, timeout=timeout_s)
    return read_result(completed, "in-process end-to-end")


def read_result(completed: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """Parse the `RESULT {json}` line of a measuring subprocess; raise with its output if there is none."""
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{what} printed no result (exit {completed.returncode}):\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")
