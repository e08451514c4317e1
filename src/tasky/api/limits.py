"""Request limits that keep one client from exhausting the server.

- `BodySizeLimit` answers 413 once a request body passes the limit: at
  once when `Content-Length` declares more, otherwise as soon as the
  streamed chunks add up to more, so an oversized body is never held whole.
- `StreamLimit` caps the event streams open at once (503 with `Retry-After`).
- `check_json_bounds` bounds the nesting depth and string lengths of a
  parsed JSON body.

Header and body read deadlines and the connection cap work below ASGI, in
`tasky.protocol`. None of these limits touches the executor, so running
and queued tasks go on whatever clients do.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasky.api.serialize import JSON
from tasky.auth.policy import MatchedRoute
from tasky.errors import BadRequest

logger = logging.getLogger(__name__)

STREAM_RETRY_AFTER_S = 5


def body_too_large(max_bytes: int) -> BadRequest:
    return BadRequest(
        f"the request body is larger than the limit of {max_bytes} bytes; send a smaller body",
        status=413,
        code="body_too_large",
        detail={"max_bytes": max_bytes},
    )


class BodySizeLimit:
    """Answer 413 to a request whose body is larger than `max_bytes`, before reading it whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            error = body_too_large(self.max_bytes)
            # Connection: close, because the unread body would otherwise be parsed as the next request.
            response = JSON(error.to_body(), status_code=413, headers={"Connection": "close"})
            await response(scope, receive, send)
            return

        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route's body read, so the app's error handler answers 413.
                    raise body_too_large(self.max_bytes)
            return message

        await self.app(scope, counted_receive, send)


class StreamLimit:
    """Answer 503 with `Retry-After` when `max_streams` event streams are already open."""

    def __init__(self, app: ASGIApp, max_streams: int) -> None:
        self.app = app
        self.max_streams = max_streams
        self.open_streams = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: MatchedRoute | None = scope.get("tasky.route")
        if scope["type"] != "http" or route is None or not route.policy.stream:
            await self.app(scope, receive, send)
            return

        if self.open_streams >= self.max_streams:
            logger.warning("rejected an event stream on %s: %d streams are open, the limit", scope["path"], self.open_streams)
            body = {
                "error": {
                    "code": "too_many_streams",
                    "message": f"{self.open_streams} event streams are open, the limit of this server; retry later",
                    "detail": {"max_streams": self.max_streams},
                }
            }
            response = JSON(body, status_code=503, headers={"Retry-After": str(STREAM_RETRY_AFTER_S)})
            await response(scope, receive, send)
            return

        self.open_streams += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open_streams -= 1


def check_json_bounds(value: Any, *, max_depth: int, max_string_length: int) -> None:
    """Raise `BadRequest` when `value` nests deeper than `max_depth` or contains a longer string or key."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > max_string_length:
                raise BadRequest(
                    f"a string in the request body has {len(item)} characters, more than the limit of {max_string_length}",
                    status=413,
                    code="string_too_long",
                    detail={"max_string_length": max_string_length},
                )
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > max_depth:
            raise BadRequest(
                f"the request body nests deeper than the limit of {max_depth} levels; send a flatter config",
                code="json_too_deep",
                detail={"max_depth": max_depth},
            )
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                return None
            # int() rejects strings of more than 4300 digits, and any 19-digit length is too large anyway.
            return int(text) if len(text) <= 18 else 10**18
    return None
