"""Bare ASGI apps with one trivial JSON POST route: the ceilings that tasky's submit rate is compared with.

Each route parses the JSON body and responds 201 with a small JSON object,
as a task-creating POST does, but stores nothing. `/ready` serves the
harness's start-up probe.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def _create(request: Request) -> JSONResponse:
    config = await request.json()
    return JSONResponse({"id": str(uuid.uuid4()), "state": "queued", "config": config}, status_code=201)


async def _ready(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


starlette_app = Starlette(routes=[Route("/tasks", _create, methods=["POST"]), Route("/ready", _ready)])

fastapi_app = FastAPI()


@fastapi_app.post("/tasks", status_code=201)
async def create(config: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "state": "queued", "config": config}


@fastapi_app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
