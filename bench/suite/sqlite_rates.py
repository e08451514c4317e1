"""Store floor: how many SQLite transactions per second this machine's disk commits, without tasky.

Single-row inserts into a small WAL table, one transaction each and in
batches of 100, at synchronous=NORMAL and FULL. These bound what any
store on this disk can do, and show what durability costs here.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from suite.settings import Settings

DURATION_S = 2.0


def run(settings: Settings) -> dict[str, Any]:
    folder = settings.workdir / "sqlite"
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for synchronous in ("NORMAL", "FULL"):
        for batch in (1, 100):
            results[f"{synchronous}-batch{batch}"] = commit_rate(folder / f"{synchronous}-{batch}.db", synchronous, batch)
    return {"sqlite_version": sqlite3.sqlite_version, "duration_s": DURATION_S, "results": results}


def commit_rate(path: Path, synchronous: str, batch: int) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    rows = 0
    transactions = 0
    started = time.perf_counter()
    deadline = started + DURATION_S
    while time.perf_counter() < deadline:
        conn.execute("BEGIN")
        for _ in range(batch):
            conn.execute("INSERT INTO items (body) VALUES (?)", ('{"state": "queued"}',))
        conn.execute("COMMIT")
        rows += batch
        transactions += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return {"rows_per_s": rows / elapsed, "transactions_per_s": transactions / elapsed}
