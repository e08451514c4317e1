"""Where `ctx.progress` and `ctx.log` go: the store, within each task's log limits.

A task's log keeps at most `max_lines` lines. The store counts the lines
past that as dropped and records one `log_truncated` event, so a reader
sees the cut. A line longer than `max_line_chars` is shortened and says how
many characters it lost.
"""

from __future__ import annotations

from tasky.settings import TaskLogSettings
from tasky.store.base import Store


class TaskLogSink:
    """The executor's `ContextSink`: forwards progress and log lines to the store."""

    def __init__(self, store: Store, limits: TaskLogSettings) -> None:
        self._store = store
        self.limits = limits

    def progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        self._store.report_progress(task_id, done, total, message)

    def log(self, task_id: str, line: str) -> None:
        self._store.append_log(task_id, cut_line(line, self.limits.max_line_chars), max_lines=self.limits.max_lines)


def cut_line(line: str, max_chars: int) -> str:
    """Return `line`, or its start with a note of the cut when it has more than `max_chars` characters."""
    if len(line) <= max_chars:
        return line
    marker = f" [... {len(line)} characters, cut to {max_chars}]"
    return line[: max(0, max_chars - len(marker))] + marker
