"""Stores: where tasks and their events live. SQLite is the embedded default."""

from __future__ import annotations

from tasky.store.base import Change, Event, Store, TaskFilter, TaskPage


def open_store(url: str) -> Store:
    """Build the store named by `url`: a file path (SQLite) or `postgresql://...`."""
    if url.startswith(("postgres://", "postgresql://")):
        from tasky.errors import ConfigurationError

        # TODO: the PostgreSQL store (cluster mode) is not built yet; the
        # protocol in store/base.py is what it must implement.
        raise ConfigurationError("the PostgreSQL store is not available yet; use a SQLite file path for --store")
    from tasky.store.sqlite import SQLiteStore

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SQLiteStore(path)


__all__ = ["Change", "Event", "Store", "TaskFilter", "TaskPage", "open_store"]
