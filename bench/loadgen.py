"""HTTP load generators: wrk when it is installed, else an asyncio one of our own.

Both send the same request over N keep-alive connections to 127.0.0.1 and
report requests per second, p50 and p99 latency. `wrk` (Debian package
`wrk`) is preferred because it leaves the CPU to the server under test;
the asyncio generator writes raw HTTP/1.1 on each connection and is used
for fixed request counts (the end-to-end run) and when wrk is missing.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, ' ..
    '"write_errors": %%d, "status_errors": %%d, "timeouts": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class LoadResult:
    """Outcome of one load run; latencies in milliseconds."""

    tool: str
    requests: int
    elapsed_s: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "requests": self.requests,
            "elapsed_s": self.elapsed_s,
            "errors": self.errors,
            "requests_per_s": self.requests_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "statuses": self.statuses,
        }


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, body: bytes, connections: int, duration_s: float, threads: int = 2) -> LoadResult:
    """POST `body` to `url` with wrk for `duration_s` seconds."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"load tests target {LOOPBACK} only, got {url!r}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"body": json.dumps(body.decode())})
    try:
        command = [
            wrk_path() or "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
            "--timeout", "10s", "-s", script.name, url,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=True)
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(data[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        elapsed_s=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses={"non_2xx": data["status_errors"]},
    )


def run_asyncio_load(
    port: int, path: str, body: bytes, connections: int, *, total: int | None = None, duration_s: float = 10.0
) -> LoadResult:
    """POST `body` to `path` until `total` requests are answered or `duration_s` passes."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_load(port, path, body, connections, total, duration_s))


async def _load(port: int, path: str, body: bytes, connections: int, total: int | None, duration_s: float) -> LoadResult:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    state = _LoadState(total=total, deadline=time.perf_counter() + duration_s)
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, request, state) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(state.latencies_ms)
    return LoadResult(
        tool="asyncio",
        requests=len(ordered),
        elapsed_s=elapsed,
        errors=state.errors + sum(count for status, count in state.statuses.items() if not status.startswith("2")),
        p50_ms=percentile(ordered, 50),
        p99_ms=percentile(ordered, 99),
        statuses=dict(state.statuses),
    )


@dataclass
class _LoadState:
    total: int | None
    deadline: float
    issued: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def take(self) -> bool:
        """Reserve one request; False once the count or the time is used up."""
        if self.total is not None and self.issued >= self.total:
            return False
        if time.perf_counter() > self.deadline:
            return False
        self.issued += 1
        return True


async def _connection(port: int, request: bytes, state: _LoadState) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        while state.take():
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            state.latencies_ms.append((time.perf_counter() - started) * 1000)
            state.statuses[status] = state.statuses.get(status, 0) + 1
    except (ConnectionError, asyncio.IncompleteReadError):
        state.errors += 1
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)[1].decode()
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
