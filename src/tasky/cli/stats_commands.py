"""`tasky stats`: statistics of the server, of one worker or of one task."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tasky.cli.invocation import JsonOption, TokenOption, UrlOption, epilog, open_client, run_client_command
from tasky.cli.render import print_json, show_key_values
from tasky.client import DEFAULT_URL


def register(app: typer.Typer) -> None:
    app.command(
        "stats", epilog=epilog("tasky stats", "tasky stats sleeper", "tasky stats --task TASK_ID", "tasky stats sleeper --json")
    )(stats)


@run_client_command
def stats(
    worker: Annotated[Optional[str], typer.Argument(metavar="WORKER", help="Show the statistics of this worker only.")] = None,
    task: Annotated[Optional[str], typer.Option("--task", metavar="TASK_ID", help="Show the statistics of this task.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show counts by state, failure rate and durations, as a key/value table."""
    with open_client(url, token) as client:
        if task:
            found = client.task_statistics(task)
        elif worker:
            found = client.worker_statistics(worker)
        else:
            found = client.statistics()
    if as_json:
        print_json(found)
    else:
        show_key_values(found)
