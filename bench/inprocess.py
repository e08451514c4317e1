"""End-to-end throughput through tasky's in-process Python API, in one process.

    python bench/inprocess.py --store DIR/tasky.db --tasks 10000 --runs 3

Builds a `Tasky` node with the no-op worker, starts it on this process's
event loop, creates the tasks with `await node.create_task(...)` from
`--concurrency` coroutines, and stops the clock at the last `finished_at`
that the store recorded. Prints one `RESULT {json}` line. Log lines go to
a file at INFO in JSON lines, as `tasky serve` writes them to a file by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from suite.storeprobe import POLL_INTERVAL_S, connect, finished_since, unfinished

WARM_UP_TASKS = 100


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from bench_workers import noop
    from tasky import Tasky

    node = Tasky([noop], store=str(args.store))
    await node.start()
    try:
        await submit(node, WARM_UP_TASKS, args.concurrency)
        await wait_drained(args.store, args.timeout)
        runs = [await one_run(node, args) for _ in range(args.runs)]
    finally:
        await node.stop()
    return {"runs": runs, "tasks_per_s": statistics.median(run["tasks_per_s"] for run in runs), "concurrency": args.concurrency}


async def one_run(node: Any, args: argparse.Namespace) -> dict[str, Any]:
    since = time.time()
    await submit(node, args.tasks, args.concurrency)
    submitted = time.time()
    drained = await wait_drained(args.store, args.timeout)
    completed, last = finished_since(args.store, since)
    elapsed = (last or time.time()) - since
    return {
        "tasks": args.tasks,
        "completed": completed,
        "timed_out": not drained,
        "elapsed_s": elapsed,
        "enqueue_s": submitted - since,
        "tasks_per_s": completed / elapsed if elapsed > 0 else 0.0,
    }


async def submit(node: Any, count: int, concurrency: int) -> None:
    async def lane(share: int) -> None:
        for _ in range(share):
            await node.create_task("noop", {})

    shares = [count // concurrency + (1 if index < count % concurrency else 0) for index in range(concurrency)]
    await asyncio.gather(*(lane(share) for share in shares if share))


async def wait_drained(store: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    conn = connect(store)
    try:
        while unfinished(conn) > 0:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_INTERVAL_S)
        return True
    finally:
        conn.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="SQLite file to create")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="coroutines that create tasks at once")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one run may take at most")
    parser.add_argument("--log", type=Path, help="log file (default: next to the store)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    log_path = arguments.log or arguments.store.with_suffix(".log")
    from tasky.logconfig import configure_logging

    log_file = log_path.open("a", encoding="utf-8")
    configure_logging("INFO", "json", "bench", log_file)  # as `tasky serve` logs to a file
    try:
        import uvloop

        result = uvloop.run(main(arguments))
    except ImportError:
        result = asyncio.run(main(arguments))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
