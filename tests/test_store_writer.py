"""The SQLite store's writer thread outlives callers that stop waiting."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from tasky.store.base import NewTask
from tasky.store.sqlite import SQLiteStore


def test_cancelled_caller_keeps_writer_alive(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        store = SQLiteStore(tmp_path / "writer.db")
        await store.open()
        gate = threading.Event()
        blocker = asyncio.ensure_future(store._write(lambda conn: gate.wait(10)))  # holds the writer busy
        abandoned = asyncio.ensure_future(store.create_task(NewTask(id="abandoned", worker="w", config={})))
        await asyncio.sleep(0.05)
        abandoned.cancel()  # as when an HTTP client disconnects during a POST
        gate.set()
        await blocker
        task, created = await asyncio.wait_for(store.create_task(NewTask(id="after", worker="w", config={})), 5)
        stored = await store.get_task("abandoned")
        await store.close()
        return created, task.id == "after", stored is not None

    created, right_task, abandoned_stored = asyncio.run(scenario())
    assert created
    assert right_task
    assert abandoned_stored  # committed even though its caller stopped waiting
