"""Checks on query parameters that FastAPI leaves to the route."""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request

from tasky.errors import BadRequest


def reject_unknown_params(request: Request, allowed: Collection[str]) -> None:
    """Raise 400 for a query parameter the route does not take, so a typo is not silently ignored."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown query parameter {', '.join(map(repr, unknown))}; this route takes: {', '.join(sorted(allowed)) or 'none'}",
            code="invalid_parameter",
            detail={"unknown": unknown, "allowed": sorted(allowed)},
        )
