"""The HTTP layer: a FastAPI app built for one `Tasky` node."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tasky import __version__
from tasky.api.errors import install_error_handlers
from tasky.api.logs import build_log_router
from tasky.api.metrics import add_metrics
from tasky.api.middleware import StripTrailingSlash
from tasky.api.security import document_security, install_cors, install_security, warn_unlisted_routes
from tasky.api.serialize import API_PREFIX, JSON
from tasky.api.statistics import build_statistics_router
from tasky.api.streams import build_stream_router
from tasky.api.tasks import build_task_router
from tasky.api.workers import build_worker_router, config_schemas
from tasky.app import Tasky


def create_api(tasky: Tasky) -> FastAPI:
    """Build the FastAPI app; its lifespan starts and stops the node."""
    app = FastAPI(
        title="tasky",
        version=__version__,
        description="Run named, typed jobs and steer them over HTTP.",
        lifespan=tasky.lifespan,
        redirect_slashes=False,
    )
    app.state.tasky = tasky
    install_error_handlers(app)
    worker_router, create_route = build_worker_router(tasky)
    app.include_router(worker_router, prefix=API_PREFIX)
    app.include_router(build_task_router(tasky), prefix=API_PREFIX)
    app.include_router(build_log_router(tasky), prefix=API_PREFIX)
    app.include_router(build_stream_router(tasky), prefix=API_PREFIX)
    app.include_router(build_statistics_router(tasky), prefix=API_PREFIX)  # last: it has the catch-all /{worker}/statistics
    _add_health_routes(app, tasky)
    app.router.routes.insert(0, create_route)  # first, so it serves every task creation
    add_metrics(app, tasky)  # inside StripTrailingSlash, which copies the scope that routing fills in
    auth = install_security(app, tasky)
    app.add_middleware(StripTrailingSlash)
    install_cors(app, tasky)
    app.openapi = lambda: _openapi(app, tasky)  # type: ignore[method-assign]
    warn_unlisted_routes(app, auth)
    return app


def _add_health_routes(app: FastAPI, tasky: Tasky) -> None:
    @app.get("/livez", tags=["health"], summary="The process is up")
    async def livez() -> JSON:
        return JSON({"status": "ok"})

    @app.get("/readyz", tags=["health"], summary="The store is open and migrated, and the node is not shutting down")
    async def readyz() -> JSON:
        if not tasky.ready:
            return JSON({"status": "not ready"}, status_code=503)
        return JSON({"status": "ready", "node": tasky.node})


def _openapi(app: FastAPI, tasky: Tasky) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(config_schemas(list(tasky.registry)))
        document_security(schema)
        app.openapi_schema = schema
    return app.openapi_schema
