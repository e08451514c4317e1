"""Client commands about tasks: list, status, result, logs and the actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Optional

import typer

from tasky.cli.follow import report_outcome
from tasky.cli.invocation import JsonOption, TokenOption, UrlOption, epilog, open_client, run_client_command
from tasky.cli.render import print_json, say, show_status, show_tasks
from tasky.client import DEFAULT_URL, Client, LogLine, LogPage, TaskInfo

MAX_PAGE = 1000  # the server's largest page of tasks

TaskId = Annotated[str, typer.Argument(metavar="TASK_ID", help="Id of the task, as `tasky tasks` or `tasky submit` print it.")]


def register(app: typer.Typer) -> None:
    app.command(
        "tasks",
        epilog=epilog("tasky tasks", "tasky tasks --state running,paused --worker sleeper", "tasky tasks --limit 5 --json"),
    )(tasks)
    app.command("status", epilog=epilog("tasky status TASK_ID", "tasky status TASK_ID --json"))(status)
    app.command("result", epilog=epilog("tasky result TASK_ID", "tasky result TASK_ID --json"))(result)
    app.command("logs", epilog=epilog("tasky logs TASK_ID", "tasky logs TASK_ID --json"))(logs)
    for name, summary in ACTIONS.items():
        app.command(name, help=summary, epilog=epilog(f"tasky {name} TASK_ID", f"tasky {name} TASK_ID --json"))(
            _action_command(name)
        )


@run_client_command
def tasks(
    state: Annotated[
        Optional[str], typer.Option("--state", help="Only tasks in these states, comma-separated: queued, running, paused, completed, failed, canceled, timed_out.")
    ] = None,
    worker: Annotated[Optional[str], typer.Option("--worker", help="Only tasks of this worker.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_PAGE, help="Show at most this many tasks, newest first.")] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List tasks, newest first."""
    states = [name.strip() for name in state.split(",") if name.strip()] if state else None
    with open_client(url, token) as client:
        page = client.tasks(state=states, worker=worker, limit=limit)
    if as_json:
        print_json(page)
    elif page.tasks:
        show_tasks(page.tasks)
    else:
        say("no tasks match")


@run_client_command
def status(task_id: TaskId, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Show the state, times and progress of a task."""
    with open_client(url, token) as client:
        found = client.status(task_id)
    if as_json:
        print_json(found)
    else:
        show_status(found)


@run_client_command
def result(task_id: TaskId, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Show the result or error of a finished task.

    The exit code reports how it ended: 0 completed, 1 failed or timed out, 3 canceled.
    """
    with open_client(url, token) as client:
        found = client.result(task_id)
    code = report_outcome(found, as_json=as_json, traceback=True)
    if code:
        raise typer.Exit(code)


@run_client_command
def logs(task_id: TaskId, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Print the log lines of a task, oldest first."""
    with open_client(url, token) as client:
        lines = _all_log_lines(client, task_id)
    if as_json:
        print_json(LogPage(lines=lines, next_after=None))
        return
    for line in lines:
        say(line.line)


ACTIONS = {
    "cancel": "Cancel a queued, running or paused task.",
    "pause": "Pause a running task at its next checkpoint.",
    "resume": "Resume a paused task.",
    "restart": "Start a new task with the worker and config of a finished one.",
}


def _action_command(action: str) -> Callable[..., None]:
    @run_client_command
    def act(task_id: TaskId, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False) -> None:
        with open_client(url, token) as client:
            task = client.action(task_id, action)  # type: ignore[arg-type]
        if as_json:
            print_json(task)
        else:
            say(_action_message(action, task_id, task))

    act.__name__ = action
    return act


def _action_message(action: str, task_id: str, task: TaskInfo) -> str:
    if action == "restart":
        return f"restarted task {task_id} as {task.id} ({task.state.value})"
    if action == "cancel" and task.state.value != "canceled":
        return f"cancel requested: task {task.id} is {task.state.value} and stops at its next checkpoint"
    return f"task {task.id} is {task.state.value}"


def _all_log_lines(client: Client, task_id: str) -> list[LogLine]:
    lines: list[LogLine] = []
    after: int | None = None
    while True:
        page = client.logs(task_id, after=after)
        lines.extend(page.lines)
        if page.next_after is None or not page.lines:
            return lines
        after = page.next_after
