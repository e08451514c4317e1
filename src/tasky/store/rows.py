"""Conversion of stored rows (SQLite or PostgreSQL) into `Task` and `Event` objects."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from tasky.store.base import Event
from tasky.task import Progress, Task, TaskError, TaskState


def to_datetime(value: float | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=timezone.utc)


def task_from_row(row: Mapping[str, Any]) -> Task:
    error = row["error"]
    result = row["result"]
    return Task.model_construct(
        id=row["id"],
        seq=row["seq"],
        worker=row["worker"],
        state=TaskState(row["state"]),
        config=orjson.loads(row["config"]),
        attempt=row["attempt"],
        created_at=to_datetime(row["created_at"]),
        started_at=to_datetime(row["started_at"]),
        finished_at=to_datetime(row["finished_at"]),
        paused_at=to_datetime(row["paused_at"]),
        paused_total_s=row["paused_total_s"],
        progress=Progress.model_construct(
            done=row["progress_done"],
            total=row["progress_total"],
            message=row["progress_message"],
            updated_at=to_datetime(row["progress_at"]),
        ),
        result=orjson.loads(result) if result is not None else None,
        error=TaskError.model_validate_json(error) if error is not None else None,
        cancel_requested=bool(row["cancel_requested"]),
        node=row["node"],
        updated_at=to_datetime(row["updated_at"]),
        callback_url=row["callback_url"],
        log_lines=row["log_lines"],
        log_dropped=row["log_dropped"],
        run_after=to_datetime(row["run_after"]),
        timeout_s=row["timeout_s"],
        restart_of=row["restart_of"],
        restarted_as=row["restarted_as"],
        config_version=row["config_version"],
    )


def event_from_row(row: Mapping[str, Any]) -> Event:
    return Event(
        id=row["id"],
        task_id=row["task_id"],
        worker=row["worker"],
        at=to_datetime(row["at"]),  # type: ignore[arg-type]
        kind=row["kind"],
        data=orjson.loads(row["data"]),
    )
