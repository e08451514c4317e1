"""The SQLite store's queries for logs, event streams, statistics, retention and webhooks.

`SQLiteStore` inherits these methods. They use its reader connection for
reads and its writer thread for writes, so they follow the store's
transaction rules (see `tasky.store.sqlite`). What the rows mean is decided
by `tasky.statistics`, `tasky.retention` and `tasky.webhooks`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import datetime
from typing import Any

import orjson

from tasky.statistics import HOUR_S, ArchivedFigures, FinishedRun, Histogram
from tasky.store.base import (
    CallbackAttempt,
    CallbackDelivery,
    Event,
    LogLine,
    LogPage,
    RetentionPlan,
)
from tasky.store.rows import event_from_row, to_datetime
from tasky.store.sqlite_writes import insert_event
from tasky.task import TERMINAL_STATES

TERMINAL = tuple(sorted(state.value for state in TERMINAL_STATES))
TERMINAL_MARKS = ", ".join("?" for _ in TERMINAL)
# Columns of `FinishedRun`, read from the tasks table; run and wait are NULL for a task that never started.
FINISHED_RUN_COLUMNS = """
    tasks.worker, tasks.state, tasks.finished_at,
    CASE WHEN started_at IS NOT NULL THEN max(0.0, finished_at - started_at - paused_total_s) END AS run_s,
    CASE WHEN started_at IS NOT NULL THEN max(0.0, started_at - created_at) END AS wait_s
"""


def append_log_line(conn: sqlite3.Connection, task_id: str, line: str, max_lines: int | None, now: float) -> None:
    """Store one log line with the task's next `seq`, or count it as dropped past `max_lines`."""
    limit = max_lines if max_lines is not None else -1
    row = conn.execute(
        "UPDATE tasks SET log_lines = log_lines + 1 WHERE id = ? AND (? < 0 OR log_lines < ?) RETURNING worker, log_lines",
        (task_id, limit, limit),
    ).fetchone()
    if row is not None:
        data = {"line": line, "seq": row["log_lines"]}
        insert_event(conn, task_id, row["worker"], now, "log", data, log_seq=row["log_lines"])
        return
    dropped = conn.execute(
        "UPDATE tasks SET log_dropped = log_dropped + 1 WHERE id = ? RETURNING worker, log_dropped, log_lines",
        (task_id,),
    ).fetchone()
    if dropped is not None and dropped["log_dropped"] == 1:
        data = {"max_lines": max_lines, "after_seq": dropped["log_lines"]}
        insert_event(conn, task_id, dropped["worker"], now, "log_truncated", data)


