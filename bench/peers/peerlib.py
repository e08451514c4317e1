"""Shared measuring code of the peer drivers; standard library only.

Each peer's no-op task sends one datagram to a Unix socket when its body
has run, and the driver counts them: that stops the clock without giving
the peer any extra work beyond one `sendto`. Unix datagram sockets do not
drop messages on Linux (a full receive buffer blocks the sender), so every
completion is counted. The drivers run inside the peers' own virtual
environments, which is why this module imports nothing outside the
standard library.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NOTIFY_ENV = "BENCH_NOTIFY_SOCKET"
WORKER_STOP_TIMEOUT_S = 15.0

_sender: tuple[int, socket.socket] | None = None


def notify_done() -> None:
    """Report one finished task to the driver; called inside the peer's task body."""
    global _sender
    path = os.environ.get(NOTIFY_ENV)
    if not path:
        return
    # A worker pool forks after import, so each process opens its own socket.
    if _sender is None or _sender[0] != os.getpid():
        _sender = (os.getpid(), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    _sender[1].sendto(b"1", path)


class CompletionCounter:
    """Receive the datagrams of `notify_done` and keep the count and the last arrival time."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "done.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        Path(self.path).unlink(missing_ok=True)  # left behind by an earlier run
        self._sock.bind(self.path)
        self._sock.settimeout(0.2)
        self._cond = threading.Condition()
        self.count = 0
        self.last_at = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._receive, name="completion-counter", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                self._sock.recv(16)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.perf_counter()
            with self._cond:
                self.count += 1
                self.last_at = now
                self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self.count = 0
            self.last_at = 0.0

    def wait_for(self, expected: int, timeout_s: float) -> bool:
        """Block until `expected` completions arrived; False at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.count < expected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        Path(self.path).unlink(missing_ok=True)


class WorkerPool:
    """The peer's own worker command, run in its own process group with output to a file."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.command = command
        self._log = open(log_path, "ab")
        self.log_path = log_path
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"worker command {self.command} exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(WORKER_STOP_TIMEOUT_S)
        self._log.close()


def warm_up(pool: WorkerPool, counter: CompletionCounter, enqueue: Callable[[], Any], count: int = 20, timeout_s: float = 60.0) -> None:
    """Run a few tasks until the workers answer, so start-up time is not measured."""
    deadline = time.monotonic() + timeout_s
    counter.reset()
    for _ in range(count):
        enqueue()
    while not counter.wait_for(count, 0.5):
        pool.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not run {count} warm-up tasks within {timeout_s} s (log: {pool.log_path})")
    counter.reset()


def measure_throughput(
    pool: WorkerPool, counter: CompletionCounter, enqueue: Callable[[], Any], tasks: int, runs: int, timeout_s: float
) -> dict[str, Any]:
    """Enqueue `tasks` no-op tasks `runs` times; time from the first enqueue to the last completion."""
    results = []
    for _ in range(runs):
        counter.reset()
        started = time.perf_counter()
        for _ in range(tasks):
            enqueue()
        enqueued = time.perf_counter()
        finished = counter.wait_for(tasks, timeout_s)
        pool.check_alive()
        elapsed = (counter.last_at if finished else time.perf_counter()) - started
        results.append({
            "tasks": tasks,
            "completed": counter.count,
            "timed_out": not finished,
            "elapsed_s": elapsed,
            "enqueue_s": enqueued - started,
            "tasks_per_s": counter.count / elapsed if elapsed > 0 else 0.0,
        })
    return {"runs": results, "tasks_per_s": statistics.median(run["tasks_per_s"] for run in results)}


def measure_round_trip(call: Callable[[], Any], count: int, timeout_s: float) -> dict[str, Any]:
    """Time `call()` (enqueue one task and read its result) `count` times, after 10 untimed calls."""
    for _ in range(10):
        call()
    samples_ms: list[float] = []
    deadline = time.monotonic() + timeout_s
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples_ms.append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    return {**latency_summary(samples_ms), "samples_ms": samples_ms}


def latency_summary(samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else None,
    }


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def worker_env(counter: CompletionCounter | None, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
    if counter is not None:
        env[NOTIFY_ENV] = counter.path
    return env


def emit(result: dict[str, Any]) -> None:
    """Print the driver's result as one JSON line that the suite reads."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
