"""Output of the client commands: rich tables for people, plain JSON for scripts.

Tables and messages go to stdout through rich, which drops colours when
stdout is not a terminal. `print_json` writes the JSON alone, so
`tasky ... --json | jq` always gets one valid document.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tasky.client import TaskInfo, TaskStatus, WorkerInfo
from tasky.client.models import Progress


# Width for output that goes to a pipe or file: wide enough that a table of
# task ids does not wrap, since a script or pager reads it and not a window.
PIPE_WIDTH = 200


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def print_json(data: Any) -> None:
    """Write `data` (models included) as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(as_json_data(data), option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def as_json_data(value: Any) -> Any:
    """Convert a client model, or a list or dict of them, into JSON-ready data.

    Fields the server did not send stay out, so the output is the server's JSON.
    """
    if isinstance(value, list):
        return [as_json_data(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json_data(item) for key, item in value.items()}
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", exclude_unset=True) if dump is not None else value


def say(message: str) -> None:
    """Print one plain line for people on stdout (rich markup is not interpreted)."""
    stdout_console().print(escape(message), soft_wrap=True)


def show_table(
    columns: Iterable[str], rows: Iterable[Iterable[Any]], title: str | None = None, header: bool = True
) -> None:
    cells = [[escape(_cell(value)) for value in row] for row in rows]
    names = list(columns)
    # Only the last column (a description, message or value) wraps. The first
    # column is an id or a key that people copy, so it also keeps its full width.
    first_width = max((len(row[0]) for row in cells), default=0)
    table = Table(title=title, header_style="bold", box=None, pad_edge=False, show_header=header)
    table.add_column(names[0], no_wrap=True, min_width=max(first_width, len(names[0])))
    for name in names[1:-1]:
        table.add_column(name, no_wrap=True)
    if len(names) > 1:
        table.add_column(names[-1])
    for row in cells:
        table.add_row(*row)
    stdout_console().print(table)


def show_key_values(values: Mapping[str, Any], title: str | None = None) -> None:
    """Print a mapping as a two-column table; nested mappings become dotted keys."""
    show_table(["KEY", "VALUE"], flatten(values).items(), title=title, header=False)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def show_tasks(tasks: list[TaskInfo]) -> None:
    rows = [
        (task.id, task.worker, task.state.value, format_time(task.created_at), format_seconds(task.run_time_s), format_progress(task.progress))
        for task in tasks
    ]
    show_table(["ID", "WORKER", "STATE", "CREATED", "RUN TIME", "PROGRESS"], rows)


def show_status(status: TaskStatus) -> None:
    values = {
        "id": status.id,
        "worker": status.worker,
        "state": status.state.value,
        "attempt": status.attempt,
        "created": format_time(status.created_at),
        "started": format_time(status.started_at),
        "finished": format_time(status.finished_at),
        "wait time": format_seconds(status.wait_time_s),
        "run time": format_seconds(status.run_time_s),
        "progress": format_progress(status.progress),
        "cancel requested": "yes" if status.cancel_requested else "no",
    }
    show_key_values(values)


def show_workers(workers: list[WorkerInfo]) -> None:
    rows = [
        (item.name, item.status, item.limits.max_tasks if item.limits else "", item.description.partition("\n")[0])
        for item in workers
    ]
    show_table(["NAME", "STATUS", "MAX TASKS", "DESCRIPTION"], rows)


def format_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_progress(progress: Progress) -> str:
    parts = []
    if progress.percent is not None:
        parts.append(f"{progress.percent:g}%")
    if progress.message:
        parts.append(progress.message)
    return " ".join(parts) or "-"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)
