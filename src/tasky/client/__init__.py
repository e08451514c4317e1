"""Python clients of the tasky REST API: `Client` (blocking) and `AsyncClient` (asyncio).

Both are built on httpx2, and share one definition of the routes
(`calls.py`) and one event-stream policy (`events.py`).
"""

from tasky.client.async_client import AsyncClient
from tasky.client.connection import DEFAULT_URL, TOKEN_ENV, URL_ENV
from tasky.client.errors import (
    ApiAuthError,
    ApiBadRequest,
    ApiBusy,
    ApiConflict,
    ApiError,
    ApiInvalidConfig,
    ApiNotFound,
    ApiServerError,
    ServerUnreachable,
    WaitTimeout,
)
from tasky.client.models import (
    LogLine,
    LogPage,
    TaskEvent,
    TaskInfo,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)
from tasky.client.sync_client import Client

__all__ = [
    "DEFAULT_URL",
    "TOKEN_ENV",
    "URL_ENV",
    "ApiAuthError",
    "ApiBadRequest",
    "ApiBusy",
    "ApiConflict",
    "ApiError",
    "ApiInvalidConfig",
    "ApiNotFound",
    "ApiServerError",
    "AsyncClient",
    "Client",
    "LogLine",
    "LogPage",
    "ServerUnreachable",
    "TaskEvent",
    "TaskInfo",
    "TaskPage",
    "TaskResult",
    "TaskStatus",
    "WaitTimeout",
    "WorkerInfo",
]
