"""The access policy: which role each route needs, and what the audit log calls it.

`ROUTES` is the one table that maps `(method, path template)` to a
`RoutePolicy`. Only `/livez` and `/readyz` are public. A request that
matches no entry needs `read` for GET and HEAD and `admin` for any other
method, so a route that someone adds without an entry fails closed. A test
walks every route of the OpenAPI document and fails on a missing entry.
Templates use the OpenAPI form (`{task_id}`), and one template also covers
the per-worker routes (`/tasky/v1/workers/sleeper` matches
`/tasky/v1/workers/{name}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tasky.auth.roles import Role

API = "/tasky/v1"


@dataclass(frozen=True)
class RoutePolicy:
    """The role that one route needs, and the name under which the audit log records it."""

    role: Role | None  # None: public, no token needed
    action: str | None = None  # audit action of a creating or state-changing route
    action_from_body: bool = False  # append the body's "action" value, as in task.pause
    stream: bool = False  # an event stream: accepts a stream ticket in place of a token


PUBLIC = RoutePolicy(role=None)
READ = RoutePolicy(role=Role.READ)
ADMIN_READ = RoutePolicy(role=Role.ADMIN)
STREAM = RoutePolicy(role=Role.READ, stream=True)


def _operate(action: str, *, from_body: bool = False) -> RoutePolicy:
    return RoutePolicy(role=Role.OPERATE, action=action, action_from_body=from_body)


def _admin(action: str, *, from_body: bool = False) -> RoutePolicy:
    return RoutePolicy(role=Role.ADMIN, action=action, action_from_body=from_body)


ROUTES: dict[tuple[str, str], RoutePolicy] = {
    # Health: the only public routes.
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    # The API description and its browser pages.
    ("GET", "/openapi.json"): READ,
    ("GET", "/docs"): READ,
    ("GET", "/docs/oauth2-redirect"): READ,
    ("GET", "/redoc"): READ,
    ("GET", "/metrics"): READ,
    # Workers.
    ("GET", f"{API}/workers"): READ,
    ("GET", f"{API}/workers/{{name}}/info"): READ,
    ("GET", f"{API}/workers/{{name}}/statistics"): READ,
    ("GET", f"{API}/statistics"): READ,
    ("GET", f"{API}/{{worker}}/statistics"): READ,  # the spelling of the Go original's plan
    ("POST", f"{API}/workers/{{name}}"): _operate("task.create"),
    ("POST", f"{API}/workers/{{name}}/actions"): _admin("worker", from_body=True),
    # Tasks.
    ("GET", f"{API}/tasks"): READ,
    ("GET", f"{API}/tasks/{{task_id}}"): READ,
    ("PUT", f"{API}/tasks/{{task_id}}"): _operate("task.replace"),
    ("GET", f"{API}/tasks/{{task_id}}/status"): READ,
    ("GET", f"{API}/tasks/{{task_id}}/result"): READ,
    ("GET", f"{API}/tasks/{{task_id}}/attempts"): READ,
    ("GET", f"{API}/tasks/{{task_id}}/statistics"): READ,
    ("GET", f"{API}/tasks/{{task_id}}/logs"): READ,
    ("GET", f"{API}/tasks/{{task_id}}/callback"): READ,
    ("GET", f"{API}/tasks/{{task_id}}/events"): STREAM,
    ("GET", f"{API}/events"): STREAM,
    ("POST", f"{API}/tasks/{{task_id}}/actions"): _operate("task", from_body=True),
    ("POST", f"{API}/tasks/{{task_id}}/cancel"): _operate("task.cancel"),
    ("POST", f"{API}/tasks/{{task_id}}/pause"): _operate("task.pause"),
    ("POST", f"{API}/tasks/{{task_id}}/resume"): _operate("task.resume"),
    ("POST", f"{API}/tasks/{{task_id}}/run"): _operate("task.run"),
    ("POST", f"{API}/tasks/{{task_id}}/restart"): _operate("task.restart"),
    # Tokens, stream tickets and the audit log.
    ("GET", f"{API}/tokens"): ADMIN_READ,
    ("POST", f"{API}/tokens"): _admin("token.create"),
    ("GET", f"{API}/tokens/{{name}}"): ADMIN_READ,
    ("DELETE", f"{API}/tokens/{{name}}"): _admin("token.revoke"),
    ("POST", f"{API}/auth/tickets"): RoutePolicy(role=Role.READ, action="ticket.create"),
    ("GET", f"{API}/audit"): ADMIN_READ,
}

FALLBACK_READ = RoutePolicy(role=Role.READ)
FALLBACK_WRITE = RoutePolicy(role=Role.ADMIN, action="request")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class MatchedRoute:
    """A request matched against `ROUTES`: the policy, the template and its path parameters."""

    policy: RoutePolicy
    template: str | None  # None when no entry matched and a fallback applies
    params: dict[str, str] = field(default_factory=dict)


class RouteTable:
    """`ROUTES` compiled to regular expressions, most specific template first."""

    def __init__(self, routes: dict[tuple[str, str], RoutePolicy] | None = None) -> None:
        entries = routes if routes is not None else ROUTES
        compiled = [(method, template, _compile(template), policy) for (method, template), policy in entries.items()]
        # Literal segments beat parameters: /tasks/{task_id}/status before /tasks/{task_id}.
        compiled.sort(key=lambda item: (-_literal_segments(item[1]), -item[1].count("/")))
        self._entries = compiled

    def match(self, method: str, path: str) -> MatchedRoute:
        """Return the policy for a request; never fails, falling back as the module docstring describes."""
        method = "GET" if method == "HEAD" else method
        path = path.rstrip("/") or "/"
        for entry_method, template, pattern, policy in self._entries:
            if entry_method != method:
                continue
            found = pattern.fullmatch(path)
            if found:
                return MatchedRoute(policy, template, found.groupdict())
        return MatchedRoute(FALLBACK_READ if method in SAFE_METHODS else FALLBACK_WRITE, None)

    def has_entry(self, method: str, template: str) -> bool:
        """Return whether `template` (as in the OpenAPI document) is covered by an entry."""
        return self.match(method, template).template is not None


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{"):
            name, _, kind = piece[1:-1].partition(":")
            pattern += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
        else:
            pattern += re.escape(piece)
    return re.compile(pattern)


def _literal_segments(template: str) -> int:
    return sum(1 for segment in template.split("/") if segment and not segment.startswith("{"))
