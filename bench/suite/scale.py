"""Scale: status and list latency with few and with many stored tasks, store size, and server RSS.

One node serves the whole part, so its memory is measured across it:

1. `scale_small` real no-op tasks run through the node; status and list
   latency are measured (the baseline).
2. More real tasks run until `scale_middle` have finished; RSS and the
   store size per task are read.
3. The store is filled to `scale_total` tasks by direct SQLite inserts
   that copy the rows (tasks and their events) of the real finished
   tasks under new ids, while the node keeps running. Filling through
   HTTP would take most of an hour.
4. One more batch of real tasks runs, and RSS is read a second time.
5. A second node with `scale_small` real tasks starts, and the latency
   of both nodes is measured in turns, one request to each, so that other
   work on the machine slows both measurements alike. The ratio of the
   two is the figure that the latency target checks.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from loadgen import percentile, run_asyncio_load
from servers import API, ServerProcess, tasky_server
from suite.client import Client
from suite.settings import Settings
from suite.storeprobe import store_bytes, task_count, used_bytes, wait_drained

logger = logging.getLogger(__name__)

CHUNK_TASKS = 20_000  # real tasks submitted per load run
FILL_BATCH = 50_000  # tasks inserted per fill transaction
TEMPLATE_TASKS = 1_000
FINAL_REAL_TASKS = 10_000
WARM_UP_REQUESTS = 50
LIST_PATHS = {"list": f"{API}/tasks", "list_filtered": f"{API}/tasks?state=completed&worker=noop"}


def run(settings: Settings) -> dict[str, Any]:
    folder = settings.workdir / "scale"
    result: dict[str, Any] = {"stages": {}}
    with tasky_server(folder) as server:
        store = folder / "tasky.db"
        run_real(server, store, settings.scale_small, settings)
        result["stages"]["small"] = snapshot(server, store, settings)

        run_real(server, store, settings.scale_middle - task_count(store), settings)
        result["stages"]["middle"] = snapshot(server, store, settings)

        started = time.monotonic()
        inserted = fill(store, settings.scale_total - FINAL_REAL_TASKS - task_count(store))
        result["fill"] = {"inserted": inserted, "seconds": time.monotonic() - started}
        run_real(server, store, FINAL_REAL_TASKS, settings)
        result["stages"]["total"] = snapshot(server, store, settings)

        with tasky_server(folder / "baseline") as baseline:
            baseline_store = baseline.folder / "tasky.db"
            run_real(baseline, baseline_store, settings.scale_small, settings)
            result["comparison"] = compare(server, store, baseline, baseline_store, settings)
    comparison = result["comparison"]
    result["ratios"] = {
        name: comparison["large"][name]["p99_ms"] / comparison["small"][name]["p99_ms"] for name in comparison["large"]
    }
    result["rss_growth_mb"] = result["stages"]["total"]["rss_mb"] - result["stages"]["middle"]["rss_mb"]
    return result


def run_real(server: ServerProcess, store: Path, count: int, settings: Settings) -> None:
    """Run `count` no-op tasks through the node over HTTP and wait until all have finished."""
    remaining = count
    while remaining > 0:
        chunk = min(CHUNK_TASKS, remaining)
        load = run_asyncio_load(server.port, f"{API}/workers/noop", b"{}", settings.e2e_connections, total=chunk, duration_s=settings.run_timeout_s)
        if load.statuses.get("201", 0) != chunk:
            raise RuntimeError(f"the node accepted {load.statuses} of {chunk} tasks")
        if not wait_drained(store, settings.run_timeout_s):
            raise RuntimeError(f"tasks still unfinished after {settings.run_timeout_s} s")
        remaining -= chunk


def snapshot(server: ServerProcess, store: Path, settings: Settings) -> dict[str, Any]:
    """Latency of status and list requests, RSS and store size at the current task count."""
    tasks = task_count(store)
    ids = sample_ids(store, settings.latency_requests)
    with Client(server.port) as client:
        latency = {"status": measure(client, [f"{API}/tasks/{task_id}/status" for task_id in ids])}
        for name, path in LIST_PATHS.items():
            latency[name] = measure(client, [path] * settings.latency_requests)
    size = used_bytes(store)
    logger.info("scale: %d tasks, RSS %.1f MB, store %.1f MiB", tasks, server.rss_mb(), size / 2**20)
    return {
        "tasks": tasks,
        "rss_mb": server.rss_mb(),
        "store_bytes": size,
        "store_file_bytes": store_bytes(store),
        "store_bytes_per_task": size / tasks,
        "latency": latency,
    }


def compare(large: ServerProcess, large_store: Path, small: ServerProcess, small_store: Path, settings: Settings) -> dict[str, Any]:
    """Measure the two nodes in turns, one request to each, for status, list and filtered list."""
    count = settings.latency_requests
    plans = {
        "status": (
            [f"{API}/tasks/{task_id}/status" for task_id in sample_ids(large_store, count)],
            [f"{API}/tasks/{task_id}/status" for task_id in sample_ids(small_store, count)],
        ),
    }
    for name, path in LIST_PATHS.items():
        plans[name] = ([path] * count, [path] * count)
    outcome: dict[str, Any] = {
        "large": {},
        "small": {},
        "tasks": {"large": task_count(large_store), "small": task_count(small_store)},
    }
    with Client(large.port) as large_client, Client(small.port) as small_client:
        for name, (large_paths, small_paths) in plans.items():
            outcome["large"][name], outcome["small"][name] = measure_in_turns(large_client, large_paths, small_client, small_paths)
    return outcome


def measure_in_turns(first: Client, first_paths: list[str], second: Client, second_paths: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    for path in first_paths[:WARM_UP_REQUESTS]:
        first.get(path)
    for path in second_paths[:WARM_UP_REQUESTS]:
        second.get(path)
    first_samples: list[float] = []
    second_samples: list[float] = []
    for first_path, second_path in zip(first_paths, second_paths):
        first_samples.append(timed_get(first, first_path))
        second_samples.append(timed_get(second, second_path))
    return summary(first_samples), summary(second_samples)


def timed_get(client: Client, path: str) -> float:
    """Send one GET and return its latency in milliseconds; raise unless the status is 200."""
    started = time.perf_counter()
    status, body = client.get(path)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"GET {path} returned {status}: {body}")
    return elapsed_ms


def summary(samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    return {"count": len(ordered), "p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99), "max_ms": ordered[-1]}


def sample_ids(store: Path, count: int) -> list[str]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10.0)
    try:
        top = conn.execute("SELECT max(seq) FROM tasks").fetchone()[0]
        ids: list[str] = []
        while len(ids) < count:
            row = conn.execute("SELECT id FROM tasks WHERE seq = ?", (random.randint(1, top),)).fetchone()
            if row is not None:
                ids.append(row[0])
        return ids
    finally:
        conn.close()


def measure(client: Client, paths: list[str]) -> dict[str, Any]:
    """Send GET requests one after another on one connection; p50 and p99 in milliseconds."""
    for path in paths[:WARM_UP_REQUESTS]:
        client.get(path)
    return summary([timed_get(client, path) for path in paths])


def fill(store: Path, count: int) -> int:
    """Insert `count` finished tasks that copy real ones, with their events; return how many."""
    if count <= 0:
        return 0
    conn = sqlite3.connect(store, timeout=60.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA cache_size = -1048576")  # 1 GiB, so the random-id indexes stay in memory
    conn.execute("PRAGMA synchronous = OFF")  # a benchmark store: a crash here only loses the fill
    try:
        tasks, events = templates(conn)
        task_columns = [name for name in tasks[0].keys() if name != "seq"]
        event_columns = [name for name in events[0].keys() if name != "id"] if events else []
        events_by_task: dict[str, list[sqlite3.Row]] = {}
        for event in events:
            events_by_task.setdefault(event["task_id"], []).append(event)
        inserted = 0
        while inserted < count:
            batch = min(FILL_BATCH, count - inserted)
            task_rows, event_rows = copies(tasks, events_by_task, task_columns, event_columns, batch)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert_sql("tasks", task_columns), task_rows)
            if event_columns:
                conn.executemany(insert_sql("events", event_columns), event_rows)
            conn.execute("COMMIT")
            inserted += batch
        return inserted
    finally:
        conn.close()


def templates(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    tasks = conn.execute("SELECT * FROM tasks WHERE state = 'completed' ORDER BY seq DESC LIMIT ?", (TEMPLATE_TASKS,)).fetchall()
    if not tasks:
        raise RuntimeError("no completed task to copy; the real tasks did not run")
    marks = ", ".join("?" for _ in tasks)
    events = conn.execute(f"SELECT * FROM events WHERE task_id IN ({marks}) ORDER BY id", [row["id"] for row in tasks]).fetchall()
    return tasks, events


def copies(
    tasks: list[sqlite3.Row], events_by_task: dict[str, list[sqlite3.Row]], task_columns: list[str], event_columns: list[str], count: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    task_rows = []
    event_rows = []
    for index in range(count):
        template = tasks[index % len(tasks)]
        new_id = str(uuid.uuid4())
        task_rows.append(tuple(new_id if name == "id" else template[name] for name in task_columns))
        for event in events_by_task.get(template["id"], []):
            event_rows.append(tuple(new_id if name == "task_id" else event[name] for name in event_columns))
    return task_rows, event_rows


def insert_sql(table: str, columns: list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
