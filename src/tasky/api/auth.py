"""Authentication and authorization of every HTTP request.

`AuthMiddleware` matches each request against the route table
(`tasky.auth.policy`), identifies the sender (by a bearer
token, a stream ticket, or no credentials at all) and checks the role. The contract:

- `/livez` and `/readyz` are public.
- While the store has no active token, a request without credentials is
  served with the admin role when it arrives on a loopback interface, or
  on any interface with `--insecure` (each such request logs a warning).
- Once a token exists, every other route needs `Authorization: Bearer
  TOKEN`, or `?ticket=` on an event stream. Missing or invalid
  credentials get 401 with `WWW-Authenticate`, too weak a role gets 403.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from tasky.api.serialize import JSON
from tasky.auth.errors import Forbidden, Unauthorized
from tasky.auth.policy import MatchedRoute, RouteTable
from tasky.auth.roles import Role
from tasky.auth.store import AuthStore
from tasky.auth.tickets import TICKET_KEY_PURPOSE, Ticket, TicketInvalid, sign_ticket, verify_ticket
from tasky.auth.tokens import Principal, TokenCache, TokenDigest, find_token

if TYPE_CHECKING:
    from tasky.app import Tasky

logger = logging.getLogger(__name__)

ANONYMOUS = Principal(name=None, role=Role.ADMIN, via="anonymous")
NO_TOKEN_HINT = "create one with 'tasky token create --store PATH --name NAME --role read' and send 'Authorization: Bearer TOKEN'"
REJECTION_LOG_LINES_PER_MINUTE = 20
POLICY_VIOLATION = 1008  # WebSocket close code for a rejected handshake


class Authenticator:
    """The tokens, the ticket key and the route table of one app, shared by the middleware and the routes."""

    def __init__(self, tasky: Tasky, table: RouteTable | None = None) -> None:
        self.tasky = tasky
        self.table = table or RouteTable()
        self.store = AuthStore(tasky.store)
        self.tokens = TokenCache(self.store.active_tokens, tasky.security.token_cache_s)
        self._ticket_key: bytes | None = None

    async def authenticate(self, scope: Scope, route: MatchedRoute) -> Principal:
        """Return who sent the request; raise `Unauthorized` when that cannot be established."""
        active = await self.tokens.active()
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            return await self._from_bearer(authorization, active)
        ticket = _pop_query_parameter(scope, "ticket") if route.policy.stream else None
        if ticket is not None:
            return await self._from_ticket(ticket, scope, active)
        if not active and (self.tasky.security.insecure or _arrived_on_loopback(scope)):
            return ANONYMOUS
        if not active:
            raise Unauthorized(
                f"this server has no API token and serves requests without one only on loopback; {NO_TOKEN_HINT}"
            )
        raise Unauthorized(f"this route needs a token: send 'Authorization: Bearer TOKEN' ({_route_label(scope)})")

    def authorize(self, principal: Principal, route: MatchedRoute, scope: Scope) -> None:
        """Raise `Forbidden` unless the principal's role allows the route."""
        needed = route.policy.role
        if needed is None or principal.role.allows(needed):
            return
        raise Forbidden(
            f"token {principal.label!r} has the role {principal.role.value}, and {_route_label(scope)} needs "
            f"{needed.value}; use a token with that role",
            detail={"role": principal.role.value, "needed": needed.value},
        )

    async def issue_ticket(self, principal: Principal, path: str) -> tuple[str, float]:
        """Sign a ticket for `path`; return it and its expiry time in Unix seconds."""
        expires_at = time.time() + self.tasky.security.ticket_ttl_s
        ticket = Ticket(token=principal.name, path=path, expires_at=expires_at)
        return sign_ticket(ticket, await self._key()), expires_at

    async def _from_bearer(self, authorization: str, active: list[TokenDigest]) -> Principal:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized(
                f"unsupported authorization scheme {scheme!r}; send 'Authorization: Bearer TOKEN'",
                code="auth_scheme_unsupported",
                challenge_error="invalid_request",
            )
        found = find_token(credentials.strip(), active)
        if found is None:
            reloaded = await self.tokens.reload_after_miss()
            if reloaded is not None:
                active = reloaded
                found = find_token(credentials.strip(), active)
        if found is None:
            hint = NO_TOKEN_HINT if not active else "check the token, or ask an admin for a new one"
            raise Unauthorized(
                f"the bearer token is unknown or revoked; {hint}", code="token_invalid", challenge_error="invalid_token"
            )
        return Principal(name=found.name, role=found.role, via="token")

    async def _from_ticket(self, text: str, scope: Scope, active: list[TokenDigest]) -> Principal:
        path = scope["path"].rstrip("/") or "/"
        try:
            ticket = verify_ticket(text, await self._key(), path)
        except TicketInvalid as exc:
            raise Unauthorized(f"invalid stream ticket: {exc}", code="ticket_invalid", challenge_error="invalid_token") from None
        if ticket.token is None and not active:
            return ANONYMOUS
        for token in active:
            if token.name == ticket.token:
                return Principal(name=token.name, role=token.role, via="ticket")
        raise Unauthorized(
            "invalid stream ticket: its token was revoked; request a new ticket with a valid token",
            code="ticket_invalid",
            challenge_error="invalid_token",
        )

    async def _key(self) -> bytes:
        if self._ticket_key is None:
            self._ticket_key = await self.store.signing_key(TICKET_KEY_PURPOSE)
        return self._ticket_key


