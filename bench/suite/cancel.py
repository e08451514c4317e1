"""Cancel latency: from the cancel request to the state `canceled`, for a cooperative running task.

The `nap` worker sleeps in `ctx.sleep`, which returns as soon as a cancel
arrives. Each sample starts a task, waits until it runs, then times
`POST /tasks/{id}/cancel` until the stored state is `canceled` (the
request itself waits for the task to stop, up to the node's cancel wait).
"""

from __future__ import annotations

import time
from typing import Any

from loadgen import percentile
from servers import API, tasky_server
from suite.client import Client
from suite.settings import Settings

POLL_INTERVAL_S = 0.001
STATE_TIMEOUT_S = 10.0


def run(settings: Settings) -> dict[str, Any]:
    samples_ms = []
    outcomes = {"200": 0, "202": 0}
    with tasky_server(settings.workdir / "cancel") as server, Client(server.port) as client:
        for _ in range(settings.cancels):
            task_id = start_running(client)
            started = time.perf_counter()
            status, body = client.post(f"{API}/tasks/{task_id}/cancel")
            outcomes[str(status)] = outcomes.get(str(status), 0) + 1
            if status not in (200, 202):
                raise RuntimeError(f"cancel returned {status}: {body}")
            if body["state"] != "canceled":
                wait_state(client, task_id, "canceled")
            samples_ms.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples_ms)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1],
        "responses": outcomes,
    }


def start_running(client: Client) -> str:
    status, body = client.post(f"{API}/workers/nap", {"seconds": 60})
    if status != 201:
        raise RuntimeError(f"creating a nap task returned {status}: {body}")
    wait_state(client, body["id"], "running")
    return body["id"]


def wait_state(client: Client, task_id: str, state: str) -> None:
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while True:
        status, body = client.get(f"{API}/tasks/{task_id}/status")
        if status == 200 and body["state"] == state:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {task_id} did not become {state} within {STATE_TIMEOUT_S} s; last response {status}: {body}")
        time.sleep(POLL_INTERVAL_S)
