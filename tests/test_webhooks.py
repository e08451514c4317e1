"""Webhook callbacks to receivers on 127.0.0.1: retries, signatures, a hanging receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import httpx
import pytest

from conftest import Server, create, free_port, wait_state, wait_until

SECRET = "test-webhook-secret"


class Receiver:
    """An HTTP server that responds to POSTs with the next status of a script (then 200) and records them."""

    def __init__(self, statuses: list[int], port: int = 0) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body, time.time()))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(statuses: list[int] | None = None, port: int = 0) -> Receiver:
        started.append(Receiver(statuses or [], port))
        return started[-1]

    yield start
    for item in started:
        item.close()


def webhook_env(**overrides: str) -> dict[str, str]:
    env = {
        "TASKY_WEBHOOKS__ALLOWED_HOSTS": "127.0.0.1",
        "TASKY_WEBHOOKS__SECRET": SECRET,
        "TASKY_WEBHOOKS__BACKOFF_S": "0.2",
        "TASKY_WEBHOOKS__TIMEOUT_S": "2",
        "TASKY_WEBHOOKS__MAX_ATTEMPTS": "4",
    }
    env.update({f"TASKY_WEBHOOKS__{key.upper()}": value for key, value in overrides.items()})
    return env


def create_with_callback(api: httpx.Client, worker: str, config: dict[str, Any], url: str) -> dict[str, Any]:
    response = api.post(f"/workers/{worker}", json=config, params={"callback_url": url})
    assert response.status_code == 201, response.text
    return response.json()


def signature_valid(headers: dict[str, str], body: bytes) -> bool:
    """Check the signature the way a receiver written from the docs would."""
    parts = dict(part.split("=", 1) for part in headers["Tasky-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def test_retried_until_delivered(start_server: Callable[..., Server], receiver: Callable[..., Receiver]) -> None:
    hook = receiver([500, 503])
    server = start_server("--workers", "jobs", env=webhook_env())
    with server.client() as api:
        task = create_with_callback(api, "add", {"a": 2, "b": 3}, hook.url)
        assert task["callback_url"] == hook.url
        wait_until(lambda: len(hook.requests) == 3, 20, what="three delivery attempts")
        record = wait_until(lambda: _delivered(api, task["id"]), 10, what="the delivery to be recorded")

    for headers, body, _ in hook.requests:
        assert signature_valid(headers, body)
        payload = json.loads(body)
        assert payload["event"] == "task.finished"
        assert payload["task"]["id"] == task["id"]
        assert payload["task"]["state"] == "completed"
        assert payload["task"]["result"] == 5
        assert headers["Tasky-Delivery"] == f"{task['id']}.1"
    delivery = record["deliveries"][0]
    assert delivery["attempts"] == 3
    assert [attempt["status_code"] for attempt in delivery["history"]] == [500, 503, 200]
    assert "HTTP 500" in delivery["history"][0]["error"]
    assert delivery["history"][2]["error"] is None
    waits = [later[2] - earlier[2] for earlier, later in zip(hook.requests, hook.requests[1:])]
    # A retry never comes before its backoff, which doubles: 0.2 s, then 0.4 s.
    assert waits[0] >= 0.2
    assert waits[1] >= 0.4


def test_tampered_body_fails_verification(start_server: Callable[..., Server], receiver: Callable[..., Receiver]) -> None:
    hook = receiver()
    server = start_server("--workers", "jobs", env=webhook_env())
    with server.client() as api:
        create_with_callback(api, "add", {"a": 1}, hook.url)
        wait_until(lambda: hook.requests, 10, what="the delivery")
    headers, body, _ = hook.requests[0]
    assert signature_valid(headers, body)
    assert not signature_valid(headers, body.replace(b'"result":1', b'"result":2'))


def test_hanging_receiver_holds_up_nothing(start_server: Callable[..., Server], receiver: Callable[..., Receiver]) -> None:
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)  # the kernel completes connections, but nothing ever reads or responds
    hang_url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
    good = receiver()
    server = start_server("--workers", "jobs", env=webhook_env(timeout_s="3", max_attempts="2"))
    try:
        with server.client() as api:
            stuck = create_with_callback(api, "add", {"a": 1}, hang_url)
            wait_state(api, stuck["id"], "completed")
            fine = create_with_callback(api, "add", {"a": 2}, good.url)
            wait_until(lambda: good.requests, 10, what="the other receiver's delivery")
            pending = api.get(f"/tasks/{stuck['id']}/callback").json()["deliveries"][0]
            assert pending["state"] == "pending"
            assert pending["attempts"] == 0  # its first attempt is still waiting for a response
            assert _delivered(api, fine["id"])
            more = create(api, "add", {"a": 3})
            assert wait_state(api, more["id"], "completed")["result"] == 3
            failed = wait_until(lambda: _in_state(api, stuck["id"], "failed"), 20, what="the hanging delivery to be given up")
    finally:
        hanging.close()
    history = failed["deliveries"][0]["history"]
    assert len(history) == 2
    assert all(attempt["status_code"] is None for attempt in history)
    assert all("no response within 3 s" in attempt["error"] for attempt in history)


def test_pending_delivery_survives_restart(start_server: Callable[..., Server], receiver: Callable[..., Receiver]) -> None:
    port = free_port()  # nothing listens there yet: every attempt is refused
    url = f"http://127.0.0.1:{port}/hook"
    server = start_server("--workers", "jobs", env=webhook_env(max_attempts="50", max_backoff_s="0.5"))
    with server.client() as api:
        task = create_with_callback(api, "add", {"a": 1}, url)
        wait_until(lambda: _attempts(api, task["id"]) >= 1, 10, what="a refused attempt")
    server.stop()
    hook = receiver(port=port)
    restarted = start_server("--workers", "jobs", env=webhook_env(max_attempts="50", max_backoff_s="0.5"))
    with restarted.client() as api:
        record = wait_until(lambda: _delivered(api, task["id"]), 15, what="the delivery after the restart")
    assert len(hook.requests) == 1
    history = record["deliveries"][0]["history"]
    assert history[0]["status_code"] is None
    assert "ConnectError" in history[0]["error"]
    assert history[-1]["status_code"] == 200


def test_callback_url_checked(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "jobs", env=webhook_env())
    with server.client() as api:
        other_host = api.post("/workers/add", json={"a": 1}, params={"callback_url": "http://example.com/hook"})
        assert other_host.status_code == 400
        assert other_host.json()["error"]["code"] == "callback_host_not_allowed"
        assert "webhooks.allowed_hosts" in other_host.json()["error"]["message"]
        for bad in ("ftp://127.0.0.1/x", "not a url", "/relative/path"):
            response = api.post("/workers/add", json={"a": 1}, params={"callback_url": bad})
            assert response.status_code == 400, bad
            assert response.json()["error"]["code"] == "invalid_callback_url"


def test_callback_rejected_without_configuration(api: httpx.Client) -> None:
    response = api.post("/workers/add", json={"a": 1}, params={"callback_url": "http://127.0.0.1:9/hook"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "callback_host_not_allowed"


def _delivered(api: httpx.Client, task_id: str) -> dict[str, Any] | None:
    return _in_state(api, task_id, "delivered")


def _in_state(api: httpx.Client, task_id: str, state: str) -> dict[str, Any] | None:
    body = api.get(f"/tasks/{task_id}/callback").json()
    deliveries = body["deliveries"]
    return body if deliveries and deliveries[0]["state"] == state else None


def _attempts(api: httpx.Client, task_id: str) -> int:
    deliveries = api.get(f"/tasks/{task_id}/callback").json()["deliveries"]
    return deliveries[0]["attempts"] if deliveries else 0
