"""Reading a JSON request body safely: type, size and syntax checked."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from tasky.errors import BadRequest

JSON_TYPES = ("application/json",)


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """Return the parsed JSON body, or None for an empty body.

    Raises 415 for a content type other than JSON, 413 as soon as the body
    passes `max_bytes` (before it is read whole) and 400 for invalid JSON.
    """
    _check_content_type(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON ({exc}); send a JSON object",
            code="malformed_json",
        ) from None


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return
    raise BadRequest(
        f"unsupported content type {media_type!r}; send JSON with the header 'Content-Type: application/json'",
        status=415,
        code="unsupported_media_type",
    )


def _too_large(max_bytes: int) -> BadRequest:
    return BadRequest(
        f"the request body is larger than the limit of {max_bytes} bytes; send a smaller body",
        status=413,
        code="body_too_large",
        detail={"max_bytes": max_bytes},
    )
