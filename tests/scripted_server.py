"""A small HTTP server on 127.0.0.1 that plays scripted replies, for client tests.

Each request to a path runs the next reply queued for that path; the last
reply stays and serves every later request. Replies write raw bytes, so a
test can break an event stream in the middle of an event.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

Reply = Callable[[BaseHTTPRequestHandler, threading.Event], None]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


class ScriptedServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-server", daemon=True
        )

    def on(self, path: str, *replies: Reply) -> ScriptedServer:
        self._replies.setdefault(path, deque()).extend(replies)
        return self

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.path.partition("?")[0] == path]

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self, path: str) -> Reply:
        queue = self._replies.get(path)
        if not queue:
            return json_reply(404, {"error": {"code": "route_not_found", "message": f"no route {path}", "detail": None}})
        return queue.popleft() if len(queue) > 1 else queue[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with server._lock:
                    server.requests.append(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                server._next_reply(self.path.partition("?")[0])(self, server._stopping)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def json_reply(status: int, body: Any) -> Reply:
    def reply(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        content = orjson.dumps(body)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    return reply


def sse_reply(*chunks: str, ending: str = "close", hold_s: float = 10.0) -> Reply:
    """Send an event stream, then end it: "close" (clean end of body), "abort"
    (the connection drops before the promised body is complete) or "hold"
    (keep the connection open and silent for `hold_s`)."""

    def reply(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        body = "".join(chunks).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-store")
        if ending == "abort":
            handler.send_header("Content-Length", str(len(body) + 10_000))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        if ending == "hold":
            stopping.wait(hold_s)
        handler.close_connection = True

    return reply


def event(event_id: int | None, kind: str, **data: Any) -> str:
    """Format one server-sent event with a JSON data line."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines += [f"event: {kind}", f"data: {orjson.dumps(data).decode()}"]
    return "\n".join(lines) + "\n\n"
