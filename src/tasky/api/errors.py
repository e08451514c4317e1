"""Exception handlers that give every error response one JSON shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from tasky.api.serialize import JSON
from tasky.errors import TaskyError

logger = logging.getLogger(__name__)

HTTP_CODES = {
    404: ("route_not_found", "no route {method} {path}; the API is described at /docs"),
    405: ("method_not_allowed", "method {method} is not allowed on {path}; see /docs for the methods of each route"),
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TaskyError, _tasky_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _tasky_error(request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, TaskyError)
    status = exc.status if 400 <= exc.status < 600 else 500
    headers = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSON(exc.to_body(), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSON:
    # Bodies are parsed by tasky itself, so what FastAPI validates here are
    # path and query parameters: a malformed request, hence 400.
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    reasons = ", ".join(f"{field['field']} ({field['message']})" for field in fields)
    message = f"invalid request parameter {reasons}. Give a valid value: /docs lists each route's parameters"
    return JSON(error_body("invalid_parameter", message, fields), status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSON:
    assert isinstance(exc, HTTPException)
    code, template = HTTP_CODES.get(exc.status_code, ("http_error", "{detail}"))
    message = template.format(method=request.method, path=request.url.path, detail=exc.detail)
    return JSON(error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSON:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSON(
        error_body("internal_error", "the server failed to handle this request; the server log has the details"),
        status_code=500,
    )
