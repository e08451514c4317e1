"""The tasky error tree and the HTTP status each error maps to.

Every error that tasky raises on purpose derives from `TaskyError`::

    TaskyError
    ├── ConfigurationError (ValueError)    bad worker definition or server setting
    ├── NotFoundError (LookupError)         404
    │   ├── WorkerNotFound
    │   └── TaskNotFound
    │       └── TaskPruned                  410: deleted by retention
    ├── BadRequest (ValueError)             400, 413, 415
    ├── InvalidConfig (ValueError)          422, with field-level reasons
    ├── ConflictError                       409
    │   ├── IllegalTransition               carries the current state
    │   └── WorkerDisabled
    ├── PreconditionFailed                  412, a stale If-Match
    ├── QueueFull                           429, with Retry-After
    └── TaskCanceled                        raised inside `perform` by ctx on cancel

The API layer turns each into the shared JSON error shape
`{"error": {"code", "message", "detail"}}`. Nothing here depends on HTTP
beyond the `status` number.
"""

from __future__ import annotations

from typing import Any


class TaskyError(Exception):
    """Root of every error that tasky raises on purpose."""

    code = "tasky_error"
    status = 500

    def __init__(self, message: str, *, detail: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        """Build the JSON error body shared by every route."""
        return {"error": {"code": self.code, "message": self.message, "detail": self.detail}}


class ConfigurationError(TaskyError, ValueError):
    """A worker definition or a server setting is invalid; raised at start-up."""

    code = "configuration_error"


class NotFoundError(TaskyError, LookupError):
    code = "not_found"
    status = 404


class WorkerNotFound(NotFoundError):
    code = "worker_not_found"


class TaskNotFound(NotFoundError):
    code = "task_not_found"


class TaskPruned(TaskNotFound):
    """The task existed but retention deleted it; answered with 410 Gone."""

    code = "task_pruned"
    status = 410


class BadRequest(TaskyError, ValueError):
    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request", detail: Any = None) -> None:
        super().__init__(message, detail=detail, code=code)
        self.status = status


class InvalidConfig(TaskyError, ValueError):
    """The task config does not validate against the worker's config model."""

    code = "invalid_config"
    status = 422


class ConflictError(TaskyError):
    code = "conflict"
    status = 409


class IllegalTransition(ConflictError):
    """The requested action is not legal in the task's current state."""

    code = "illegal_state"

    def __init__(self, message: str, *, state: str, detail: Any = None) -> None:
        merged = {"state": state}
        if detail:
            merged.update(detail)
        super().__init__(message, detail=merged)
        self.state = state


class WorkerDisabled(ConflictError):
    code = "worker_disabled"


class PreconditionFailed(TaskyError):
    code = "precondition_failed"
    status = 412


class QueueFull(TaskyError):
    """The worker's bounded queue is full; the client should retry later."""

    code = "queue_full"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int, detail: Any = None) -> None:
        super().__init__(message, detail=detail)
        self.retry_after_s = retry_after_s


class TaskCanceled(TaskyError):
    """Raised by `ctx.checkpoint()` and `ctx.sleep()` once the task is canceled.

    A worker should let it propagate; catching it and returning normally still
    ends the task `canceled`, because the cancel request is already stored.
    """

    code = "task_canceled"
    status = 409
