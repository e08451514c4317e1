"""Reading the result line that a measuring subprocess prints (the peer drivers, the in-process run)."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def read_result(completed: subprocess.CompletedProcess[str], description: str) -> dict[str, Any]:
    """Parse the `RESULT {json}` line of a measuring subprocess; raise with its output if there is none."""
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{description} printed no result (exit {completed.returncode}):\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")
