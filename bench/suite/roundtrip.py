"""Round trip: one task submitted and its result read, one after another, for tasky and the peers.

tasky has no call that blocks until a result is ready, so the client polls
`GET /tasks/{id}/result` (409 until the task has finished) every
millisecond, the interval that Huey is given here too. Celery and Dramatiq
wait on Redis with their defaults.
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

from servers import API, tasky_server
from suite.client import Client
from suite.peers import peers_to_run, run_driver
from suite.settings import Settings
from loadgen import percentile

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.001
WARM_UP = 10
CALL_TIMEOUT_S = 10.0


def run(settings: Settings) -> dict[str, Any]:
    results = {"tasky": tasky_round_trips(settings)}
    peers, skipped = peers_to_run()
    for peer in peers:
        try:
            results[peer] = run_driver(peer, "round-trip", settings, count=settings.round_trips, timeout=settings.run_timeout_s)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            logger.error("peer %s failed: %s", peer, exc)
            skipped[peer] = f"failed: {str(exc)[:500]}"
    return {"count": settings.round_trips, "poll_interval_ms": POLL_INTERVAL_S * 1000, "results": results, "skipped": skipped}


def tasky_round_trips(settings: Settings) -> dict[str, Any]:
    with tasky_server(settings.workdir / "roundtrip") as server, Client(server.port) as client:
        for _ in range(WARM_UP):
            round_trip(client)
        samples_ms = []
        deadline = time.monotonic() + settings.run_timeout_s
        for _ in range(settings.round_trips):
            started = time.perf_counter()
            round_trip(client)
            samples_ms.append((time.perf_counter() - started) * 1000)
            if time.monotonic() > deadline:
                break
    ordered = sorted(samples_ms)
    return {"count": len(ordered), "p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99), "max_ms": ordered[-1]}


def round_trip(client: Client) -> Any:
    """Create a no-op task and poll its result until it is there."""
    status, body = client.post(f"{API}/workers/noop")
    if status != 201:
        raise RuntimeError(f"creating a task returned {status}: {body}")
    path = f"{API}/tasks/{body['id']}/result"
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        status, body = client.get(path)
        if status == 200:
            return body
        if status != 409 or time.monotonic() > deadline:
            raise RuntimeError(f"reading the result returned {status}: {body}")
        time.sleep(POLL_INTERVAL_S)
