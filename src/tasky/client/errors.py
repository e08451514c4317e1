"""Errors raised by `tasky.Client` and `tasky.AsyncClient`.

Every error derives from `TaskyError`::

    TaskyError
    ├── ServerUnreachable (ConnectionError)   no HTTP response: refused, timed out, name not resolved
    ├── WaitTimeout (TimeoutError)            wait() or events() passed its deadline
    └── ApiError                              the server responded with an error status
        ├── ApiBadRequest (ValueError)        400, 413, 415
        ├── ApiAuthError (PermissionError)    401, 403
        ├── ApiNotFound (LookupError)         404
        ├── ApiConflict                       409, with the task's current state
        ├── ApiInvalidConfig (ValueError)     422, with field-level reasons in `detail`
        ├── ApiBusy                           429, 503, with `retry_after_s`
        └── ApiServerError                    500 and other statuses

`ApiError` carries the server's error `code`, `message` and `detail` from the
shared body `{"error": {"code", "message", "detail"}}`, and the HTTP `status`.
"""

from __future__ import annotations

from typing import Any

import orjson

from tasky.errors import TaskyError


class ServerUnreachable(TaskyError, ConnectionError):
    """No HTTP response from the server at `url`."""

    code = "server_unreachable"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the tasky server at {url} ({reason}); is `tasky serve` running there?")
        self.url = url
        self.reason = reason


class WaitTimeout(TaskyError, TimeoutError):
    """The task did not reach a terminal state within `timeout_s`."""

    code = "wait_timeout"

    def __init__(self, task_id: str, timeout_s: float, state: str | None = None) -> None:
        seen = f" (last seen {state})" if state else ""
        super().__init__(f"task {task_id} did not finish within {timeout_s:g} s{seen}; it keeps running on the server")
        self.task_id = task_id
        self.timeout_s = timeout_s
        self.state = state


class ApiError(TaskyError):
    """The server responded with an error status."""

    code = "api_error"

    def __init__(self, message: str, *, status: int, code: str, detail: Any = None) -> None:
        super().__init__(message, detail=detail, code=code)
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status}, {self.code})"


class ApiBadRequest(ApiError, ValueError):
    """The request was malformed, too large or of the wrong content type."""


class ApiAuthError(ApiError, PermissionError):
    """The token is missing, wrong (401) or not allowed to do this (403)."""


class ApiNotFound(ApiError, LookupError):
    """No such worker, task or route."""


class ApiConflict(ApiError):
    """The action is not legal in the task's current state, or the worker is disabled."""

    @property
    def state(self) -> str | None:
        """Current state of the task, when the server sent it."""
        return self.detail.get("state") if isinstance(self.detail, dict) else None


class ApiInvalidConfig(ApiError, ValueError):
    """The config did not validate against the worker's config model."""


class ApiBusy(ApiError):
    """The server's queue is full; retry after `retry_after_s` when it is set."""

    retry_after_s: float | None = None


class ApiServerError(ApiError):
    """The server failed to handle the request (5xx), or sent an unexpected status."""


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: ApiBadRequest,
    401: ApiAuthError,
    403: ApiAuthError,
    404: ApiNotFound,
    409: ApiConflict,
    413: ApiBadRequest,
    415: ApiBadRequest,
    422: ApiInvalidConfig,
    429: ApiBusy,
    503: ApiBusy,
}


def api_error(status: int, headers: dict[str, str], content: bytes) -> ApiError:
    """Build the `ApiError` subclass for an error response."""
    code, message, detail = _error_fields(status, content)
    error = ERRORS_BY_STATUS.get(status, ApiServerError)(message, status=status, code=code, detail=detail)
    if isinstance(error, ApiBusy):
        error.retry_after_s = _retry_after_s(headers.get("retry-after"))
    return error


def _error_fields(status: int, content: bytes) -> tuple[str, str, Any]:
    try:
        body = orjson.loads(content)
        error = body["error"]
        return str(error["code"]), str(error["message"]), error.get("detail")
    except (orjson.JSONDecodeError, TypeError, KeyError):
        # Not tasky's error shape: a proxy, another server on that port, or an old tasky.
        text = content.decode(errors="replace").strip()[:200]
        return "unexpected_response", f"HTTP {status} without a tasky error body: {text or '(empty)'}", None


def _retry_after_s(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
