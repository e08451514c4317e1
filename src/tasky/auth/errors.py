"""Authentication and authorization errors (401 and 403) with their `WWW-Authenticate` challenge."""

from __future__ import annotations

from typing import Any

from tasky.errors import TaskyError

REALM = 'Bearer realm="tasky"'


class Unauthorized(TaskyError, PermissionError):
    """The request has no valid credentials: a missing, unknown or revoked token, or a bad ticket."""

    code = "token_required"
    status = 401

    def __init__(self, message: str, *, code: str = "token_required", challenge_error: str | None = None, detail: Any = None) -> None:
        super().__init__(message, detail=detail, code=code)
        self.challenge_error = challenge_error

    @property
    def challenge(self) -> str:
        if self.challenge_error is None:
            return REALM
        return f'{REALM}, error="{self.challenge_error}"'


class Forbidden(TaskyError, PermissionError):
    """The credentials are valid but their role is too weak for the route."""

    code = "role_insufficient"
    status = 403
    challenge = f'{REALM}, error="insufficient_scope"'
