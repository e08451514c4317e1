"""The example workers that `tasky serve` offers when no `--workers` is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tasky.worker import Worker


def example_workers(copy_roots: Sequence[Path] = ()) -> list[Worker]:
    """Build the four example workers; `copyfile` is confined to `copy_roots`."""
    from tasky.workers.copyfile import CopyFileWorker
    from tasky.workers.ifconfig import IfconfigWorker
    from tasky.workers.sleeper import SleeperWorker
    from tasky.workers.sysctl import SysctlWorker

    return [CopyFileWorker(copy_roots), IfconfigWorker(), SleeperWorker(), SysctlWorker()]
