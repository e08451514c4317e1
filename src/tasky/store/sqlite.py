"""The embedded SQLite store: one file, WAL journal, one writer thread.

Every write goes through a single writer thread that commits in groups:
it takes all writes waiting in its queue, runs each in its own savepoint
inside one transaction, commits once, and only then resolves their futures,
all of a group in one call on the event loop.
A `create_task` therefore returns only after its row is on disk, while a
burst of submissions shares one fsync. Reads run on the caller's thread
with their own connection, which WAL lets proceed beside the writer.

With `synchronous=FULL` (the default) a committed task survives a power
loss; `NORMAL` keeps it across a crash of the process but may lose the last
commits on power loss.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tasky.errors import ConfigurationError
from tasky.store.base import (
    Attempt,
    Change,
    Event,
    NewTask,
    QueueFull,
    TaskFilter,
    TaskPage,
)
from tasky.store.rows import event_from_row, task_from_row, to_datetime
from tasky.store.sqlite_observability import SQLiteObservability, append_log_line
from tasky.store.sqlite_writes import (
    apply_transition,
    claim_queued,
    filter_clauses,
    find_idempotent,
    insert_event,
    insert_task,
    marks,
    recover_one,
)
from tasky.task import Task, TaskError, TaskState

logger = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], Any]
# A queued write and the future that receives its value, or None when no caller waits for it.
QueuedWrite = tuple[WriteFn, "asyncio.Future[Any] | None"]
Outcome = tuple["asyncio.Future[Any]", bool, Any]

MAX_GROUP = 512  # writes committed in one transaction at most
BUSY_TIMEOUT_MS = 5000
ACTIVE = (TaskState.RUNNING.value, TaskState.PAUSED.value)


class SQLiteStore(SQLiteObservability):
    """`Store` on a SQLite file; see the module docstring for the write path."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        self._queue: queue.SimpleQueue[QueuedWrite | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._commit_listeners: list[Callable[[], None]] = []

    # Life cycle --------------------------------------------------------------

    def check(self) -> None:
        """Open the file, apply migrations and close it; raise `ConfigurationError` if it is unusable.

        `tasky serve` calls it before it listens, so a bad store file ends
        start-up with one line instead of failing after the first log lines.
        """
        self._migrated_connection().close()

    async def open(self) -> None:
        if self._writer is not None:
            return
        conn = self._migrated_connection()
        self._reader = self._connect()
        self._writer = threading.Thread(target=self._write_loop, args=(conn,), name="tasky-sqlite-writer", daemon=True)
        self._writer.start()
        logger.info("opened SQLite store %s (synchronous=%s)", self.path, self.synchronous)

    async def close(self) -> None:
        if self._writer is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(self._writer.join)
        self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        logger.info("closed SQLite store %s", self.path)

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        self._commit_listeners.append(listener)

    def _migrated_connection(self) -> sqlite3.Connection:
        from tasky.store.migrate import apply_sqlite_migrations

        if not self.path.parent.exists():
            logger.info("creating folder %s for the store", self.path.parent)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connect()
            apply_sqlite_migrations(conn)
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"cannot use {self.path} as the store: {exc}; give --store a SQLite file tasky created, or a new path"
            ) from None
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    # The writer thread -------------------------------------------------------

    def _submit(self, fn: WriteFn) -> None:
        """Queue a write that no caller waits for (progress, log lines, audit rows). A failure is only logged."""
        if self._writer is None:
            raise RuntimeError("the store is not open")
        self._queue.put((fn, None))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue a write and return its value once the group holding it is committed."""
        if self._writer is None:
            raise RuntimeError("the store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return await future

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit_batch(conn, batch)
        conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[QueuedWrite]) -> None:
        outcomes: list[Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future in batch:
                ok, value = self._run_in_savepoint(conn, fn)
                if future is not None:
                    outcomes.append((future, ok, value))
                elif not ok:
                    logger.error("a background write to the SQLite store failed: %s", value)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # The whole group failed to commit (disk full, I/O error): every
            # caller gets the error, so no caller believes its write landed.
            logger.error("SQLite commit of %d writes failed: %s", len(batch), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._settle_threadsafe([(future, False, exc) for _, future in batch if future is not None])
            return
        self._settle_threadsafe(outcomes)
        self._notify_commit()

    @staticmethod
    def _settle_threadsafe(outcomes: list[Outcome]) -> None:
        """Hand a group's outcomes to the event loops of their callers, one call per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, group)
            except RuntimeError:
                pass  # The loop closed at shutdown, so no caller is left to wait for these writes.

    def _notify_commit(self) -> None:
        for listener in self._commit_listeners:
            try:
                listener()
            except Exception:  # a broken listener must not stop the writer thread
                logger.exception("a commit listener of the SQLite store failed")

    @staticmethod
    def _run_in_savepoint(conn: sqlite3.Connection, fn: WriteFn) -> tuple[bool, Any]:
        conn.execute("SAVEPOINT one_write")
        try:
            value = fn(conn)
        except Exception as exc:  # handed to the caller through its future
            conn.execute("ROLLBACK TO one_write")
            conn.execute("RELEASE one_write")
            return False, exc
        conn.execute("RELEASE one_write")
        return True, value

    # Reads -------------------------------------------------------------------

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        if self._reader is None:
            raise RuntimeError("the store is not open")
        with self._reader_lock:
            return self._reader.execute(sql, tuple(params)).fetchall()

    async def get_task(self, task_id: str) -> Task | None:
        rows = self._read("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return task_from_row(rows[0]) if rows else None

    async def list_tasks(self, filters: TaskFilter, *, limit: int, before_seq: int | None) -> TaskPage:
        clauses, params = filter_clauses(filters)
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT * FROM tasks {where} ORDER BY seq DESC LIMIT ?", [*params, limit + 1])
        tasks = [task_from_row(row) for row in rows[:limit]]
        next_seq = tasks[-1].seq if len(rows) > limit else None
        return TaskPage(tasks=tasks, next_before_seq=next_seq)

    async def count_active(self, worker: str) -> int:
        rows = self._read("SELECT count(*) FROM tasks WHERE worker = ? AND state IN (?, ?)", (worker, *ACTIVE))
        return int(rows[0][0])

    async def events(self, task_id: str, *, after_id: int = 0, kinds: Collection[str] = (), limit: int = 1000) -> list[Event]:
        sql = "SELECT * FROM events WHERE task_id = ? AND id > ?"
        params: list[Any] = [task_id, after_id]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(kinds)
        rows = self._read(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [event_from_row(row) for row in rows]

    # Writes ------------------------------------------------------------------

    async def create_task(self, new: NewTask) -> tuple[Task, bool]:
        config_json = orjson.dumps(new.config).decode()

        def insert(conn: sqlite3.Connection) -> tuple[Task, bool]:
            now = time.time()
            if new.idempotency_key is not None:
                earlier = find_idempotent(conn, new, now)
                if earlier is not None:
                    return earlier, False
            if new.max_queued is not None:
                queued = conn.execute(
                    "SELECT count(*) FROM tasks WHERE worker = ? AND state = 'queued'", (new.worker,)
                ).fetchone()[0]
                if queued >= new.max_queued:
                    raise QueueFull(queued)
            task = insert_task(conn, new, config_json, now)
            if new.idempotency_key is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (new.idempotency_key, new.worker, new.body_hash, new.id, now),
                )
            return task, True

        return await self._write(insert)

    async def update_config(self, task_id: str, config: dict[str, Any], expected_version: int | None) -> Task | None:
        config_json = orjson.dumps(config).decode()

        def update(conn: sqlite3.Connection) -> Task | None:
            now = time.time()
            sql = (
                "UPDATE tasks SET config = ?, config_version = config_version + 1, updated_at = ? "
                "WHERE id = ? AND state IN ('queued', 'held')"
            )
            params: list[Any] = [config_json, now, task_id]
            if expected_version is not None:
                sql += " AND config_version = ?"
                params.append(expected_version)
            row = conn.execute(sql + " RETURNING *", params).fetchone()
            if row is None:
                return None
            task = task_from_row(row)
            insert_event(conn, task_id, task.worker, now, "config_changed", {"config_version": task.config_version})
            return task

        return await self._write(update)

    async def create_restart(self, original_id: str, new: NewTask) -> Task | None:
        config_json = orjson.dumps(new.config).decode()
        finished = ("completed", "failed", "canceled", "timed_out")

        def insert(conn: sqlite3.Connection) -> Task | None:
            now = time.time()
            linked = conn.execute(
                f"UPDATE tasks SET restarted_as = ?, updated_at = ? WHERE id = ? AND restarted_as IS NULL "
                f"AND state IN ({marks(finished)}) RETURNING worker",
                (new.id, now, original_id, *finished),
            ).fetchone()
            if linked is None:
                return None
            insert_event(conn, original_id, linked["worker"], now, "restarted", {"restarted_as": new.id})
            return insert_task(conn, new, config_json, now)

        return await self._write(insert)

    async def attempts(self, task_id: str) -> list[Attempt]:
        rows = self._read("SELECT * FROM attempts WHERE task_id = ? ORDER BY attempt", (task_id,))
        return [
            Attempt(
                attempt=row["attempt"],
                started_at=to_datetime(row["started_at"]),
                finished_at=to_datetime(row["finished_at"]),  # type: ignore[arg-type]
                outcome=row["outcome"],
                error=TaskError.model_validate_json(row["error"]) if row["error"] else None,
            )
            for row in rows
        ]

    async def worker_settings(self) -> dict[str, tuple[bool, str | None]]:
        rows = self._read("SELECT name, enabled, reason FROM worker_settings")
        return {row["name"]: (bool(row["enabled"]), row["reason"]) for row in rows}

    async def set_worker_enabled(self, name: str, enabled: bool, reason: str | None) -> None:
        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO worker_settings VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, reason = excluded.reason, updated_at = excluded.updated_at",
                (name, int(enabled), reason, time.time()),
            )

        await self._write(upsert)

    async def next_run_after(self) -> dict[str, float]:
        rows = self._read(
            "SELECT worker, min(run_after) AS due FROM tasks WHERE state = 'queued' AND run_after IS NOT NULL GROUP BY worker"
        )
        return {row["worker"]: row["due"] for row in rows}

    async def claim(self, worker: str, limit: int, node: str) -> list[Task]:
        def claim_rows(conn: sqlite3.Connection) -> list[Task]:
            return claim_queued(conn, worker, limit, node, time.time())

        return await self._write(claim_rows)

    async def transition(
        self,
        task_id: str,
        expected: Collection[TaskState],
        target: TaskState,
        *,
        attempt: int | None = None,
        change: Change | None = None,
    ) -> Task | None:
        def update(conn: sqlite3.Connection) -> Task | None:
            return apply_transition(conn, task_id, expected, target, attempt, change or Change(), time.time())

        return await self._write(update)

    async def finish_and_claim(
        self,
        task_id: str,
        expected: Collection[TaskState],
        target: TaskState,
        *,
        attempt: int,
        change: Change,
        claim: tuple[str, int, str] | None,
    ) -> tuple[Task | None, list[Task]]:
        def update(conn: sqlite3.Connection) -> tuple[Task | None, list[Task]]:
            now = time.time()
            stored = apply_transition(conn, task_id, expected, target, attempt, change, now)
            claimed = claim_queued(conn, *claim, now) if claim is not None else []
            return stored, claimed

        return await self._write(update)

    async def request_cancel(self, task_id: str, expected: Collection[TaskState]) -> Task | None:
        states = [state.value for state in expected]

        def update(conn: sqlite3.Connection) -> Task | None:
            now = time.time()
            row = conn.execute(
                f"UPDATE tasks SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state IN ({marks(states)}) RETURNING *",
                (now, task_id, *states),
            ).fetchone()
            if row is None:
                return None
            insert_event(conn, task_id, row["worker"], now, "cancel_requested", {})
            return task_from_row(row)

        return await self._write(update)

    def report_progress(self, task_id: str, done: float | None, total: float | None, message: str | None) -> None:
        def update(conn: sqlite3.Connection) -> None:
            now = time.time()
            row = conn.execute(
                "UPDATE tasks SET progress_done = ?, progress_total = ?, progress_message = ?, progress_at = ? "
                "WHERE id = ? AND state IN ('running', 'paused') RETURNING worker",
                (done, total, message, now, task_id),
            ).fetchone()
            if row is not None:
                insert_event(conn, task_id, row["worker"], now, "progress", {"done": done, "total": total, "message": message})

        self._submit(update)

    def append_log(self, task_id: str, line: str, *, max_lines: int | None = None) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            append_log_line(conn, task_id, line, max_lines, time.time())

        self._submit(insert)

    async def recover(self, restartable: Iterable[str], node: str | None = None) -> list[Task]:
        restartable_names = set(restartable)

        def recover_rows(conn: sqlite3.Connection) -> list[Task]:
            sql = "SELECT id, worker, state, attempt FROM tasks WHERE state IN (?, ?)"
            params: list[Any] = list(ACTIVE)
            if node is not None:
                sql += " AND node = ?"
                params.append(node)
            now = time.time()
            changed = []
            for row in conn.execute(sql, params).fetchall():
                changed.append(recover_one(conn, row, row["worker"] in restartable_names, now))
            return [task for task in changed if task is not None]

        return await self._write(recover_rows)


def _settle(outcomes: list[Outcome]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue  # The caller was cancelled and stopped waiting, but the write is committed all the same.
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
