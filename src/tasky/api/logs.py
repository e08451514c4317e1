"""Routes of what a task left behind besides its result: its log and its webhook deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from tasky.api.params import reject_unknown_params
from tasky.api.serialize import JSON, iso_time
from tasky.app import Tasky

MAX_LOG_PAGE = 10_000


def build_log_router(tasky: Tasky) -> APIRouter:
    router = APIRouter(tags=["tasks"])

    @router.get("/tasks/{task_id}/logs", summary="Page through a task's log lines")
    async def task_logs(
        task_id: str,
        request: Request,
        after: Annotated[int, Query(ge=0, le=2**63 - 1, description="Return lines with seq greater than this; 0 starts at the first line.")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE, description="Lines per page.")] = 1000,
    ) -> JSON:
        reject_unknown_params(request, ("after", "limit"))
        task = await tasky.get_task(task_id)
        page = await tasky.store.logs(task_id, after_seq=after, limit=limit)
        return JSON(
            {
                "task_id": task.id,
                "lines": [{"seq": line.seq, "at": iso_time(line.at), "line": line.line} for line in page.lines],
                "next_after": page.lines[-1].seq if page.has_more else None,
                "stored_lines": task.log_lines,
                "truncated": task.log_dropped > 0,
                "dropped_lines": task.log_dropped,
                "max_lines": tasky.observability.sink.limits.max_lines,
            }
        )

    @router.get("/tasks/{task_id}/callback", summary="Webhook deliveries of a task and each of their attempts")
    async def task_callback(task_id: str) -> JSON:
        task = await tasky.get_task(task_id)
        deliveries = []
        for delivery, attempts in await tasky.store.callbacks(task_id):
            deliveries.append(
                {
                    "task_attempt": delivery.task_attempt,
                    "url": delivery.url,
                    "state": delivery.state,
                    "attempts": delivery.attempts,
                    "next_attempt_at": iso_time(delivery.next_at) if delivery.state == "pending" else None,
                    "history": [
                        {
                            "number": attempt.number,
                            "at": iso_time(attempt.at),
                            "duration_s": attempt.duration_s,
                            "status_code": attempt.status_code,
                            "error": attempt.error,
                        }
                        for attempt in attempts
                    ],
                }
            )
        return JSON({"task_id": task.id, "callback_url": task.callback_url, "deliveries": deliveries})

    return router
