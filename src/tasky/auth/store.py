"""Persistence of tokens, signing keys and audit entries in the SQLite store.

These tables live in the same file as the tasks (migration 0010_auth), so
`tasky token create --store PATH` works without a running server and a
running server reads the change at its next token read. Writes go through
the store's single writer thread; reads use its reader connection.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

import orjson

from tasky.audit import AuditEntry, AuditFilter
from tasky.auth.roles import Role
from tasky.auth.tokens import Token, TokenDigest, check_name, digest_of, new_secret
from tasky.errors import ConfigurationError, ConflictError, NotFoundError
from tasky.store.rows import to_datetime
from tasky.store.sqlite import SQLiteStore

SIGNING_KEY_BYTES = 32


class TokenNotFound(NotFoundError):
    code = "token_not_found"


class TokenNameTaken(ConflictError):
    code = "token_exists"


class AuthStore:
    """Tokens, signing keys and the audit log on top of an open `SQLiteStore`."""

    def __init__(self, store: Any) -> None:
        if not isinstance(store, SQLiteStore):
            # NOTE: only the SQLite store has the auth tables; another store
            # needs its own implementation of these methods.
            raise ConfigurationError(f"API tokens need the SQLite store, got {type(store).__name__}")
        self.store = store

    # Tokens ------------------------------------------------------------------

    async def create_token(self, name: str, role: Role) -> tuple[Token, str]:
        """Store a new token; return it and its secret, which is never stored or shown again."""
        check_name(name)
        secret = new_secret()
        digest = digest_of(secret)

        def insert(conn: sqlite3.Connection) -> Token:
            now = time.time()
            try:
                conn.execute(
                    "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
                    (name, role.value, digest, now),
                )
            except sqlite3.IntegrityError:
                raise TokenNameTaken(
                    f"a token named {name!r} already exists; revoke it first or choose another name",
                    detail={"name": name},
                ) from None
            return Token(name=name, role=role, created_at=to_datetime(now))  # type: ignore[arg-type]

        return await self.store._write(insert), secret

    async def list_tokens(self) -> list[Token]:
        rows = self.store._read("SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY id")
        return [_token_from_row(row) for row in rows]

    async def active_tokens(self) -> list[TokenDigest]:
        rows = self.store._read("SELECT name, role, token_hash FROM api_tokens WHERE revoked_at IS NULL")
        return [TokenDigest(name=row["name"], role=Role(row["role"]), digest=row["token_hash"]) for row in rows]

    async def revoke_token(self, name: str) -> Token:
        """Revoke the active token named `name`; raise `TokenNotFound` when there is none."""

        def update(conn: sqlite3.Connection) -> Token:
            row = conn.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
                "RETURNING name, role, created_at, revoked_at",
                (time.time(), name),
            ).fetchone()
            if row is None:
                raise TokenNotFound(
                    f"no active token named {name!r}; list the tokens with 'tasky token list'",
                    detail={"name": name},
                )
            return _token_from_row(row)

        return await self.store._write(update)

    # Signing keys ------------------------------------------------------------

    async def signing_key(self, purpose: str) -> bytes:
        """Return the key for `purpose`, creating it on first use; every node sharing the store gets the same key."""
        rows = self.store._read("SELECT secret FROM auth_keys WHERE purpose = ?", (purpose,))
        if rows:
            return bytes(rows[0]["secret"])

        def insert(conn: sqlite3.Connection) -> bytes:
            conn.execute(
                "INSERT OR IGNORE INTO auth_keys (purpose, secret, created_at) VALUES (?, ?, ?)",
                (purpose, secrets.token_bytes(SIGNING_KEY_BYTES), time.time()),
            )
            row = conn.execute("SELECT secret FROM auth_keys WHERE purpose = ?", (purpose,)).fetchone()
            return bytes(row["secret"])

        return await self.store._write(insert)

    # Audit log ---------------------------------------------------------------

    def record(self, entry: AuditEntry) -> None:
        """Queue `entry` for the next group commit and return at once."""
        detail = orjson.dumps(entry.detail).decode() if entry.detail is not None else None
        values = (
            entry.at, entry.token, entry.client, entry.method, entry.path, entry.action,
            entry.task_id, entry.worker, detail, entry.status, entry.outcome, entry.error_code,
        )  # fmt: skip

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO audit_log (at, token, client, method, path, action, task_id, worker, detail, "
                "status, outcome, error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

        self.store._submit(insert)

    async def list_audit(self, filters: AuditFilter, *, limit: int, before_id: int | None) -> tuple[list[AuditEntry], int | None]:
        """Return a page of entries, newest first, and the id to pass as `before_id` for the next page."""
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("token", "action", "task_id", "worker"):
            value = getattr(filters, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.store._read(f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ?", [*params, limit + 1])
        entries = [_entry_from_row(row) for row in rows[:limit]]
        next_id = entries[-1].id if len(rows) > limit else None
        return entries, next_id


def _token_from_row(row: sqlite3.Row) -> Token:
    return Token(
        name=row["name"],
        role=Role(row["role"]),
        created_at=to_datetime(row["created_at"]),  # type: ignore[arg-type]
        revoked_at=to_datetime(row["revoked_at"]),
    )


def _entry_from_row(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        token=row["token"],
        client=row["client"],
        method=row["method"],
        path=row["path"],
        action=row["action"],
        task_id=row["task_id"],
        worker=row["worker"],
        detail=orjson.loads(row["detail"]) if row["detail"] is not None else None,
        status=row["status"],
        outcome=row["outcome"],
        error_code=row["error_code"],
    )