class AuthMiddleware:
    """Reject requests without the credentials and role that their route needs; see the module docstring."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator
        self._rejections = _RateLimitedLog(REJECTION_LOG_LINES_PER_MINUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        route = self.auth.table.match(scope.get("method", "GET"), scope["path"])
        scope["tasky.route"] = route
        if route.policy.role is None:
            await self.app(scope, receive, send)
            return

        try:
            principal = await self.auth.authenticate(scope, route)
            scope["tasky.principal"] = principal
            self.auth.authorize(principal, route, scope)
        except (Unauthorized, Forbidden) as exc:
            self._rejections.log(exc.status, _route_label(scope), _client(scope), exc.code)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": POLICY_VIOLATION})
                return
            response = JSON(exc.to_body(), status_code=exc.status, headers={"WWW-Authenticate": exc.challenge})
            await response(scope, receive, send)
            return

        if principal is ANONYMOUS and self.auth.tasky.security.insecure:
            logger.warning(
                "served %s from %s without authentication (--insecure); create a token with 'tasky token create'",
                _route_label(scope),
                _client(scope),
            )
        await self.app(scope, receive, send)


class _RateLimitedLog:
    """Log rejected requests at INFO, at most `per_minute` lines a minute, then a count of the rest."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._window_start = time.monotonic()
        self._logged = 0
        self._suppressed = 0

    def log(self, status: int, route: str, client: str | None, code: str) -> None:
        now = time.monotonic()
        if now - self._window_start >= 60:
            if self._suppressed:
                logger.info("%d more requests were rejected in the last minute without a log line", self._suppressed)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged >= self.per_minute:
            self._suppressed += 1
            return
        self._logged += 1
        logger.info("rejected %s from %s with %d (%s)", route, client, status, code)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _pop_query_parameter(scope: Scope, name: str) -> str | None:
    """Remove `name` from the query string, so that no route or log line contains it; return its value."""
    raw = scope.get("query_string", b"").decode("latin-1")
    if f"{name}=" not in raw:
        return None
    pairs = parse_qsl(raw, keep_blank_values=True)
    value = next((item for key, item in pairs if key == name), None)
    scope["query_string"] = urlencode([(key, item) for key, item in pairs if key != name]).encode("latin-1")
    return value


def _arrived_on_loopback(scope: Scope) -> bool:
    server = scope.get("server")
    if server is None or server[1] is None:
        return True  # a Unix socket: only local processes can connect
    try:
        return ipaddress.ip_address(server[0]).is_loopback
    except ValueError:
        return False


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _route_label(scope: Scope) -> str:
    return f"{scope.get('method', 'GET')} {scope['path']}"
