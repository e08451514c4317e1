"""Statements of the SQLite store that several of its writes share.

Each function runs inside the writer thread's transaction, on the
connection it is given, and never commits. `SQLiteStore` in
`tasky.store.sqlite` decides when they run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

import orjson

from tasky.store.base import Change, IdempotencyConflict, NewTask, TaskFilter
from tasky.store.rows import task_from_row
from tasky.task import Task, TaskError, TaskState

ACTIVE = (TaskState.RUNNING.value, TaskState.PAUSED.value)


def recover_one(conn: sqlite3.Connection, row: sqlite3.Row, restartable: bool, now: float) -> Task | None:
    current = TaskState(row["state"])
    if restartable:
        change = Change(reason="interrupted: the node running it stopped; re-queued because the worker is restartable")
        return apply_transition(conn, row["id"], [current], TaskState.QUEUED, row["attempt"], change, now)
    error = TaskError(
        type="Interrupted",
        message="the node running this task stopped before it finished, and the worker is not restartable",
        reason="interrupted",
    )
    change = Change(error=error, reason="interrupted")
    return apply_transition(conn, row["id"], [current], TaskState.FAILED, row["attempt"], change, now)


def apply_transition(
    conn: sqlite3.Connection,
    task_id: str,
    expected: Collection[TaskState],
    target: TaskState,
    attempt: int | None,
    change: Change,
    now: float,
) -> Task | None:
    states = [state.value for state in expected]
    sets = ["state = :target", "updated_at = :now"]
    # Paused time accrues whenever a task leaves `paused`, whatever the new state.
    sets.append("paused_total_s = CASE WHEN paused_at IS NOT NULL THEN paused_total_s + (:now - paused_at) ELSE paused_total_s END")
    sets.append("paused_at = CASE WHEN :target = 'paused' THEN :now ELSE NULL END")
    if target.is_terminal:
        sets.append("finished_at = :now")
    if target is TaskState.QUEUED and TaskState.HELD not in expected:
        sets += ["attempt = attempt + 1", "started_at = NULL", "node = NULL", "cancel_requested = 0", "run_after = :run_after"]
    if change.result is not None:
        sets.append("result = :result")
    if change.error is not None:
        sets.append("error = :error")
    params: dict[str, Any] = {
        "target": target.value,
        "now": now,
        "id": task_id,
        "attempt": attempt,
        "result": orjson.dumps(change.result).decode() if change.result is not None else None,
        "error": change.error.model_dump_json() if change.error is not None else None,
        "run_after": change.run_after,
    }
    params.update({f"s{i}": state for i, state in enumerate(states)})
    state_marks = ", ".join(f":s{i}" for i in range(len(states)))
    where = f"id = :id AND state IN ({state_marks})"
    if attempt is not None:
        where += " AND attempt = :attempt"
    before = conn.execute("SELECT state, attempt, started_at FROM tasks WHERE id = ?", (task_id,)).fetchone()
    row = conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE {where} RETURNING *", params).fetchone()
    if row is None:
        return None
    task = task_from_row(row)
    if before["state"] in ACTIVE and not target.is_active:
        record_attempt(conn, task_id, before, target, change, now)
    data: dict[str, Any] = {"state": target.value, "attempt": task.attempt}
    if change.reason:
        data["reason"] = change.reason
    insert_event(conn, task_id, task.worker, now, "state", data)
    return task


def claim_queued(conn: sqlite3.Connection, worker: str, limit: int, node: str, now: float) -> list[Task]:
    """Move up to `limit` due queued tasks of the worker, oldest first, to `running` on `node`."""
    rows = conn.execute(
        """
        UPDATE tasks SET state = 'running', started_at = ?, node = ?, updated_at = ?
        WHERE seq IN (
            SELECT seq FROM tasks WHERE worker = ? AND state = 'queued'
            AND (run_after IS NULL OR run_after <= ?) ORDER BY seq LIMIT ?
        )
        RETURNING *
        """,
        (now, node, now, worker, now, limit),
    ).fetchall()
    tasks = sorted((task_from_row(row) for row in rows), key=lambda task: task.seq)
    for task in tasks:
        insert_event(conn, task.id, worker, now, "state", {"state": "running", "attempt": task.attempt, "node": node})
    return tasks


def record_attempt(
    conn: sqlite3.Connection, task_id: str, before: sqlite3.Row, target: TaskState, change: Change, now: float
) -> None:
    """Keep the attempt that just ended, with its own times and error."""
    outcome = "interrupted" if target is TaskState.QUEUED and change.error is None else target.value
    if target is TaskState.QUEUED and change.error is not None:
        outcome = "failed"  # failed with attempts left: re-queued for a retry
    conn.execute(
        "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?)",
        (task_id, before["attempt"], before["started_at"], now, outcome,
         change.error.model_dump_json() if change.error is not None else None),
    )


def insert_task(conn: sqlite3.Connection, new: NewTask, config_json: str, now: float) -> Task:
    state = TaskState.HELD if new.held else TaskState.QUEUED
    row = conn.execute(
        "INSERT INTO tasks (id, worker, state, config, created_at, updated_at, timeout_s, restart_of, callback_url) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (new.id, new.worker, state.value, config_json, now, now, new.timeout_s, new.restart_of, new.callback_url),
    ).fetchone()
    data: dict[str, Any] = {"state": state.value, "attempt": 1}
    if new.restart_of:
        data["restart_of"] = new.restart_of
    insert_event(conn, new.id, new.worker, now, "state", data)
    if new.claim_node is not None and state is TaskState.QUEUED and not _older_task_due(conn, new, now):
        row = conn.execute(
            "UPDATE tasks SET state = 'running', started_at = ?, node = ?, updated_at = ? WHERE id = ? RETURNING *",
            (now, new.claim_node, now, new.id),
        ).fetchone()
        insert_event(conn, new.id, new.worker, now, "state", {"state": "running", "attempt": 1, "node": new.claim_node})
    return task_from_row(row)


def _older_task_due(conn: sqlite3.Connection, new: NewTask, now: float) -> bool:
    """Return True when another queued task of the worker may start now, because that one goes first."""
    return (
        conn.execute(
            "SELECT 1 FROM tasks WHERE worker = ? AND state = 'queued' AND id != ? AND (run_after IS NULL OR run_after <= ?) LIMIT 1",
            (new.worker, new.id, now),
        ).fetchone()
        is not None
    )


def find_idempotent(conn: sqlite3.Connection, new: NewTask, now: float) -> Task | None:
    """Return the task created earlier with this key and body; raise on another body."""
    conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - new.idempotency_ttl_s,))
    row = conn.execute(
        "SELECT body_hash, task_id FROM idempotency_keys WHERE worker = ? AND key = ?", (new.worker, new.idempotency_key)
    ).fetchone()
    if row is None:
        return None
    if row["body_hash"] != new.body_hash:
        raise IdempotencyConflict(row["task_id"])
    task = conn.execute("SELECT * FROM tasks WHERE id = ?", (row["task_id"],)).fetchone()
    return task_from_row(task) if task is not None else None


def insert_event(
    conn: sqlite3.Connection, task_id: str, worker: str, at: float, kind: str, data: dict[str, Any], *, log_seq: int | None = None
) -> None:
    """Append one event of a task; `log_seq` numbers the task's log lines."""
    conn.execute(
        "INSERT INTO events (task_id, worker, at, kind, data, log_seq) VALUES (?, ?, ?, ?, ?, ?)",
        (task_id, worker, at, kind, orjson.dumps(data).decode(), log_seq),
    )


def filter_clauses(filters: TaskFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.states:
        clauses.append(f"state IN ({marks(filters.states)})")
        params.extend(state.value for state in filters.states)
    if filters.worker:
        clauses.append("worker = ?")
        params.append(filters.worker)
    if filters.created_after:
        clauses.append("created_at >= ?")
        params.append(filters.created_after.timestamp())
    if filters.created_before:
        clauses.append("created_at < ?")
        params.append(filters.created_before.timestamp())
    return clauses, params


def marks(values: Collection[Any]) -> str:
    return ", ".join("?" for _ in values)
