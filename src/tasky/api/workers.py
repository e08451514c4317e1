"""Routes about workers: list, info, and task creation (`POST /workers/{name}`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tasky.api.body import read_json_body
from tasky.api.serialize import JSON, task_json, task_path
from tasky.app import Tasky
from tasky.worker import Worker

TASK_CREATED = {201: {"description": "The task is stored as queued; `Location` names it."}}


def build_worker_router(tasky: Tasky) -> APIRouter:
    router = APIRouter(tags=["workers"])

    @router.get("/workers", summary="List workers with their config schemas")
    async def list_workers() -> JSON:
        return JSON({"workers": [item.info() for item in tasky.registry]})

    @router.get("/workers/{name}/info", summary="Describe one worker: usage, config schema, limits")
    async def worker_info(name: str) -> JSON:
        return JSON(tasky.worker(name).info())

    async def create(name: str, request: Request) -> JSON:
        raw = await read_json_body(request, tasky.max_body_bytes)
        callback_url = request.query_params.get("callback_url")
        task = await tasky.create_task(name, {} if raw is None else raw, callback_url=callback_url)
        return JSON(task_json(task), status_code=201, headers={"Location": task_path(task.id)})

    # One documented route per worker, so /docs shows each config schema;
    # the generic route below serves the same handler for any name.
    for item in tasky.registry:
        router.add_api_route(
            f"/workers/{item.name}",
            _fixed_name_endpoint(create, item.name),
            methods=["POST"],
            status_code=201,
            summary=f"Create a {item.name} task",
            description=item.info()["description"],
            operation_id=f"create_{item.name.replace('-', '_')}_task",
            openapi_extra={"requestBody": _request_body(item)},
            responses=TASK_CREATED,
        )

    @router.post("/workers/{name}", status_code=201, summary="Create a task of any worker", responses=TASK_CREATED)
    async def create_task(name: str, request: Request) -> JSON:
        return await create(name, request)

    return router


def _fixed_name_endpoint(create: Any, name: str) -> Any:
    async def endpoint(request: Request) -> JSON:
        return await create(name, request)

    return endpoint


def _request_body(item: Worker) -> dict[str, Any]:
    return {
        "required": False,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{item.config.__name__}"}}},
    }


def config_schemas(workers: list[Worker]) -> dict[str, Any]:
    """Collect the JSON Schemas of the workers' config models for OpenAPI components."""
    schemas: dict[str, Any] = {}
    for item in workers:
        schema = item.config.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[item.config.__name__] = schema
    return schemas
