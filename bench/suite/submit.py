"""Submit: task-creating POSTs over N keep-alive connections, beside a bare Starlette route.

tasky serves the no-op worker with its defaults (durable store, INFO log
to a file) and executes the tasks while they arrive. The ceilings are the
same uvicorn serving one trivial JSON POST route, measured with the same
load generator in the same run. Runs alternate between the servers, so a
slow phase of the machine affects them alike. After each tasky run the suite
waits until the node has executed every accepted task, so that backlog
does not take CPU from the next server's run.
"""

from __future__ import annotations

import statistics
from typing import Any

from loadgen import LoadResult, run_asyncio_load, run_wrk, wrk_path
from servers import API, ServerProcess, ceiling_server, tasky_server
from suite.settings import Settings
from suite.storeprobe import wait_drained

WARM_UP_S = 1.0
BODY = b"{}"


def run(settings: Settings) -> dict[str, Any]:
    tool = "wrk" if wrk_path() else "asyncio"
    folder = settings.workdir / "submit"
    targets = {
        "tasky": (tasky_server(folder / "tasky"), f"{API}/workers/noop"),
        "starlette": (ceiling_server(folder, "starlette_app"), "/tasks"),
        "fastapi": (ceiling_server(folder, "fastapi_app"), "/tasks"),
    }
    samples: dict[str, list[LoadResult]] = {name: [] for name in targets}
    for name, (server, path) in targets.items():
        server.start()
        load(tool, server, path, WARM_UP_S, settings.connections)
        if name == "tasky":
            drain(server, settings)
    try:
        for _ in range(settings.runs):
            for name, (server, path) in targets.items():
                samples[name].append(load(tool, server, path, settings.submit_duration_s, settings.connections))
                if name == "tasky":
                    drain(server, settings)
    finally:
        for server, _ in targets.values():
            server.stop()
    results = {name: summarize(runs) for name, runs in samples.items()}
    return {
        "tool": tool,
        "connections": settings.connections,
        "duration_s": settings.submit_duration_s,
        "results": results,
        "ratio_to_starlette": results["tasky"]["requests_per_s"] / results["starlette"]["requests_per_s"],
    }


def load(tool: str, server: ServerProcess, path: str, duration_s: float, connections: int) -> LoadResult:
    if tool == "wrk":
        return run_wrk(f"http://127.0.0.1:{server.port}{path}", BODY, connections, duration_s)
    return run_asyncio_load(server.port, path, BODY, connections, duration_s=duration_s)


def drain(server: ServerProcess, settings: Settings) -> None:
    """Wait until tasky has executed the accepted tasks, so its backlog does not slow the next server."""
    if not wait_drained(server.folder / "tasky.db", settings.run_timeout_s * 5):
        raise RuntimeError("tasky did not finish the submitted tasks in time")


def summarize(runs: list[LoadResult]) -> dict[str, Any]:
    """Median of the runs for each figure, and the runs themselves."""
    return {
        "requests_per_s": statistics.median(run.requests_per_s for run in runs),
        "p50_ms": statistics.median(run.p50_ms or 0.0 for run in runs),
        "p99_ms": statistics.median(run.p99_ms or 0.0 for run in runs),
        "errors": sum(run.errors for run in runs),
        "runs": [run.as_dict() for run in runs],
    }
