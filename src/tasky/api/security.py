"""Wiring of the safety guards into the FastAPI app of one node.

Middleware order, outermost first: CORS (only when origins are
configured, so a browser's preflight is answered without a token), then
the audit log, authentication, the body size limit and the event stream
cap. Authentication comes before the body limit, so a client without a
token learns nothing but 401.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from tasky.api.admin import build_admin_router
from tasky.api.auth import AuthMiddleware, Authenticator
from tasky.api.limits import BodySizeLimit, StreamLimit
from tasky.api.serialize import API_PREFIX
from tasky.audit import AuditMiddleware
from tasky.auth.policy import PUBLIC, ROUTES

if TYPE_CHECKING:
    from tasky.app import Tasky

logger = logging.getLogger(__name__)

CORS_METHODS = ["GET", "POST", "PUT", "DELETE"]
CORS_HEADERS = ["Authorization", "Content-Type", "Last-Event-ID"]


def install_security(app: FastAPI, tasky: Tasky) -> Authenticator:
    """Add the auth, audit, limit and CORS middleware and the token, ticket and audit routes to `app`."""
    auth = Authenticator(tasky)
    app.state.auth = auth
    app.include_router(build_admin_router(auth), prefix=API_PREFIX)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)

    # add_middleware puts each new layer outside the previous ones.
    app.add_middleware(StreamLimit, max_streams=tasky.security.max_streams)
    app.add_middleware(BodySizeLimit, max_bytes=tasky.max_body_bytes)
    app.add_middleware(AuthMiddleware, authenticator=auth)
    app.add_middleware(AuditMiddleware, store=auth.store)
    return auth


def install_cors(app: FastAPI, tasky: Tasky) -> None:
    """Allow the configured origins to call the API from a browser; with none, add nothing."""
    origins = list(tasky.security.cors_origins)
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_HEADERS,
        expose_headers=["Location", "Retry-After", "WWW-Authenticate"],
        max_age=600,
    )


def warn_unlisted_routes(app: FastAPI, auth: Authenticator) -> list[str]:
    """Log every route that has no entry in the route table (it then needs admin); return them."""
    unlisted = []
    for route in app.routes:
        for method, path in _methods_and_paths(route):
            if not auth.table.has_entry(method, path):
                unlisted.append(f"{method} {path}")
    for item in unlisted:
        logger.warning("route %s has no entry in tasky.auth.policy.ROUTES; it needs the admin role", item)
    return unlisted


def _methods_and_paths(route: BaseRoute) -> list[tuple[str, str]]:
    if isinstance(route, Route):
        return [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    if isinstance(route, Mount):
        return [("GET", f"{route.path}/{{path}}")]
    return []


async def _client_disconnected(request: Request, exc: Exception) -> Response:
    # The client went away (or was cut off by a read deadline) while its body was being read.
    logger.info("client disconnected during %s %s before its body was read", request.method, request.url.path)
    return Response(status_code=400)


def document_security(schema: dict[str, Any]) -> None:
    """Declare bearer tokens in an OpenAPI document, with the public routes marked as needing none."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["bearerToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from 'tasky token create'. Not needed on loopback while no token exists.",
    }
    schema["security"] = [{"bearerToken": []}]
    for template, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and ROUTES.get((method.upper(), template)) is PUBLIC:
                operation["security"] = []
