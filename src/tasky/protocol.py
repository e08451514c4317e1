"""Connection guards below ASGI: header and body read deadlines and a connection cap.

uvicorn (0.55) closes idle keep-alive connections but sets no deadline on
reading a request, so a client that sends its headers one byte per second keeps a
connection open for as long as it likes. `guarded_protocol` builds a subclass of
uvicorn's httptools protocol that starts a timer when a connection opens
and when the first byte of each request arrives; the headers must be
complete within `header_timeout_s`, and the body within `body_timeout_s`
of the headers. A client that misses a deadline gets 408 and is
disconnected. A connection beyond `max_connections` gets 503 and is
closed before anything is read. These guards touch only sockets; the
executor and the tasks it runs never wait on them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tasky.security import SecurityOptions

logger = logging.getLogger(__name__)


def guarded_protocol(options: SecurityOptions) -> type[HttpToolsProtocol]:
    """Return a uvicorn HTTP protocol class that enforces the deadlines and the cap in `options`."""

    class Guarded(GuardedHttpToolsProtocol):
        header_timeout_s = options.header_timeout_s
        body_timeout_s = options.body_timeout_s
        max_connections = options.max_connections

    return Guarded


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            logger.warning("closed a connection from %s: %d connections are open, more than the limit", _peer(self.client), len(self.connections) - 1)
            self._reject(503, "too_many_connections", "the server has too many open connections; retry later", retry_after_s=1)
            return
        self._arm(self.header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket protocol takes over the transport
        super().handle_websocket_upgrade()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, phase, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        logger.info("cut off %s: it did not send the request %s within %g s", _peer(self.client), phase, seconds)
        cycle = self.cycle
        if phase == "body" and cycle is not None and cycle.response_started:
            self.transport.close()
            return
        if cycle is not None and not cycle.response_complete:
            # The route receives a disconnect instead of writing to a closed socket.
            cycle.disconnected = True
            cycle.message_event.set()
        message = f"the request {phase} did not arrive within {seconds:g} s; send the whole request without pauses"
        self._reject(408, "request_timeout", message)

    def _reject(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        body = orjson.dumps({"error": {"code": code, "message": message, "detail": None}})
        reason = {408: b"Request Timeout", 503: b"Service Unavailable"}[status]
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if retry_after_s is not None:
            head.append(b"retry-after: %d\r\n" % retry_after_s)
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"
