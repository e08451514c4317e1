"""Watch a task to its end: the live progress bar, streamed log lines and the outcome.

`submit --wait` draws a rich progress bar fed by the task's events, or by
polling its status on a server without an event stream. `--follow` prints
the task's log lines as they arrive. `report_outcome` prints how the task
ended and returns the exit code for that outcome.
"""

from __future__ import annotations

import sys
from types import TracebackType

import orjson
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

from tasky.cli.exit_codes import TASK_OUTCOMES, ExitCode
from tasky.cli.invocation import fail_line
from tasky.cli.render import as_json_data, format_seconds, print_json, say, stdout_console
from tasky.client import Client, TaskEvent, TaskInfo, TaskResult


def watch_task(client: Client, task: TaskInfo, *, bar: bool, logs: bool, as_json: bool, timeout_s: float | None) -> TaskInfo:
    """Follow `task` until it finishes and return it as it ended."""
    events = client.events(task.id, timeout_s=timeout_s)
    if as_json:
        for event in events:
            if logs:
                _print_json_line(event)
    elif bar:
        with ProgressBar(task) as progress_bar:
            for event in events:
                progress_bar.show(event, logs=logs)
    else:
        for event in events:
            if event.kind == "log" and event.line is not None:
                say(event.line)
    return client.task(task.id)


def report_outcome(task: TaskInfo | TaskResult, *, as_json: bool, traceback: bool = False) -> ExitCode:
    """Print how a finished task ended and return the exit code for it.

    The result goes to stdout; a failure or cancel is one line on stderr,
    followed by the traceback when `traceback` is set.
    """
    code = TASK_OUTCOMES.get(task.state.value, ExitCode.OK)
    if as_json:
        print_json(task)
        return code
    state = task.state.value
    if state == "completed":
        took = f" in {format_seconds(task.run_time_s)}" if isinstance(task, TaskInfo) else ""
        say(f"task {task.id} completed{took}")
        if task.result is not None:
            stdout_console().print_json(data=as_json_data(task.result))
    elif state == "canceled":
        fail_line(f"task {task.id} was canceled")
    else:
        reason = f": {task.error.type}: {task.error.message}" if task.error else ""
        hint = f"see its logs with: tasky logs {task.id}" if traceback else f"see the traceback with: tasky result {task.id}"
        fail_line(f"task {task.id} {state.replace('_', ' ')}{reason}; {hint}")
        if traceback and task.error and task.error.traceback:
            print(task.error.traceback.rstrip(), file=sys.stderr, flush=True)
    return code


class ProgressBar:
    """A rich progress bar for one task, fed with its events."""

    def __init__(self, task: TaskInfo) -> None:
        self._worker = task.worker
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[message]}"),
            TimeElapsedColumn(),
            console=stdout_console(),
        )
        self._bar = self._progress.add_task(self._label(task.state.value), total=None, message="")

    def show(self, event: TaskEvent, *, logs: bool) -> None:
        if event.kind == "progress":
            total = event.total if event.total else None
            self._progress.update(self._bar, completed=event.done or 0, total=total, message=escape(event.message or ""))
        elif event.kind == "state" and event.state:
            self._progress.update(self._bar, description=self._label(event.state))
        elif event.kind == "log" and logs and event.line is not None:
            self._progress.console.print(escape(event.line), highlight=False)

    def _label(self, state: str) -> str:
        return escape(f"{self._worker} {state}")

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()


def _print_json_line(event: TaskEvent) -> None:
    sys.stdout.write(orjson.dumps(as_json_data(event)).decode() + "\n")
    sys.stdout.flush()
