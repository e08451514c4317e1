"""Routes for tokens, stream tickets and the audit log.

Token routes and the audit log need the admin role; a stream ticket
needs the role of the stream it opens. The role checks themselves are
made by `AuthMiddleware` from the table in `tasky.auth.policy`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasky.api.auth import ANONYMOUS, Authenticator
from tasky.api.body import read_json_body
from tasky.api.serialize import API_PREFIX, JSON
from tasky.api.tasks import _decode_cursor, _encode_cursor
from tasky.audit import AuditFilter
from tasky.auth.roles import Role
from tasky.auth.store import TokenNotFound
from tasky.auth.tokens import Principal, Token
from tasky.errors import InvalidConfig

MAX_PAGE = 1000


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Unique name of the token.")
    role: Literal["read", "operate", "admin"] = Field(..., description="read: GET routes; operate: tasks; admin: everything.")


class TicketRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        ...,
        min_length=1,
        max_length=2048,
        description="Path of the event stream to open, such as /tasky/v1/tasks/ID/events.",
    )


def build_admin_router(auth: Authenticator) -> APIRouter:
    router = APIRouter()
    max_body = auth.tasky.max_body_bytes

    @router.get("/tokens", tags=["auth"], summary="List API tokens (never their secrets)")
    async def list_tokens() -> JSON:
        return JSON({"tokens": [token_json(token) for token in await auth.store.list_tokens()]})

    @router.post(
        "/tokens",
        tags=["auth"],
        status_code=201,
        summary="Create an API token; the response is the only time its secret is shown",
        openapi_extra=_body_doc(TokenRequest),
    )
    async def create_token(request: Request) -> JSON:
        body = _parse(TokenRequest, await read_json_body(request, max_body))
        token, secret = await auth.store.create_token(body.name, Role(body.role))
        auth.tokens.invalidate()
        return JSON({**token_json(token), "token": secret}, status_code=201, headers={"Location": f"{API_PREFIX}/tokens/{token.name}"})

    @router.get("/tokens/{name}", tags=["auth"], summary="Describe one API token")
    async def get_token(name: str) -> JSON:
        tokens = [token for token in await auth.store.list_tokens() if token.name == name]
        if not tokens:
            raise TokenNotFound(f"no token named {name!r}; list the tokens at {API_PREFIX}/tokens", detail={"name": name})
        active = [token for token in tokens if token.active]
        return JSON(token_json(active[0] if active else tokens[-1]))

    @router.delete("/tokens/{name}", tags=["auth"], summary="Revoke an API token; it stops working within seconds")
    async def revoke_token(name: str) -> JSON:
        token = await auth.store.revoke_token(name)
        auth.tokens.invalidate()
        return JSON(token_json(token))

    @router.post(
        "/auth/tickets",
        tags=["auth"],
        status_code=201,
        summary="Get a short-lived ticket that opens one event stream (for browsers' EventSource)",
        openapi_extra=_body_doc(TicketRequest),
    )
    async def create_ticket(request: Request) -> JSON:
        body = _parse(TicketRequest, await read_json_body(request, max_body))
        principal: Principal = request.scope.get("tasky.principal", ANONYMOUS)
        path = _stream_path(auth, body.path, principal)
        ticket, expires_at = await auth.issue_ticket(principal, path)
        return JSON(
            {"ticket": ticket, "path": path, "expires_at": expires_at, "url": f"{path}?ticket={ticket}"},
            status_code=201,
        )

    @router.get("/audit", tags=["auth"], summary="Read the audit log, newest first, with filters and a cursor")
    async def list_audit(
        token: Annotated[str | None, Query(description="Only entries of this token name.")] = None,
        action: Annotated[str | None, Query(description="Only this action, such as task.create or token.revoke.")] = None,
        task_id: Annotated[str | None, Query(description="Only entries about this task.")] = None,
        worker: Annotated[str | None, Query(description="Only entries about this worker.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")] = 100,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    ) -> JSON:
        filters = AuditFilter(token=token, action=action, task_id=task_id, worker=worker)
        entries, next_id = await auth.store.list_audit(filters, limit=limit, before_id=_decode_cursor(cursor))
        next_cursor = _encode_cursor(next_id) if next_id is not None else None
        return JSON({"entries": [entry.to_json() for entry in entries], "next_cursor": next_cursor})

    return router


def token_json(token: Token) -> dict[str, Any]:
    return {
        "name": token.name,
        "role": token.role.value,
        "created_at": token.created_at.isoformat().replace("+00:00", "Z"),
        "revoked_at": token.revoked_at.isoformat().replace("+00:00", "Z") if token.revoked_at else None,
        "active": token.active,
    }


def _stream_path(auth: Authenticator, path: str, principal: Principal) -> str:
    path = path.split("?", 1)[0].rstrip("/") or "/"
    route = auth.table.match("GET", path)
    if not route.policy.stream:
        raise InvalidConfig(
            f"{path!r} is not an event stream; a ticket opens only a stream path such as {API_PREFIX}/tasks/ID/events",
            detail=[{"field": "path", "message": "not an event stream path"}],
        )
    if route.policy.role is not None and not principal.role.allows(route.policy.role):
        raise InvalidConfig(f"the role {principal.role.value} cannot open {path}", detail=[{"field": "path", "message": "role too weak"}])
    return path


def _parse(model: type[BaseModel], raw: object) -> Any:
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(part) for part in err["loc"]) or "(body)", "message": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        names = ", ".join(field["field"] for field in fields)
        raise InvalidConfig(f"invalid request body: check {names}", detail=fields) from None


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
