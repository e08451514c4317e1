"""Running a command for a task: its process group follows the task's controls.

The command starts in a new session, so it and every process it forks share
one process group. Cancel sends the group SIGTERM, then SIGKILL after the
worker's grace period; pause and resume send SIGSTOP and SIGCONT. When the
command ends, whatever is left of its group is killed, so no child outlives
the call.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from tasky.context import signal_group
from tasky.errors import TaskCanceled, TaskyError

if TYPE_CHECKING:
    from tasky.context import TaskContext

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.1


class CommandFailed(TaskyError):
    """The command exited with a non-zero status and `check` was set."""

    code = "command_failed"

    def __init__(self, argv: Sequence[str], returncode: int) -> None:
        super().__init__(
            f"command {argv[0]!r} exited with status {returncode}; its output is in the task's log",
            detail={"argv": list(argv), "returncode": returncode},
        )
        self.returncode = returncode


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int


def run_command(
    ctx: TaskContext,
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> CommandResult:
    """Run `argv` to its end, logging each output line; raise `TaskCanceled` if the task is canceled."""
    ctx.checkpoint()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    group = process.pid  # the leader of a new session leads its process group
    ctx.attach_process_group(group)
    readers = [_start_reader(ctx, process.stdout, ""), _start_reader(ctx, process.stderr, "stderr: ")]
    try:
        while process.poll() is None:
            ctx.wait_changed(POLL_INTERVAL_S)
    finally:
        ctx.detach_process_group(group)
        signal_group(group, signal.SIGKILL)  # children the command left behind
        for reader in readers:
            reader.join(timeout=5)
    if ctx.canceled:
        raise TaskCanceled(f"task {ctx.task_id} was canceled while {argv[0]!r} ran")
    if check and process.returncode != 0:
        raise CommandFailed(argv, process.returncode)
    return CommandResult(list(argv), process.returncode)


def _start_reader(ctx: TaskContext, stream: IO[bytes] | None, prefix: str) -> threading.Thread:
    def forward() -> None:
        assert stream is not None
        for raw in stream:
            ctx.log(prefix + raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    thread = threading.Thread(target=forward, name=f"tasky-output-{ctx.task_id[:8]}", daemon=True)
    thread.start()
    return thread
