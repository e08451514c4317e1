"""The `tasky` command: `tasky serve` and the client commands."""

from __future__ import annotations

import typer

from tasky.cli import stats_commands, task_commands, worker_commands
from tasky.cli.exit_codes import EXIT_CODES_HELP
from tasky.cli.invocation import ENVIRONMENT_HELP
from tasky.cli.serve import serve

app = typer.Typer(
    name="tasky",
    help="Run named, typed jobs on a server and steer them over a REST API.",
    epilog=f"{ENVIRONMENT_HELP}\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(
    epilog="Examples:\n\n  tasky serve\n\n  tasky serve --copy-root /srv/data --store /var/lib/tasky/tasky.db\n\n"
    "  tasky serve --workers mypkg.jobs --examples",
)(serve)


for _commands in (worker_commands, task_commands, stats_commands):
    _commands.register(app)


@app.callback()
def _root() -> None:
    """Run named, typed jobs on a server and steer them over a REST API."""


def main() -> None:
    app()
