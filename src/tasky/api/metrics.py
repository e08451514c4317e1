"""`GET /metrics` and the middleware that counts HTTP requests by route and status."""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasky.app import Tasky
from tasky.metrics import Metrics

UNMATCHED_ROUTE = "(unmatched)"  # label of requests no route matched, so unknown paths add no series


class HTTPMetrics:
    """Counts each HTTP request under the route template it matched, not its raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            template = route_template(scope)
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """Return the matched route as a template with its prefix, e.g. `/tasky/v1/tasks/{task_id}`.

    FastAPI records the route of an included router without the router's
    prefix, so the prefix is taken from the request path: the template's
    segments replace the path's last segments (tasky routes have no
    parameters that span several segments).
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED_ROUTE
    segments = scope["path"].rstrip("/").split("/")
    template_segments = template.strip("/").split("/")
    prefix = segments[: max(1, len(segments) - len(template_segments))]
    return "/".join(prefix + template_segments)


def add_metrics(app: FastAPI, tasky: Tasky) -> None:
    """Serve `/metrics` and count requests; call before adding middleware that copies the scope."""
    metrics = tasky.observability.metrics

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics of this node", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(HTTPMetrics, metrics=metrics)
