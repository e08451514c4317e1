"""Measure one peer task queue with its own Python API; run inside the peer's virtual environment.

    python driver.py PEER throughput --tasks 10000 --runs 3 --workdir DIR
    python driver.py PEER round-trip --count 200 --workdir DIR

PEER is huey-sqlite, huey-redis, dramatiq or celery. The driver starts the
peer's own worker command with two worker processes, warms it up, measures,
stops it and prints one `RESULT {json}` line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from peerlib import CompletionCounter, WorkerPool, emit, measure_round_trip, measure_throughput, warm_up, worker_env

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
WORKER_PROCESSES = 2
ROUND_TRIP_TIMEOUT_S = 10  # per call

# Each peer on the shared Redis uses a database number of its own, which the
# driver empties before it starts.
REDIS_DB = {"huey-redis": 11, "dramatiq": 12, "celery": 13}


class Peer:
    """How to configure, start and call one peer."""

    module = ""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.env: dict[str, str] = {}
        if name in REDIS_DB:
            self.env["BENCH_REDIS_DB"] = str(REDIS_DB[name])

    def load(self) -> Any:
        os.environ.update(self.env)
        return importlib.import_module(self.module)

    def reset(self) -> None:
        if self.name in REDIS_DB:
            import redis

            redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB[self.name]).flushdb()

    def worker_command(self, mode: str) -> list[str]:
        raise NotImplementedError

    def settings(self, mode: str) -> str:
        return " ".join(self.worker_command(mode)[1:])


class Huey(Peer):
    module = "huey_tasks"

    def __init__(self, name: str, workdir: Path) -> None:
        super().__init__(name, workdir)
        self.env["BENCH_HUEY_BACKEND"] = "redis" if name == "huey-redis" else "sqlite"
        self.env["BENCH_HUEY_SQLITE"] = str(workdir / "huey.db")

    def reset(self) -> None:
        super().reset()
        for suffix in ("", "-wal", "-shm"):
            Path(self.env["BENCH_HUEY_SQLITE"] + suffix).unlink(missing_ok=True)

    def worker_command(self, mode: str) -> list[str]:
        command = [str(BIN / "huey_consumer"), "huey_tasks.huey", "-k", "process", "-w", str(WORKER_PROCESSES)]
        if mode == "round-trip":
            # Huey polls its queue (SQLite) and result store; its default
            # first delay of 0.1 s would dominate a round trip.
            command += ["--delay", "0.001", "--max-delay", "0.001"]
        return command

    def round_trip(self, tasks: Any) -> Any:
        return tasks.echo(1).get(blocking=True, timeout=ROUND_TRIP_TIMEOUT_S, backoff=1.0, max_delay=0.001)


class Dramatiq(Peer):
    module = "dramatiq_tasks"

    def worker_command(self, mode: str) -> list[str]:
        return [str(BIN / "dramatiq"), "dramatiq_tasks", "--processes", str(WORKER_PROCESSES), "--threads", "8"]

    def round_trip(self, tasks: Any) -> Any:
        return tasks.echo.send(1).get_result(block=True, timeout=ROUND_TRIP_TIMEOUT_S * 1000)


class Celery(Peer):
    module = "celery_tasks"

    def worker_command(self, mode: str) -> list[str]:
        return [
            str(BIN / "celery"), "-A", "celery_tasks", "worker",
            "--pool", "prefork", "--concurrency", str(WORKER_PROCESSES), "--loglevel", "WARNING",
        ]

    def round_trip(self, tasks: Any) -> Any:
        return tasks.echo.delay(1).get(timeout=ROUND_TRIP_TIMEOUT_S)


PEERS = {"huey-sqlite": Huey, "huey-redis": Huey, "dramatiq": Dramatiq, "celery": Celery}


def main() -> None:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    peer = PEERS[args.peer](args.peer, args.workdir)
    peer.reset()
    counter = CompletionCounter(args.workdir)
    tasks = peer.load()
    pool = WorkerPool(
        peer.worker_command(args.mode), worker_env(counter, peer.env), HERE, args.workdir / f"{args.peer}-{args.mode}.log"
    )
    try:
        result = run_mode(args, peer, tasks, pool, counter)
    finally:
        pool.stop()
        counter.close()
    result.update(peer=args.peer, mode=args.mode, worker_command=peer.settings(args.mode), versions=versions())
    emit(result)


def run_mode(args: argparse.Namespace, peer: Peer, tasks: Any, pool: WorkerPool, counter: CompletionCounter) -> dict[str, Any]:
    if args.mode == "throughput":
        warm_up(pool, counter, lambda: enqueue_noop(peer, tasks))
        return measure_throughput(pool, counter, lambda: enqueue_noop(peer, tasks), args.tasks, args.runs, args.timeout)
    started = time.monotonic()
    while True:  # the first calls wait for the workers to start
        try:
            peer.round_trip(tasks)
            break
        except Exception:
            pool.check_alive()
            if time.monotonic() - started > 60:
                raise
    return measure_round_trip(lambda: peer.round_trip(tasks), args.count, args.timeout)


def enqueue_noop(peer: Peer, tasks: Any) -> Any:
    if isinstance(peer, Huey):
        return tasks.noop()
    if isinstance(peer, Dramatiq):
        return tasks.noop.send()
    return tasks.noop.delay()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("huey", "dramatiq", "celery", "kombu", "redis"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("mode", choices=["throughput", "round-trip"])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per throughput run")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs")
    parser.add_argument("--count", type=int, default=200, help="timed round trips")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one run may take at most")
    parser.add_argument("--workdir", type=Path, required=True, help="folder for the socket, logs and SQLite files")
    return parser.parse_args()


if __name__ == "__main__":
    main()
