"""The audit log: who created what or changed which state, and with what outcome.

`AuditMiddleware` records one `AuditEntry` for every request with a
method other than GET, HEAD and OPTIONS whose caller is known: a token, a
stream ticket or the anonymous local caller. A request rejected with 401
has no known caller and is only logged, so a flood of unauthenticated
requests cannot fill the store. An entry records the time, the token name,
the action, the task or worker, the HTTP status and the error code, and
never a token, a ticket or a task config. Entries are written in the
store's next group commit, after the response is sent.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasky.auth.policy import MatchedRoute
from tasky.auth.tokens import Principal

if TYPE_CHECKING:
    from tasky.auth.store import AuthStore

logger = logging.getLogger(__name__)

AUDITED_BODY_BYTES = 1024  # enough for {"action": ...} or {"name": ..., "role": ...}
CAPTURED_ERROR_BYTES = 8192
BODY_FIELDS = ("action", "name", "role")  # body fields copied into an entry; none of them is secret
TASK_LOCATION = re.compile(r"/tasks/([^/]+)$")
ACTION_VALUE = re.compile(r"^[a-z_]{1,32}$")


@dataclass(frozen=True)
class AuditEntry:
    """One recorded request that creates something or changes a state."""

    at: float  # Unix seconds
    token: str | None  # token name; None for an anonymous local request or the command line
    client: str | None
    method: str
    path: str
    action: str
    task_id: str | None
    worker: str | None
    detail: dict[str, Any] | None
    status: int
    outcome: str  # "ok", "denied" or "failed"
    error_code: str | None
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        from tasky.store.rows import to_datetime

        at = to_datetime(self.at)
        return {
            "id": self.id,
            "at": at.isoformat().replace("+00:00", "Z") if at else None,
            "token": self.token,
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "action": self.action,
            "task_id": self.task_id,
            "worker": self.worker,
            "detail": self.detail,
            "status": self.status,
            "outcome": self.outcome,
            "error_code": self.error_code,
        }


@dataclass(frozen=True)
class AuditFilter:
    """Filters of `GET /tasky/v1/audit`; they combine with AND."""

    token: str | None = None
    action: str | None = None
    task_id: str | None = None
    worker: str | None = None


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    return "failed"


class AuditMiddleware:
    """Record state-changing requests; sits outside `AuthMiddleware`, which names the caller."""

    def __init__(self, app: ASGIApp, store: AuthStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return

        started = time.time()
        capture = _Capture(receive, send)
        try:
            await self.app(scope, capture.receive, capture.send)
        finally:
            principal: Principal | None = scope.get("tasky.principal")
            route: MatchedRoute | None = scope.get("tasky.route")
            if principal is not None and route is not None:
                self._record(scope, started, principal, route, capture)

    def _record(self, scope: Scope, started: float, principal: Principal, route: MatchedRoute, capture: _Capture) -> None:
        status = capture.status or 500
        body = _json_object(bytes(capture.request_body))
        entry = AuditEntry(
            at=started,
            token=principal.name,
            client=scope["client"][0] if scope.get("client") else None,
            method=scope["method"],
            path=scope["path"],
            action=_action(route, body),
            task_id=route.params.get("task_id") or _task_from_location(capture.location),
            worker=route.params.get("name") if (route.template or "").startswith("/tasky/v1/workers/") else None,
            detail=_detail(route, body),
            status=status,
            outcome=outcome_of(status),
            error_code=_error_code(bytes(capture.error_body)),
        )
        try:
            self.store.record(entry)
        except RuntimeError as exc:  # the store closed during shutdown
            logger.error("audit entry for %s %s was not stored: %s", entry.method, entry.path, exc)


class _Capture:
    """Wrappers of `receive` and `send` that keep what the audit entry needs."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.request_body = bytearray()
        self.status: int | None = None
        self.location: str | None = None
        self.error_body = bytearray()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and len(self.request_body) < AUDITED_BODY_BYTES:
            self.request_body += message.get("body", b"")[: AUDITED_BODY_BYTES - len(self.request_body)]
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.location = Headers(raw=message.get("headers", [])).get("location")
        elif message["type"] == "http.response.body" and (self.status or 0) >= 400:
            room = CAPTURED_ERROR_BYTES - len(self.error_body)
            if room > 0:
                self.error_body += message.get("body", b"")[:room]
        await self._send(message)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _action(route: MatchedRoute, body: dict[str, Any]) -> str:
    action = route.policy.action or "request"
    if route.policy.action_from_body:
        value = body.get("action")
        suffix = value if isinstance(value, str) and ACTION_VALUE.match(value) else "action"
        return f"{action}.{suffix}"
    return action


def _detail(route: MatchedRoute, body: dict[str, Any]) -> dict[str, Any] | None:
    if (route.policy.action or "").startswith("task.") or route.policy.action_from_body:
        return None  # a task config may hold secrets, so nothing of it is kept
    detail = {key: value for key, value in body.items() if key in BODY_FIELDS and isinstance(value, str) and len(value) <= 64}
    if "/tokens/" in (route.template or "") and "name" in route.params:
        detail["name"] = route.params["name"]
    return detail or None


def _task_from_location(location: str | None) -> str | None:
    found = TASK_LOCATION.search(location or "")
    return found.group(1) if found else None


def _error_code(raw: bytes) -> str | None:
    body = _json_object(raw)
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return None
