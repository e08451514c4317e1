"""The benchmark suite's own pieces: load generator, store fill, profile summary and report.

These check that the measuring code counts and copies correctly against a
real server and store; they time nothing.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

from conftest import Server, create, wait_state

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH_DIR))

from loadgen import percentile, run_asyncio_load  # noqa: E402
from suite import report, scale  # noqa: E402
from suite.profiling import summarize  # noqa: E402


def test_asyncio_load_counts_every_answer(server: Server) -> None:
    result = run_asyncio_load(server.port, "/tasky/v1/workers/add", b'{"a": 1}', 4, total=40, duration_s=30)

    assert result.requests == 40
    assert result.statuses == {"201": 40}
    assert result.errors == 0
    assert result.p50_ms is not None and result.p99_ms is not None
    assert result.p50_ms <= result.p99_ms


def test_asyncio_load_counts_rejections(server: Server) -> None:
    result = run_asyncio_load(server.port, "/tasky/v1/workers/add", b'{"a": "x"}', 2, total=10, duration_s=30)

    assert result.statuses == {"422": 10}
    assert result.errors == 10


def test_percentile_nearest_rank() -> None:
    ordered = [float(value) for value in range(1, 101)]

    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_fill_copies_finished_tasks(server: Server, api: Any) -> None:
    ids = [create(api, "add", {"a": index})["id"] for index in range(3)]
    for task_id in ids:
        wait_state(api, task_id, "completed")
    server.stop()

    inserted = scale.fill(server.store, 10)

    conn = sqlite3.connect(server.store)
    try:
        tasks = conn.execute("SELECT count(*), count(DISTINCT id) FROM tasks WHERE state = 'completed'").fetchone()
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        per_task = conn.execute("SELECT count(*) FROM events WHERE task_id = ?", (ids[0],)).fetchone()[0]
    finally:
        conn.close()
    assert inserted == 10
    assert tasks == (13, 13)
    assert events == 13 * per_task


def test_profile_summary_groups_threads(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "thread (1): MainThread;run (uvicorn/server.py:1);Tasky.create_task (tasky/app.py:2);uuid4 (uuid.py:3) 6\n"
        "thread (2): tasky-sqlite-writer;SQLiteStore._write_loop (tasky/store/sqlite.py:4) 3\n"
        "thread (3);Thread._bootstrap (threading.py:5) 1\n"
    )

    summary = summarize(raw)

    assert summary["samples"] == 10
    assert summary["threads"] == {"event loop": 0.6, "store writer": 0.3, "task threads": 0.1}
    assert summary["self"][0] == ("uuid4 (uuid.py) [event loop]", 0.6)
    assert ("tasky store [store writer]", 0.3) in summary["components"]
    assert ("Tasky.create_task (tasky/app.py)", 1.0) in summary["loop_inclusive"]


def test_report_states_missed_targets() -> None:
    results = {
        "submit": part("submit", {
            "tool": "wrk", "connections": 64, "duration_s": 10, "ratio_to_starlette": 0.11,
            "results": {
                "tasky": load_figures(1_100), "starlette": load_figures(10_000), "fastapi": load_figures(5_000),
            },
        }),
        "cancel": part("cancel", {"count": 50, "p50_ms": 2.0, "p99_ms": 6.0, "max_ms": 7.0, "responses": {"200": 50}}),
    }

    page = report.render(results)

    assert "| Submit over HTTP (durable), share of the bare Starlette ceiling | 0.11 | >= 0.55 | **missed**: 0.11 is 5.0x short |" in page
    assert "| Cancel latency p99 (cooperative running task) | 6.0 ms | < 100 ms | met |" in page
    assert "| Round trip p99 | - | < 10 ms | no data |" in page


def part(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"part": name, "quick": False, "finished_at": "2026-01-02T03:04:05+00:00", "seconds": 1.0, "data": data}


def load_figures(requests_per_s: float) -> dict[str, Any]:
    run = {"requests_per_s": requests_per_s, "p50_ms": 1.0, "p99_ms": 2.0}
    return {"requests_per_s": requests_per_s, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0, "runs": [run]}
