"""Exit codes of the `tasky` client commands, in one place.

Scripts branch on these numbers, so they never change meaning. `tasky serve`
uses 0 and 2 (usage) with the same meaning.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    """The command succeeded; for `submit --wait`, `--follow` and `result`: the task completed."""

    TASK_FAILED = 1
    """The task failed or timed out, or `--timeout` passed before it finished."""

    USAGE = 2
    """Invalid option, argument, config value or config file, or a config the worker rejected (HTTP 422)."""

    TASK_CANCELED = 3
    """The task was canceled."""

    SERVER_UNREACHABLE = 4
    """No response from the server: connection refused, timed out or name not resolved."""

    API_ERROR = 5
    """The server responded with an error: unknown worker or task, illegal action, 401/403, 5xx."""

    INTERRUPTED = 130
    """Ctrl-C; the task keeps running on the server."""


TASK_OUTCOMES = {
    "completed": ExitCode.OK,
    "failed": ExitCode.TASK_FAILED,
    "timed_out": ExitCode.TASK_FAILED,
    "canceled": ExitCode.TASK_CANCELED,
}

EXIT_CODES_HELP = (
    "Exit codes: 0 success (the task completed), 1 task failed or timed out, 2 usage error, "
    "3 task canceled, 4 server unreachable, 5 API error."
)