class SQLiteObservability:
    """Mixin of `SQLiteStore`; see the module docstring."""

    # Provided by SQLiteStore.
    _read: Callable[..., list[sqlite3.Row]]
    _write: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    # Logs and events ---------------------------------------------------------

    async def logs(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> LogPage:
        rows = self._read(
            "SELECT log_seq, at, data FROM events WHERE task_id = ? AND log_seq > ? ORDER BY log_seq LIMIT ?",
            (task_id, after_seq, limit + 1),
        )
        lines = [
            LogLine(seq=row["log_seq"], at=to_datetime(row["at"]), line=orjson.loads(row["data"])["line"])  # type: ignore[arg-type]
            for row in rows[:limit]
        ]
        return LogPage(lines=lines, has_more=len(rows) > limit)

    async def last_event_id(self) -> int:
        return int(self._read("SELECT coalesce(max(id), 0) FROM events")[0][0])

    async def events_since(
        self, after_id: int, *, kinds: Collection[str] = (), workers: Collection[str] = (), limit: int = 1000
    ) -> list[Event]:
        sql = "SELECT * FROM events WHERE id > ?"
        params: list[Any] = [after_id]
        if kinds:
            sql += f" AND kind IN ({_marks(kinds)})"
            params.extend(kinds)
        if workers:
            sql += f" AND worker IN ({_marks(workers)})"
            params.extend(workers)
        rows = self._read(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [event_from_row(row) for row in rows]

    # Statistics --------------------------------------------------------------

    async def state_counts(self, worker: str | None = None, *, finished_since: float | None = None) -> dict[tuple[str, str], int]:
        sql = "SELECT worker, state, count(*) AS n FROM tasks WHERE 1 = 1"
        params: list[Any] = []
        if worker is not None:
            sql += " AND worker = ?"
            params.append(worker)
        if finished_since is not None:
            sql += f" AND (state NOT IN ({TERMINAL_MARKS}) OR finished_at >= ?)"
            params.extend([*TERMINAL, finished_since])
        rows = self._read(sql + " GROUP BY worker, state", params)
        return {(row["worker"], row["state"]): int(row["n"]) for row in rows}

    async def archived_counts(self) -> dict[tuple[str, str], int]:
        rows = self._read("SELECT worker, state, sum(count) AS n FROM task_aggregates GROUP BY worker, state")
        return {(row["worker"], row["state"]): int(row["n"]) for row in rows}

    async def finished_runs(self, worker: str | None = None, *, since: float | None = None) -> list[FinishedRun]:
        # NOTE: one row per stored finished task, so exact percentiles cost a
        # read of every such task; retention is what keeps this bounded.
        sql = f"SELECT {FINISHED_RUN_COLUMNS} FROM tasks WHERE finished_at IS NOT NULL AND state IN ({TERMINAL_MARKS})"
        params: list[Any] = list(TERMINAL)
        if worker is not None:
            sql += " AND worker = ?"
            params.append(worker)
        if since is not None:
            sql += " AND finished_at >= ?"
            params.append(since)
        return [_finished_run(row) for row in self._read(sql, params)]

    async def finished_since(self, after_event_id: int, *, limit: int = 500) -> list[tuple[int, str, FinishedRun]]:
        """Return the tasks whose terminal state event has an id above `after_event_id`, in event order.

        Each entry is (event id, task id, durations); a task deleted since is left out.
        """
        rows = self._read(
            f"""
            SELECT events.id AS event_id, tasks.id AS task_id, {FINISHED_RUN_COLUMNS}
            FROM events JOIN tasks ON tasks.id = events.task_id
            WHERE events.id > ? AND events.kind = 'state' AND json_extract(events.data, '$.state') IN ({TERMINAL_MARKS})
            ORDER BY events.id LIMIT ?
            """,
            [after_event_id, *TERMINAL, limit],
        )
        return [(row["event_id"], row["task_id"], _finished_run(row)) for row in rows]

    async def archived_figures(self, worker: str | None = None, *, since: float | None = None) -> list[ArchivedFigures]:
        sql = "SELECT * FROM task_aggregates WHERE 1 = 1"
        params: list[Any] = []
        if worker is not None:
            sql += " AND worker = ?"
            params.append(worker)
        if since is not None:
            sql += " AND hour + ? > ?"
            params.extend([HOUR_S, since])
        return [_figures_from_row(row) for row in self._read(sql + " ORDER BY hour", params)]

    # Retention ---------------------------------------------------------------

    async def prune_finished(self, plan: RetentionPlan, *, batch_size: int, now: float) -> int:
        def prune(conn: sqlite3.Connection) -> int:
            pruned = 0
            for clause, params in _retention_clauses(plan, now):
                remaining = batch_size - pruned
                if remaining <= 0:
                    break
                rows = conn.execute(
                    "SELECT id, worker, state, created_at, started_at, finished_at, paused_total_s FROM tasks "
                    f"WHERE finished_at IS NOT NULL AND state IN ({TERMINAL_MARKS}) AND {clause} ORDER BY finished_at LIMIT ?",
                    [*TERMINAL, *params, remaining],
                ).fetchall()
                if rows:
                    _fold_into_aggregates(conn, rows)
                    _delete_tasks(conn, rows, now)
                    pruned += len(rows)
            return pruned

        return await self._write(prune)

    async def prune_tombstones(self, before: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM pruned_tasks WHERE pruned_at < ?", (before,)).rowcount

        return await self._write(delete)

    async def pruned_at(self, task_id: str) -> datetime | None:
        rows = self._read("SELECT pruned_at FROM pruned_tasks WHERE id = ?", (task_id,))
        return to_datetime(rows[0]["pruned_at"]) if rows else None

    # Webhook callbacks -------------------------------------------------------

    async def enqueue_callbacks(self, task_ids: Collection[str] | None, now: float) -> int:
        ids = list(task_ids) if task_ids is not None else None
        if ids is not None:
            # A cheap read first: most finished tasks name no callback, and a
            # write for each of them would cost a commit.
            found = self._read(f"SELECT 1 FROM tasks WHERE callback_url IS NOT NULL AND id IN ({_marks(ids)}) LIMIT 1", ids)
            if not ids or not found:
                return 0

        def insert(conn: sqlite3.Connection) -> int:
            sql = f"""
                INSERT INTO callback_deliveries (task_id, task_attempt, url, state, attempts, next_at, created_at, updated_at)
                SELECT id, attempt, callback_url, 'pending', 0, ?, ?, ? FROM tasks
                WHERE callback_url IS NOT NULL AND state IN ({TERMINAL_MARKS})
            """
            params: list[Any] = [now, now, now, *TERMINAL]
            if ids is not None:
                sql += f" AND id IN ({_marks(ids)})"
                params.extend(ids)
            return conn.execute(sql + " ON CONFLICT DO NOTHING", params).rowcount

        return await self._write(insert)

    async def due_callbacks(self, now: float, *, limit: int, exclude: Collection[tuple[str, int]] = ()) -> list[CallbackDelivery]:
        rows = self._read(
            "SELECT * FROM callback_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
            (now, limit + len(exclude)),
        )
        skip = set(exclude)
        deliveries = [_delivery_from_row(row) for row in rows]
        return [item for item in deliveries if (item.task_id, item.task_attempt) not in skip][:limit]

    async def next_callback_at(self, *, exclude: Collection[tuple[str, int]] = ()) -> float | None:
        rows = self._read(
            "SELECT task_id, task_attempt, next_at FROM callback_deliveries WHERE state = 'pending' ORDER BY next_at LIMIT ?",
            (len(exclude) + 1,),
        )
        skip = set(exclude)
        return next((row["next_at"] for row in rows if (row["task_id"], row["task_attempt"]) not in skip), None)

    async def record_callback_attempt(
        self, delivery: CallbackDelivery, attempt: CallbackAttempt, *, state: str, next_at: float | None
    ) -> None:
        def record(conn: sqlite3.Connection) -> None:
            at = attempt.at.timestamp()
            conn.execute(
                "INSERT INTO callback_attempts (task_id, task_attempt, number, at, duration_s, status_code, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery.task_id, delivery.task_attempt, attempt.number, at, attempt.duration_s, attempt.status_code, attempt.error),
            )
            conn.execute(
                "UPDATE callback_deliveries SET state = ?, attempts = ?, next_at = ?, updated_at = ? WHERE task_id = ? AND task_attempt = ?",
                (state, attempt.number, next_at, at, delivery.task_id, delivery.task_attempt),
            )

        await self._write(record)

    async def callbacks(self, task_id: str) -> list[tuple[CallbackDelivery, list[CallbackAttempt]]]:
        deliveries = self._read("SELECT * FROM callback_deliveries WHERE task_id = ? ORDER BY task_attempt", (task_id,))
        attempts = self._read("SELECT * FROM callback_attempts WHERE task_id = ? ORDER BY id", (task_id,))
        by_attempt: dict[int, list[CallbackAttempt]] = defaultdict(list)
        for row in attempts:
            by_attempt[row["task_attempt"]].append(
                CallbackAttempt(row["number"], to_datetime(row["at"]), row["duration_s"], row["status_code"], row["error"])  # type: ignore[arg-type]
            )
        return [(_delivery_from_row(row), by_attempt[row["task_attempt"]]) for row in deliveries]


def _retention_clauses(plan: RetentionPlan, now: float) -> Iterable[tuple[str, list[Any]]]:
    """Yield one WHERE clause per age limit: each overridden worker, then every other worker."""
    for worker, max_age_s in plan.worker_max_age_s.items():
        if max_age_s is not None:
            yield "worker = ? AND finished_at < ?", [worker, now - max_age_s]
    if plan.max_age_s is not None:
        overridden = list(plan.worker_max_age_s)
        clause = "finished_at < ?"
        if overridden:
            clause += f" AND worker NOT IN ({_marks(overridden)})"
        yield clause, [now - plan.max_age_s, *overridden]


def _fold_into_aggregates(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> None:
    """Add the figures of tasks about to be deleted to their (worker, state, hour) aggregates."""
    groups: dict[tuple[str, str, float], list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        hour = row["finished_at"] - row["finished_at"] % HOUR_S
        groups[(row["worker"], row["state"], hour)].append(row)
    for (worker, state, hour), members in groups.items():
        current = conn.execute(
            "SELECT * FROM task_aggregates WHERE worker = ? AND state = ? AND hour = ?", (worker, state, hour)
        ).fetchone()
        figures = _figures_from_row(current) if current is not None else _empty_figures(worker, state, hour)
        _store_figures(conn, _add_tasks(figures, members))


def _add_tasks(figures: ArchivedFigures, rows: list[sqlite3.Row]) -> ArchivedFigures:
    run_values, wait_values = [], []
    for row in rows:
        if row["started_at"] is not None:
            run_values.append(max(0.0, row["finished_at"] - row["started_at"] - row["paused_total_s"]))
            wait_values.append(max(0.0, row["started_at"] - row["created_at"]))
    run_histogram, wait_histogram = Histogram(dict(figures.run_histogram.counts)), Histogram(dict(figures.wait_histogram.counts))
    for value in run_values:
        run_histogram.add(value)
    for value in wait_values:
        wait_histogram.add(value)
    return ArchivedFigures(
        worker=figures.worker,
        state=figures.state,
        hour=figures.hour,
        count=figures.count + len(rows),
        run_count=figures.run_count + len(run_values),
        run_sum_s=figures.run_sum_s + sum(run_values),
        run_max_s=_max(figures.run_max_s, run_values),
        run_histogram=run_histogram,
        wait_count=figures.wait_count + len(wait_values),
        wait_sum_s=figures.wait_sum_s + sum(wait_values),
        wait_max_s=_max(figures.wait_max_s, wait_values),
        wait_histogram=wait_histogram,
    )


def _store_figures(conn: sqlite3.Connection, figures: ArchivedFigures) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO task_aggregates (worker, state, hour, count, run_count, run_sum_s, run_max_s, run_histogram, "
        "wait_count, wait_sum_s, wait_max_s, wait_histogram) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            figures.worker, figures.state, figures.hour, figures.count,
            figures.run_count, figures.run_sum_s, figures.run_max_s, orjson.dumps(figures.run_histogram.to_json()).decode(),
            figures.wait_count, figures.wait_sum_s, figures.wait_max_s, orjson.dumps(figures.wait_histogram.to_json()).decode(),
        ),
    )


def _delete_tasks(conn: sqlite3.Connection, rows: list[sqlite3.Row], now: float) -> None:
    ids = [row["id"] for row in rows]
    conn.executemany(
        "INSERT OR REPLACE INTO pruned_tasks (id, worker, state, finished_at, pruned_at) VALUES (?, ?, ?, ?, ?)",
        [(row["id"], row["worker"], row["state"], row["finished_at"], now) for row in rows],
    )
    marks = _marks(ids)
    for table, column in (("events", "task_id"), ("callback_attempts", "task_id"), ("callback_deliveries", "task_id"), ("tasks", "id")):
        conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)


def _finished_run(row: sqlite3.Row) -> FinishedRun:
    return FinishedRun(row["worker"], row["state"], row["finished_at"], row["run_s"], row["wait_s"])


def _empty_figures(worker: str, state: str, hour: float) -> ArchivedFigures:
    return ArchivedFigures(worker, state, hour, 0, 0, 0.0, None, Histogram(), 0, 0.0, None, Histogram())


def _figures_from_row(row: sqlite3.Row) -> ArchivedFigures:
    return ArchivedFigures(
        worker=row["worker"],
        state=row["state"],
        hour=row["hour"],
        count=row["count"],
        run_count=row["run_count"],
        run_sum_s=row["run_sum_s"],
        run_max_s=row["run_max_s"],
        run_histogram=Histogram.from_json(orjson.loads(row["run_histogram"])),
        wait_count=row["wait_count"],
        wait_sum_s=row["wait_sum_s"],
        wait_max_s=row["wait_max_s"],
        wait_histogram=Histogram.from_json(orjson.loads(row["wait_histogram"])),
    )


def _delivery_from_row(row: sqlite3.Row) -> CallbackDelivery:
    return CallbackDelivery(
        task_id=row["task_id"],
        task_attempt=row["task_attempt"],
        url=row["url"],
        state=row["state"],
        attempts=row["attempts"],
        next_at=to_datetime(row["next_at"]),
        created_at=to_datetime(row["created_at"]),  # type: ignore[arg-type]
        updated_at=to_datetime(row["updated_at"]),  # type: ignore[arg-type]
    )


def _max(current: float | None, values: list[float]) -> float | None:
    candidates = [*values, *([current] if current is not None else [])]
    return max(candidates) if candidates else None


def _marks(values: Collection[Any]) -> str:
    return ", ".join("?" for _ in values)
