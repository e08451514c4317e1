"""Routes about tasks: list, read, status, result and actions."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from tasky.actions import ACTIONS, ActionResult, etag
from tasky.api.body import read_json_body
from tasky.api.params import reject_unknown_params
from tasky.api.serialize import JSON, attempt_json, result_json, status_json, task_json, task_path
from tasky.app import Tasky
from tasky.errors import BadRequest, IllegalTransition, InvalidConfig
from tasky.store import TaskFilter
from tasky.task import TaskState

MAX_PAGE = 1000
MAX_RESULT_WAIT_S = 60.0
LIST_PARAMS = ("state", "worker", "created_after", "created_before", "limit", "cursor")


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["cancel", "pause", "resume", "run", "restart"]


def build_task_router(tasky: Tasky) -> APIRouter:
    router = APIRouter(tags=["tasks"])

    @router.get("/tasks", summary="List tasks, newest first, with filters and a cursor")
    async def list_tasks(
        request: Request,
        state: Annotated[list[str] | None, Query(description="Filter by state; repeat or separate with commas.")] = None,
        worker: Annotated[str | None, Query(description="Filter by worker name.")] = None,
        created_after: Annotated[datetime | None, Query(description="ISO-8601 time, inclusive.")] = None,
        created_before: Annotated[datetime | None, Query(description="ISO-8601 time, exclusive.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Tasks per page.")] = 50,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    ) -> JSON:
        reject_unknown_params(request, LIST_PARAMS)
        filters = TaskFilter(
            states=_parse_states(state or []),
            worker=worker,
            created_after=created_after,
            created_before=created_before,
        )
        page = await tasky.store.list_tasks(filters, limit=limit, before_seq=_decode_cursor(cursor))
        next_cursor = _encode_cursor(page.next_before_seq) if page.next_before_seq is not None else None
        return JSON({"tasks": [task_json(task) for task in page.tasks], "next_cursor": next_cursor})

    @router.get("/tasks/{task_id}", summary="Everything about one task")
    async def get_task(task_id: str) -> JSON:
        task = await tasky.get_task(task_id)
        return JSON(task_json(task), headers={"ETag": etag(task)})

    @router.put("/tasks/{task_id}", summary="Replace the config of a queued or held task")
    async def edit_task(
        task_id: str,
        request: Request,
        if_match: Annotated[str | None, Header(description="ETag from an earlier read; 412 if the task changed since.")] = None,
    ) -> JSON:
        raw = await read_json_body(request, tasky.max_body_bytes)
        task = await tasky.edit(task_id, {} if raw is None else raw, if_match)
        return JSON(task_json(task), headers={"ETag": etag(task)})

    @router.get("/tasks/{task_id}/attempts", summary="Finished attempts with their times and errors")
    async def get_attempts(task_id: str) -> JSON:
        task = await tasky.get_task(task_id)
        attempts = await tasky.store.attempts(task_id)
        return JSON({"id": task.id, "attempt": task.attempt, "attempts": [attempt_json(item) for item in attempts]})

    @router.get("/tasks/{task_id}/status", summary="State, timestamps, durations and progress")
    async def get_status(task_id: str) -> JSON:
        return JSON(status_json(await tasky.get_task(task_id)))

    @router.get("/tasks/{task_id}/result", summary="Result or error of a finished task")
    async def get_result(
        task_id: str,
        wait: Annotated[
            float, Query(ge=0, le=MAX_RESULT_WAIT_S, description="Seconds to wait for the task to finish before responding with 409.")
        ] = 0.0,
    ) -> JSON:
        task = await tasky.get_task(task_id)
        if not task.state.is_terminal and wait > 0:
            task = await tasky.wait_finished(task_id, wait)
        if not task.state.is_terminal:
            raise IllegalTransition(
                f"task {task_id} is {task.state.value} and has no result yet; retry with ?wait=SECONDS to wait for it",
                state=task.state.value,
                detail={"id": task_id},
            )
        return JSON(result_json(task))

    @router.post("/tasks/{task_id}/actions", summary="Cancel, pause, resume, run or restart a task")
    async def act(task_id: str, request: Request) -> JSON:
        action = _parse_action(await read_json_body(request, tasky.max_body_bytes))
        return _action_response(await tasky.act(task_id, action))

    for action in ACTIONS:
        router.add_api_route(
            f"/tasks/{{task_id}}/{action}",
            _shortcut(tasky, action),
            methods=["POST"],
            summary=f"{action.capitalize()} a task (same as POST /actions with this action)",
            operation_id=f"{action}_task",
        )

    return router


def _shortcut(tasky: Tasky, action: str):  # type: ignore[no-untyped-def]
    async def endpoint(task_id: str) -> JSON:
        return _action_response(await tasky.act(task_id, action))

    return endpoint


def _action_response(outcome: ActionResult) -> JSON:
    if outcome.created:
        return JSON(task_json(outcome.task), status_code=201, headers={"Location": task_path(outcome.task.id)})
    # 202: the request is stored and delivered, but the task has not stopped yet.
    return JSON(task_json(outcome.task), status_code=200 if outcome.completed else 202)


def _parse_action(raw: object) -> str:
    try:
        return ActionRequest.model_validate(raw).action
    except ValidationError:
        choices = " | ".join(f'"{name}"' for name in ACTIONS)
        raise InvalidConfig(
            f'the body must be {{"action": {choices}}}',
            detail=[{"field": "action", "message": f"expected one of {', '.join(ACTIONS)}"}],
            code="invalid_action",
        ) from None


def _parse_states(values: list[str]) -> tuple[TaskState, ...]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    try:
        return tuple(TaskState(name) for name in names)
    except ValueError:
        valid = ", ".join(state.value for state in TaskState)
        raise BadRequest(f"invalid state filter {values!r}; use one or more of: {valid}", code="invalid_parameter") from None


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": seq})).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        seq = decoded["before"]
        if not isinstance(seq, int):
            raise TypeError(seq)
        return seq
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise BadRequest(
            f"invalid cursor {cursor!r}; pass the next_cursor value of the previous page unchanged",
            code="invalid_parameter",
        ) from None
