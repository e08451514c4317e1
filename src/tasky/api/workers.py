"""Routes about workers: list, info, and task creation (`POST /workers/{name}`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from tasky.actions import etag
from tasky.api.body import read_json_body
from tasky.api.params import reject_unknown_params
from tasky.api.serialize import API_PREFIX, JSON, task_json, task_path
from tasky.app import Tasky
from tasky.errors import BadRequest, InvalidConfig
from tasky.worker import Worker

MAX_TIMEOUT_S = 30 * 86_400.0
MAX_IDEMPOTENCY_KEY_CHARS = 200
CREATE_PARAMS = ("hold", "timeout", "callback_url")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class WorkerAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["enable", "disable"]
    reason: str | None = Field(None, max_length=500)

TASK_CREATED = {201: {"description": "The task is stored as queued; `Location` names it."}}


def build_worker_router(tasky: Tasky) -> tuple[APIRouter, Route]:
    """Build the worker routes, and the plain route that serves task creation.

    Task creation is the hot path: a plain Starlette route skips FastAPI's
    dependency solving, which took a large share of the event loop in the
    submit profile. The FastAPI routes below stay for the OpenAPI document
    (and answer the same way if reached), but the plain route, placed
    first, serves every creation.
    """
    router = APIRouter(tags=["workers"])

    @router.get("/workers", summary="List workers with their config schemas")
    async def list_workers() -> JSON:
        return JSON({"workers": [tasky.worker_info(item) for item in tasky.registry]})

    @router.get("/workers/{name}/info", summary="Describe one worker: usage, config schema, limits")
    async def worker_info(name: str) -> JSON:
        return JSON(tasky.worker_info(tasky.worker(name)))

    @router.post("/workers/{name}/actions", summary="Enable or disable a worker (persisted)")
    async def worker_action(name: str, request: Request) -> JSON:
        raw = await read_json_body(request, tasky.max_body_bytes)
        try:
            body = WorkerAction.model_validate(raw)
        except ValidationError:
            raise InvalidConfig(
                'the body must be {"action": "enable" | "disable", "reason": optional text}',
                detail=[{"field": "action", "message": "expected enable or disable"}],
                code="invalid_action",
            ) from None
        return JSON(await tasky.set_worker_enabled(name, body.action == "enable", body.reason))

    async def create(
        name: str,
        request: Request,
        hold: bool = False,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> JSON:
        reject_unknown_params(request, CREATE_PARAMS)
        raw = await read_json_body(request, tasky.max_body_bytes)
        task, created = await tasky.create_task(
            name, {} if raw is None else raw, hold=hold, timeout_s=timeout, idempotency_key=idempotency_key,
            callback_url=callback_url,
        )
        headers = {"Location": task_path(task.id), "ETag": etag(task)}
        return JSON(task_json(task), status_code=201 if created else 200, headers=headers)

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
    async def create_task(
        name: str,
        request: Request,
        hold: HoldQuery = False,
        timeout: TimeoutQuery = None,
        idempotency_key: IdempotencyHeader = None,
        callback_url: CallbackQuery = None,
    ) -> JSON:
        return await create(name, request, hold, timeout, idempotency_key, callback_url)

    async def create_fast(request: Request) -> JSON:
        hold, timeout, key, callback_url = _parse_create_options(request)
        return await create(request.path_params["name"], request, hold, timeout, key, callback_url)

    return router, _NamedRoute(f"{API_PREFIX}/workers/{{name}}", create_fast, methods=["POST"], include_in_schema=False)


class _NamedRoute(Route):
    """A Starlette route that records itself in the scope, as FastAPI routes do, for the metrics labels."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def _parse_create_options(request: Request) -> tuple[bool, float | None, str | None, str | None]:
    """Read `hold`, `timeout`, `callback_url` and `Idempotency-Key` with the rules of the documented route."""
    key = request.headers.get("idempotency-key")
    if not request.scope["query_string"] and key is None:
        return False, None, None, None  # the common case, without parsing a query string
    reject_unknown_params(request, CREATE_PARAMS)
    query = request.query_params
    hold = _parse_bool(query.get("hold", "false"))
    timeout = _parse_timeout(query.get("timeout"))
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise _invalid_parameter(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, got {len(key)}")
    return hold, timeout, key, query.get("callback_url")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise _invalid_parameter(f"invalid hold value {text!r}; use true or false")


def _parse_timeout(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _invalid_parameter(f"invalid timeout {text!r}; give a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT_S:
        raise _invalid_parameter(f"timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {text}")
    return value


def _invalid_parameter(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_parameter")


HoldQuery = Annotated[bool, Query(description="Create the task `held`: it waits until the `run` action.")]
TimeoutQuery = Annotated[
    float | None, Query(gt=0, le=MAX_TIMEOUT_S, description="Run-time limit in seconds, overriding the worker's.")
]
IdempotencyHeader = Annotated[
    str | None,
    Header(min_length=1, max_length=200, description="Repeat a creation safely: the same key and body return the first task."),
]
CallbackQuery = Annotated[
    str | None,
    Query(description="URL that receives the task's final status as a signed POST; its host must be allowed by the operator."),
]


def _fixed_name_endpoint(create: Any, name: str) -> Any:
    async def endpoint(
        request: Request,
        hold: HoldQuery = False,
        timeout: TimeoutQuery = None,
        idempotency_key: IdempotencyHeader = None,
        callback_url: CallbackQuery = None,
    ) -> JSON:
        return await create(name, request, hold, timeout, idempotency_key, callback_url)

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
