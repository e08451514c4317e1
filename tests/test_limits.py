"""Request limits over real sockets: body size, read deadlines, connection cap, JSON bounds, CORS."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import pytest

from conftest import Server, create, wait_until

MIB = 1024 * 1024


def raw_request(server: Server, head: bytes, timeout_s: float = 10.0) -> bytes:
    """Send `head` (request line and headers) on a new socket and return the response bytes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout_s) as sock:
        sock.sendall(head)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"pad": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


def test_declared_large_body_413_before_sending(server: Server) -> None:
    head = (
        f"POST /tasky/v1/workers/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {2 * MIB}\r\n\r\n"
    ).encode()
    # Nothing of the body is sent: the declared length alone triggers the 413.
    answer = raw_request(server, head)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"body_too_large"' in answer
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/tasky/v1/workers/add"),
        ("POST", "/tasky/v1/tasks/no-such-task/cancel"),
        ("PUT", "/tasky/v1/tasks/no-such-task"),
        ("POST", "/tasky/v1/tokens"),
        ("GET", "/tasky/v1/workers"),
    ],
)
def test_every_route_limits_body(api: httpx.Client, method: str, path: str) -> None:
    body = b'{"pad": "' + b"x" * (2 * MIB) + b'"}'
    response = api.request(method, path.removeprefix("/tasky/v1"), content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["detail"] == {"max_bytes": MIB}


def test_streamed_large_body_413(api: httpx.Client) -> None:
    response = api.post("/workers/add", content=chunks(2 * MIB), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_large_bodies_keep_memory_flat(server: Server) -> None:
    process = psutil.Process(server.process.pid)  # type: ignore[union-attr]

    def upload() -> int:
        with httpx.Client(base_url=server.api, timeout=30.0) as client:
            statuses = [
                client.post("/workers/add", content=chunks(2 * MIB), headers={"content-type": "application/json"}).status_code
                for _ in range(3)
            ]
        return max(statuses)

    assert upload() == 413  # warm up the code paths before the baseline
    baseline = process.memory_info().rss
    peak = baseline
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(upload())) for _ in range(8)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.01)
    for thread in threads:
        thread.join()

    assert results == [413] * 8
    # 8 clients send 48 MiB in all; buffering even the 8 bodies in flight would take 16 MiB.
    assert peak - baseline < 8 * MIB, f"server memory grew by {(peak - baseline) / MIB:.1f} MiB"


@pytest.fixture
def strict_server(start_server: Callable[..., Server]) -> Server:
    return start_server("--workers", "jobs", "--examples", "--header-timeout", "2", "--body-timeout", "2")


def send_slowly(server: Server, data: bytes, deadline_s: float) -> tuple[bytes, float]:
    """Send `data` one byte per second until the server responds or closes; return the response and the time taken."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(1.0)
        for byte in data:
            if time.monotonic() - started > deadline_s:
                break
            try:
                sock.sendall(bytes([byte]))
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return b"", time.monotonic() - started
            return answer + read_until_closed(sock), time.monotonic() - started
    return b"", time.monotonic() - started


def test_slow_headers_cut_off(strict_server: Server) -> None:
    slow_head = b"GET /tasky/v1/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 60 + b"\r\n\r\n"
    outcome: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: outcome.update(zip(("answer", "seconds"), send_slowly(strict_server, slow_head, 15))))
    slow.start()

    served = 0
    with strict_server.client() as api:
        while slow.is_alive():
            assert api.get("/workers").status_code == 200
            served += 1
            time.sleep(0.1)
    slow.join()

    assert outcome["answer"].startswith(b"HTTP/1.1 408 "), outcome
    assert b"request_timeout" in outcome["answer"]
    # The header deadline is 2 s; 6 s is a generous bound that a missing deadline (15 s) would break.
    assert outcome["seconds"] < 6
    assert served >= 5


def test_slow_body_cut_off(strict_server: Server) -> None:
    body = b'{"a": 1, "b": 2, "pad": "' + b"x" * 40 + b'"}'
    head = (
        f"POST /tasky/v1/workers/add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
        sock.sendall(head)
        started = time.monotonic()
        sock.settimeout(1.0)
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
                answer = sock.recv(65536)
                break
            except TimeoutError:
                continue
        seconds = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert seconds < 6
    assert "before its body was read" in strict_server.log()
    with strict_server.client() as api:
        assert api.get("/tasks", params={"worker": "add"}).json()["tasks"] == []


def task_state(server: Server, task_id: str) -> str:
    with sqlite3.connect(f"file:{server.store}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT state FROM tasks WHERE id = ?", (task_id,)).fetchone()[0]


def test_connection_cap_spares_tasks(start_server: Callable[..., Server]) -> None:
    server = start_server("--max-connections", "4", "--header-timeout", "60")
    with server.client() as api:
        task = create(api, "sleeper", {"seconds": 1})

    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:

        def rejected() -> bool:
            answer = raw_request(server, b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return answer.startswith(b"HTTP/1.1 503 ")

        wait_until(rejected, what="a connection beyond the cap to get 503")
        answer = raw_request(server, b"")
        assert b'"code":"too_many_connections"' in answer
        assert b"retry-after: 1" in answer.lower()
        # The executor goes on while no client can connect.
        wait_until(lambda: task_state(server, task["id"]) == "completed", what="the task to complete")
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: httpx.get(f"{server.url}/livez").status_code == 200, what="connections to be accepted again")


def test_json_depth_limit(api: httpx.Client) -> None:
    nested: Any = 1
    for _ in range(40):
        nested = {"a": nested}
    response = api.post("/workers/add", json=nested)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "json_too_deep"
    assert response.json()["error"]["detail"] == {"max_depth": 32}


def test_json_string_limit(api: httpx.Client) -> None:
    response = api.post("/workers/add", json={"a": 1, "b": "x" * 70000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "string_too_long"
    long_key = api.post("/workers/add", json={"k" * 70000: 1})
    assert long_key.status_code == 413


def test_json_within_limits_passes(api: httpx.Client) -> None:
    response = api.post("/workers/add", json={"a": 1, "b": 2})
    assert response.status_code == 201


def preflight(server: Server, origin: str) -> httpx.Response:
    return httpx.options(
        f"{server.api}/workers/add",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_off_by_default(server: Server) -> None:
    answer = preflight(server, "http://app.example")
    assert "access-control-allow-origin" not in answer.headers
    plain = httpx.get(f"{server.api}/workers", headers={"Origin": "http://app.example"})
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers


def test_cors_allowed_origin(start_server: Callable[..., Server]) -> None:
    server = start_server("--cors-origin", "http://app.example")
    allowed = preflight(server, "http://app.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://app.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

    other = preflight(server, "http://evil.example")
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers

    plain = httpx.get(f"{server.api}/workers", headers={"Origin": "http://app.example"})
    assert plain.headers["access-control-allow-origin"] == "http://app.example"
    assert "access-control-allow-origin" not in httpx.get(f"{server.api}/workers", headers={"Origin": "http://evil.example"}).headers
