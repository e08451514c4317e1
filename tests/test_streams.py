"""Event streams: stream tickets for browsers, the cap on open streams, and tickets kept out of logs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from auth_helpers import bearer, create_token, tasky_command
from conftest import START_TIMEOUT_S, TESTS_DIR, Server, wait_until
from tasky.auth.tickets import Ticket, TicketInvalid, TicketRedactor, sign_ticket, verify_ticket

MAX_STREAMS = 2


class StreamServer(Server):
    """`stream_app.py` in its own process: the tasky app with an event stream route."""

    def start(self) -> Server:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
        command = [sys.executable, str(TESTS_DIR / "stream_app.py"), f"127.0.0.1:{self.port}", str(self.store), str(MAX_STREAMS)]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, cwd=self.folder, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self._ready, START_TIMEOUT_S, 0.05, f"stream server on port {self.port}")
        return self


@pytest.fixture
def stream_server(tmp_path: Path) -> Iterator[Server]:
    server = StreamServer(tmp_path, [])
    server.start()
    yield server
    server.kill()


@pytest.fixture
def token(stream_server: Server) -> str:
    return create_token(stream_server.store, "viewer", "read")


def sleeper_task(server: Server) -> str:
    admin = create_token(server.store, "starter", "operate")
    response = httpx.post(f"{server.api}/workers/sleeper", json={"seconds": 300}, headers=bearer(admin))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def ticket_for(server: Server, token: str, path: str) -> httpx.Response:
    return httpx.post(f"{server.api}/auth/tickets", json={"path": path}, headers=bearer(token))


def first_event(server: Server, url: str) -> tuple[int, str]:
    with httpx.stream("GET", f"{server.url}{url}", timeout=10.0) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.text
        for line in response.iter_lines():
            if line.startswith("data:"):
                return 200, line
    return 200, ""


def test_ticket_opens_stream(stream_server: Server, token: str) -> None:
    task_id = sleeper_task(stream_server)
    path = f"/tasky/v1/tasks/{task_id}/events"
    issued = ticket_for(stream_server, token, path)
    assert issued.status_code == 201
    body = issued.json()
    assert body["path"] == path
    assert body["url"] == f"{path}?ticket={body['ticket']}"
    assert token not in body["ticket"]

    assert first_event(stream_server, path)[0] == 401
    status, event = first_event(stream_server, body["url"])
    assert status == 200
    assert '"state"' in event


def test_ticket_bound_to_its_stream(stream_server: Server, token: str) -> None:
    task_id = sleeper_task(stream_server)
    ticket = ticket_for(stream_server, token, f"/tasky/v1/tasks/{task_id}/events").json()["ticket"]

    other = httpx.get(f"{stream_server.api}/tasks/other-task/events", params={"ticket": ticket})
    assert other.status_code == 401
    assert other.json()["error"]["code"] == "ticket_invalid"

    not_a_stream = httpx.get(f"{stream_server.api}/tasks/{task_id}", params={"ticket": ticket})
    assert not_a_stream.status_code == 401
    assert not_a_stream.json()["error"]["code"] == "token_required"

    forged = ticket[:-4] + ("AAAA" if not ticket.endswith("AAAA") else "BBBB")
    tampered = httpx.get(f"{stream_server.api}/tasks/{task_id}/events", params={"ticket": forged})
    assert tampered.status_code == 401
    assert "signature" in tampered.json()["error"]["message"]

    refused = ticket_for(stream_server, token, f"/tasky/v1/tasks/{task_id}")
    assert refused.status_code == 422


def test_ticket_dies_with_its_token(stream_server: Server, token: str) -> None:
    task_id = sleeper_task(stream_server)
    url = ticket_for(stream_server, token, f"/tasky/v1/tasks/{task_id}/events").json()["url"]
    assert tasky_command("token", "revoke", "viewer", "--store", str(stream_server.store)).returncode == 0
    wait_until(lambda: first_event(stream_server, url)[0] == 401, 2.5, 0.05, "the revoke to reach the ticket")


def test_stream_cap(stream_server: Server, token: str) -> None:
    task_id = sleeper_task(stream_server)
    path = f"/tasky/v1/tasks/{task_id}/events"
    client = httpx.Client(base_url=stream_server.url, headers=bearer(token), timeout=10.0)
    with client, ExitStack() as streams:
        for _ in range(MAX_STREAMS):
            opened = streams.enter_context(client.stream("GET", path))
            assert opened.status_code == 200
        over = client.get(path)
        assert over.status_code == 503
        assert over.headers["retry-after"] == "5"
        assert over.json()["error"]["code"] == "too_many_streams"
        assert client.get(f"/tasky/v1/tasks/{task_id}").status_code == 200
    with httpx.Client(base_url=stream_server.url, headers=bearer(token), timeout=10.0) as client:

        def stream_opens() -> bool:
            with client.stream("GET", path) as response:
                return response.status_code == 200

        wait_until(stream_opens, what="a stream slot to free up")


def test_ticket_not_in_access_log(stream_server: Server, token: str) -> None:
    task_id = sleeper_task(stream_server)
    issued = ticket_for(stream_server, token, f"/tasky/v1/tasks/{task_id}/events").json()
    assert first_event(stream_server, issued["url"])[0] == 200
    access_line = f'"GET /tasky/v1/tasks/{task_id}/events HTTP/1.1" 200'
    wait_until(lambda: access_line in stream_server.log(), what="the access log line")
    # The ticket is taken out of the query string before the route and the log see it.
    assert issued["ticket"] not in stream_server.log()
    assert token not in stream_server.log()


def test_ticket_expiry_and_format() -> None:
    key = b"k" * 32
    text = sign_ticket(Ticket(token="viewer", path="/s", expires_at=1000.0), key)
    assert verify_ticket(text, key, "/s", now=999.0).token == "viewer"
    with pytest.raises(TicketInvalid, match="expired"):
        verify_ticket(text, key, "/s", now=1000.0)
    with pytest.raises(TicketInvalid, match="signature"):
        verify_ticket(text, b"other key" * 4, "/s", now=999.0)
    with pytest.raises(TicketInvalid, match="malformed"):
        verify_ticket("no-dot", key, "/s", now=999.0)


def test_redactor_rewrites_arguments() -> None:
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s "%s"', ("1.2.3.4", "/e?a=1&ticket=abc.def"), None)
    TicketRedactor().filter(record)
    assert record.getMessage() == '1.2.3.4 "/e?a=1&ticket=REDACTED"'
