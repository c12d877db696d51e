"""Durable storage for tecmon: one `Store` interface, SQLite and PostgreSQL backends.

`open_store(url)` picks the backend from the database URL in the settings:
`sqlite:///tecmon.db` (relative path), `sqlite:////var/lib/tecmon/tecmon.db`
(absolute), `sqlite:///:memory:`, or `postgresql://user@host:5432/db`.
"""

from __future__ import annotations

from gateway.store.base import (
    AttemptRow,
    ConfigVersion,
    DeadLetterRow,
    EventRow,
    InputRow,
    StepRow,
    Store,
    StoreUnavailable,
)

__all__ = [
    "AttemptRow", "ConfigVersion", "DeadLetterRow", "EventRow", "InputRow", "StepRow", "Store",
    "StoreUnavailable", "open_store", "sqlite_path",
]

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> str:
    """`sqlite:///a.db` -> `a.db`, `sqlite:////abs/a.db` -> `/abs/a.db`, `sqlite:///:memory:`."""
    if not url.startswith(SQLITE_PREFIX) or url == SQLITE_PREFIX:
        raise ValueError(f"database_url: expected sqlite:///PATH, got {url!r}")
    return url[len(SQLITE_PREFIX):]


def open_store(url: str, *, event_retention_days: int = 90) -> Store:
    """The backend for `url`, not yet opened (call `await store.open()`, which also migrates).

    `event_retention_days` is used where the database does retention itself
    (a TimescaleDB retention policy); elsewhere `prune` applies it.
    """
    if url.startswith(SQLITE_PREFIX):
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url), event_retention_days=event_retention_days)
    if url.startswith(POSTGRES_PREFIXES):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url, event_retention_days=event_retention_days)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(f"database_url: unsupported scheme {scheme!r}; use sqlite:///PATH or postgresql://...")
