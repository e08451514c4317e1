"""Versioned schema migrations, applied in order when a store opens.

Each file `migrations/NNNN_name.sql` is one version. A store records the
versions it applied in `schema_migrations` and applies the missing ones in
one transaction each, so a crash mid-migration leaves the previous version.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from importlib import resources

from tasky.errors import ConfigurationError

logger = logging.getLogger(__name__)

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def load_migrations() -> list[tuple[int, str, str]]:
    """Return (version, file name, SQL) for every packaged migration, oldest first."""
    folder = resources.files("tasky.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    versions = [version for version, _, _ in found]
    clashes = sorted({version for version in versions if versions.count(version) > 1})
    if clashes:
        raise ConfigurationError(f"two migration files share the version number {clashes[0]:04d}; renumber one of them")
    return sorted(found)


def apply_sqlite_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations that the database lacks; return the versions applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    migrations = load_migrations()
    newest_known = migrations[-1][0] if migrations else 0
    if applied and max(applied) > newest_known:
        raise ConfigurationError(
            f"the store has schema version {max(applied)}, newer than this tasky knows ({newest_known}); upgrade tasky"
        )
    done = []
    for version, name, sql in migrations:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, time.time()))
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        logger.info("applied schema migration %s", name)
        done.append(version)
    return done


def _split_statements(sql: str) -> list[str]:
    # The migration files hold no semicolons inside strings or triggers, so a
    # plain split is enough; executescript() would commit our transaction.
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
