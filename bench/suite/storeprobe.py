"""Read-only looks into a tasky SQLite store from outside the node.

The end-to-end clock stops at the `finished_at` of the last task, as the
store recorded it. That gives the measurement the same resolution as the
peers' (the moment the last task finished), and the API is not polled
while tasks are submitted.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

UNFINISHED = ("queued", "running", "paused")
POLL_INTERVAL_S = 0.01


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)


def unfinished(conn: sqlite3.Connection) -> int:
    marks = ", ".join("?" for _ in UNFINISHED)
    return conn.execute(f"SELECT count(*) FROM tasks WHERE state IN ({marks})", UNFINISHED).fetchone()[0]


def wait_drained(path: Path, timeout_s: float) -> bool:
    """Wait until no task is queued, running or paused; False at the deadline."""
    deadline = time.monotonic() + timeout_s
    conn = connect(path)
    try:
        while unfinished(conn) > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_INTERVAL_S)
        return True
    finally:
        conn.close()


def finished_since(path: Path, since: float) -> tuple[int, float | None]:
    """Count the tasks created at or after `since` (Unix time) that completed, and the last finish time."""
    conn = connect(path)
    try:
        count, last = conn.execute(
            "SELECT count(*), max(finished_at) FROM tasks WHERE created_at >= ? AND state = 'completed'", (since,)
        ).fetchone()
        return count, last
    finally:
        conn.close()


def task_count(path: Path) -> int:
    conn = connect(path)
    try:
        return conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    finally:
        conn.close()


def store_bytes(path: Path) -> int:
    """Size of the database file plus its write-ahead log."""
    return sum(candidate.stat().st_size for candidate in (path, Path(f"{path}-wal")) if candidate.exists())


def used_bytes(path: Path) -> int:
    """Return the bytes of the pages in use as of the latest commit, the write-ahead log included."""
    conn = connect(path)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * page_size
    finally:
        conn.close()
