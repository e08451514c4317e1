"""Set up the server log of `tasky serve`: JSON lines or readable text.

Library modules only call `logging.getLogger(__name__)`; this module, called
by the command line entry point, installs the one handler. Every record
gets the node name, and task state changes carry `task_id`, `worker` and
`state` in their `extra`, which the JSON format writes as fields.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class NodeFilter(logging.Filter):
    """Add the node name to records that do not name one already."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "node"):
            record.node = self.node
        return True


def json_formatter() -> logging.Formatter:
    """Build the formatter of JSON lines: time (ISO 8601, UTC), level, logger, message and the record's extras."""
    # orjson, already a dependency, encodes a line several times faster than the json module.
    return OrjsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger"},
        # uvicorn adds a copy of its message with terminal colour codes.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


def configure_logging(level: str, log_format: str, node: str, stream: IO[str] | None = None) -> None:
    """Send every log record to `stream` (stderr) in the chosen format; `auto` picks JSON off a terminal."""
    stream = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter() if use_json else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(NodeFilter(node))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _skip_unused_record_fields()


def _skip_unused_record_fields() -> None:
    """Stop filling record fields that neither format writes.

    These are the switches of the logging HOWTO's optimization table: the
    caller's file and line (a stack walk per record), thread, process and
    multiprocessing names. Only `tasky serve` sets them, for its own
    process. A program that embeds tasky keeps its own logging settings.
    """
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
