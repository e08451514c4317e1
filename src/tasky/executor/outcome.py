"""Turning what `perform` did (a value or an exception) into a final state."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from tasky.errors import TaskCanceled
from tasky.task import TaskError, TaskState


@dataclass(frozen=True)
class Outcome:
    state: TaskState
    result: Any = None
    error: TaskError | None = None


def outcome_of_result(value: Any) -> Outcome:
    """Build the outcome of a `perform` that returned; a result that is not JSON fails the task."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        value = orjson.loads(orjson.dumps(value))
    except TypeError as exc:
        error = TaskError(
            type="ResultNotJSON",
            message=f"perform returned a value that is not JSON-serialisable ({exc}); return dicts, lists, strings or numbers",
        )
        return Outcome(TaskState.FAILED, error=error)
    return Outcome(TaskState.COMPLETED, result=value)


def outcome_of_exception(exc: BaseException, cancel_requested: bool) -> Outcome:
    """Build the outcome of a `perform` that raised.

    After a cancel request any exception counts as the cancel taking
    effect: work interrupted by a cancel often fails in its own way (a
    killed subprocess, a closed file) rather than raising `TaskCanceled`.
    """
    if isinstance(exc, TaskCanceled) or cancel_requested:
        return Outcome(TaskState.CANCELED)
    error = TaskError(
        type=type(exc).__qualname__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )
    return Outcome(TaskState.FAILED, error=error)
