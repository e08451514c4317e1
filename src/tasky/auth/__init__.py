"""Authentication and authorization: tokens, roles, stream tickets, the route policy and the bind policy.

The HTTP side (middleware, token and ticket routes) is in `tasky.api.auth`
and `tasky.api.admin`; the `tasky token` commands are in `tasky.cli.token`.
"""

from __future__ import annotations

from tasky.auth.errors import Forbidden, Unauthorized
from tasky.auth.policy import ROUTES, RoutePolicy, RouteTable
from tasky.auth.roles import Role
from tasky.auth.tokens import Principal, Token

__all__ = ["ROUTES", "Forbidden", "Principal", "Role", "RoutePolicy", "RouteTable", "Token", "Unauthorized"]
