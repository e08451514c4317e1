"""Shared frame of the client commands: options, client and exit code.

Every client command takes `--url`, `--token` and `--json`, builds one
`tasky.Client`, and lets `run_client_command` turn the client's errors into
one line on stderr and a named exit code.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Optional, ParamSpec, TypeVar

import typer

from tasky.cli.exit_codes import EXIT_CODES_HELP, ExitCode
from tasky.client import DEFAULT_URL, TOKEN_ENV, URL_ENV, ApiError, Client, ServerUnreachable, WaitTimeout

P = ParamSpec("P")
R = TypeVar("R")

UrlOption = Annotated[
    str, typer.Option("--url", envvar=URL_ENV, help="Root URL of the tasky server.", show_default=True)
]
TokenOption = Annotated[
    Optional[str],
    typer.Option("--token", envvar=TOKEN_ENV, help="API token, sent as 'Authorization: Bearer'.", show_default=False),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the server's JSON on stdout and nothing else, for scripts.")
]

ENVIRONMENT_HELP = (
    f"Environment: {URL_ENV} sets --url (default {DEFAULT_URL}); {TOKEN_ENV} sets --token."
)


class UsageError(Exception):
    """A command-line value is invalid. The message names the value and the fix."""


class CommandExit(Exception):
    """End a command with `code` after printing `message` on stderr (when there is one)."""

    def __init__(self, code: ExitCode, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def epilog(*examples: str) -> str:
    """Build a command's help epilog: examples, environment variables and exit codes."""
    lines = "\n\n".join(f"  {example}" for example in examples)
    return f"Examples:\n\n{lines}\n\n{ENVIRONMENT_HELP}\n\n{EXIT_CODES_HELP}"


def open_client(url: str, token: str | None) -> Client:
    return Client(url, token=token)


def run_client_command(command: Callable[P, R]) -> Callable[P, R]:
    """Map the errors of a client command to a message on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CommandExit as exc:
            if exc.message:
                fail_line(exc.message)
            raise typer.Exit(exc.code) from None
        except (UsageError, ServerUnreachable, WaitTimeout, ApiError) as exc:
            code, message = _exit_for(exc)
            fail_line(message)
            raise typer.Exit(code) from None
        except KeyboardInterrupt:
            fail_line("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    return run


def fail_line(message: str) -> None:
    """Print one `tasky: error:` line on stderr."""
    print(f"tasky: error: {message}", file=sys.stderr, flush=True)


def _exit_for(exc: Exception) -> tuple[ExitCode, str]:
    if isinstance(exc, ServerUnreachable):
        return ExitCode.SERVER_UNREACHABLE, (
            f"cannot reach the tasky server at {exc.url} ({exc.reason}); "
            f"start one with `tasky serve`, or point --url or {URL_ENV} at a running server"
        )
    if isinstance(exc, WaitTimeout):
        return ExitCode.TASK_FAILED, f"{exc.message}; check it later with: tasky status {exc.task_id}"
    if isinstance(exc, ApiError):
        return ExitCode.API_ERROR, _api_message(exc)
    return ExitCode.USAGE, str(exc)


def _api_message(exc: ApiError) -> str:
    hints = {
        "worker_not_found": "list the workers with: tasky workers",
        "task_not_found": "list recent tasks with: tasky tasks",
        "route_not_found": "this server may be an older tasky without this route",
    }
    auth = "pass a valid token with --token or TASKY_TOKEN" if exc.status in (401, 403) else None
    hint = hints.get(exc.code) or auth
    message = f"{exc.message} (HTTP {exc.status})"
    return f"{message}; {hint}" if hint else message
