"""PostgreSQL backend: the production store (psycopg 3, async pool).

Events arrive in bulk and are written with COPY, the fastest way into
PostgreSQL; the other tables are small and use `executemany` (pipelined by
psycopg). When TimescaleDB is available `events` becomes a hypertable on
`at` with a retention policy; otherwise it stays a plain table with a BRIN
index on time and `prune` does the retention. Connection-level failures are
raised as `StoreUnavailable`, so the writer knows to keep buffering.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from gateway.store.accounts import AccountTables
from gateway.store.base import (
    PRUNED_TABLES,
    ROW_TYPES,
    AttemptRow,
    ConfigVersion,
    DeadLetterRow,
    EventRow,
    InputRow,
    StepRow,
    StoreUnavailable,
    TableWrites,
    canonical_json,
    collect,
    row_getter,
)
from gateway.store.config_sources import ConfigSources
from gateway.store.history import HistoryReads
from gateway.store.migrations import (
    COLUMNS,
    LAYOUT_KEY,
    MIGRATION_LOCK,
    POSTGRES,
    SCHEMA_VERSION_DDL,
    TIMESCALE_PROBE,
    pending,
    time_layout_statements,
)
from gateway.store.snapshots import SnapshotTables

Conn = psycopg.AsyncConnection[Any]
EVENT_COLUMNS = ", ".join(name for name, _ in COLUMNS["events"])
COPY_EVENTS = f"COPY events ({EVENT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ["text", "text", "text", "int4", "timestamptz", "timestamptz", "text"]
TABLES = (*PRUNED_TABLES, "home_configs")
_event_values = row_getter("events")


class SqlRunner(Protocol):
    """The two things the time-layout step does with SQL: ask, and execute.

    A seam so a test can answer the TimescaleDB probe differently from the
    machine it runs on and see which statements would follow.
    """

    async def fetch_value(self, sql: str) -> Any: ...

    async def execute(self, sql: str) -> None: ...


class ConnectionRunner:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def fetch_value(self, sql: str) -> Any:
        cur = await self.conn.execute(sql)
        row = await cur.fetchone()
        return None if row is None else row[0]

    async def execute(self, sql: str) -> None:
        await self.conn.execute(sql)


async def apply_time_layout(runner: SqlRunner, retention_days: int) -> str:
    """Probe for TimescaleDB, then make `events` a hypertable or give it a BRIN index."""
    available = await runner.fetch_value(TIMESCALE_PROBE) is not None
    layout, statements = time_layout_statements(POSTGRES, available, retention_days)
    for statement in statements:
        await runner.execute(statement)
    return layout


TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "55", "57", "58"})
"""Connection, rollback (deadlock), resources, lock not available, operator intervention, system."""


def transient(exc: psycopg.Error) -> bool:
    """Worth retrying the same rows later (the database, not the rows, is the problem)?

    A server that has just failed over and is still read-only (25006) counts too.
    """
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):  # includes PoolTimeout
        return True
    state = exc.sqlstate or ""
    return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state == "25006"


async def _utc_session(conn: Conn) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


class PostgresStore(TableWrites, AccountTables, HistoryReads, SnapshotTables, ConfigSources):
    """An `AsyncConnectionPool` in autocommit mode; each write is one explicit transaction."""

    def __init__(
        self, url: str, *, event_retention_days: int = 90, min_size: int = 1, max_size: int = 4,
        timeout_s: float = 5.0, runner_wrapper: Callable[[SqlRunner], SqlRunner] | None = None,
    ) -> None:
        self.url = url
        self.event_retention_days = event_retention_days
        self.min_size, self.max_size, self.timeout_s = min_size, max_size, timeout_s
        self.runner_wrapper = runner_wrapper
        self.copy_rows = 0  # events written through COPY: proof of the bulk path, and a figure for status
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._layout = ""

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    @property
    def time_layout(self) -> str:
        return self._layout

    # -- plumbing ---------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise StoreUnavailable("postgresql store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            if transient(exc):
                raise StoreUnavailable(f"postgresql: {exc}") from exc
            raise

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    # -- the SQL seam (`gateway/store/sql.py`) ---------------------------------------------

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._fetch(sql.replace("?", "%s"), params)

    async def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        counts: list[int] = []
        async with self._connection() as conn, conn.transaction():
            for sql, params in statements:
                cur = await conn.execute(sql.replace("?", "%s"), params)
                counts.append(cur.rowcount)
        return counts

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(sql.replace("?", "%s"), rows)

    def in_list(self, column: str) -> str:
        return f"{column} = ANY(?)"

    def list_param(self, values: Sequence[str]) -> Any:
        return list(values)

    def ts_param(self, moment: datetime) -> Any:
        return moment

    def ts_value(self, value: Any) -> datetime:
        return value  # type: ignore[no-any-return]

    @property
    def unique_violation(self) -> type[Exception]:
        return psycopg.errors.UniqueViolation

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.url, min_size=self.min_size, max_size=self.max_size, open=False,
            kwargs={"autocommit": True}, configure=_utc_session,
            timeout=self.timeout_s, name="tecmon-store",  # no check per checkout: a round trip per batch;
            # a broken connection fails its write, is discarded, and the writer retries
        )
        try:
            await pool.open(wait=True, timeout=self.timeout_s)
            self._pool = pool
            self._layout = await self._migrate()
        except BaseException as exc:
            self._pool = None
            await pool.close()
            if isinstance(exc, psycopg.OperationalError):
                raise StoreUnavailable(f"postgresql: {exc}") from exc
            raise

    async def _migrate(self) -> str:
        """All pending migrations in one transaction, one process at a time (advisory lock)."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(POSTGRES.render(SCHEMA_VERSION_DDL))
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            applied = (await cur.fetchone() or (0,))[0]
            for migration in pending(applied):
                for statement in migration.statements_for("postgresql"):
                    await conn.execute(POSTGRES.render(statement))
                if migration.events_time_layout:
                    await self._time_layout(conn)
                await conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
                    (migration.version, migration.description, datetime.now(UTC)))
            cur = await conn.execute("SELECT value FROM store_meta WHERE key = %s", (LAYOUT_KEY,))
            row = await cur.fetchone()
            return str(row[0]) if row else ""

    async def _time_layout(self, conn: Conn) -> None:
        runner: SqlRunner = ConnectionRunner(conn)
        if self.runner_wrapper is not None:
            runner = self.runner_wrapper(runner)
        layout = await apply_time_layout(runner, self.event_retention_days)
        await conn.execute("INSERT INTO store_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                           "DO UPDATE SET value = excluded.value", (LAYOUT_KEY, layout))

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)

    # -- writes -----------------------------------------------------------------------

    async def write_events(self, rows: Sequence[EventRow]) -> None:
        """Binary COPY in one transaction: all the rows or none."""
        if not rows:
            return
        async with (self._connection() as conn, conn.transaction(), conn.cursor() as cur,
                    cur.copy(COPY_EVENTS) as copy):
            copy.set_types(COPY_TYPES)
            for row in rows:
                await copy.write_row(_event_values(row))
        self.copy_rows += len(rows)

    async def _write(self, table: str, rows: Sequence[Any]) -> None:
        if not rows:
            return
        values = [*map(row_getter(table), rows)]
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(POSTGRES.insert(table), values)

    # -- home configurations ----------------------------------------------------------

    async def save_home_config(self, home: str, config: Mapping[str, Any], by: str, why: str,
                               at: datetime) -> int:
        text = canonical_json(config)
        digest = hashlib.sha256(text.encode()).hexdigest()
        async with self._connection() as conn, conn.transaction():
            # Two savers of one home queue here instead of racing for the same version number.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"home_configs:{home}",))
            cur = await conn.execute("SELECT version, digest FROM home_configs WHERE home = %s "
                                     "ORDER BY version DESC LIMIT 1", (home,))
            last = await cur.fetchone()
            if last is not None and last[1] == digest:
                return int(last[0])
            version = (int(last[0]) if last else 0) + 1
            await conn.execute(
                "INSERT INTO home_configs (home, version, config_json, digest, saved_at, saved_by, why) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)", (home, version, text, digest, at, by, why))
            return version

    async def home_config_history(self, home: str) -> list[ConfigVersion]:
        rows = await self._fetch("SELECT home, version, config_json, saved_at, saved_by, why "
                                 "FROM home_configs WHERE home = %s ORDER BY version", (home,))
        return [ConfigVersion(*r) for r in rows]

    # -- reads ------------------------------------------------------------------------

    async def stream_events_since(
        self, since: datetime, chunk: int = 50_000
    ) -> AsyncIterator[list[EventRow]]:
        """One server-side cursor over the (received_at, id) index, fetched `chunk` rows at a time."""
        sql = POSTGRES.select_since("events")
        async with (self._connection() as conn, conn.transaction(),
                    conn.cursor(name="tecmon_events_since", binary=True) as cur):
            await cur.execute(sql, (since,))
            while rows := await cur.fetchmany(chunk):
                yield [EventRow(*r) for r in rows]

    async def stream_home_events_since(
        self, homes: Sequence[str], since: datetime, chunk: int = 50_000
    ) -> AsyncIterator[list[EventRow]]:
        """The same cursor, over only these homes' rows."""
        sql = (f"SELECT {EVENT_COLUMNS} FROM events WHERE home = ANY(%s) AND received_at >= %s "
               "ORDER BY received_at, id")
        async with (self._connection() as conn, conn.transaction(),
                    conn.cursor(name="tecmon_home_events_since", binary=True) as cur):
            await cur.execute(sql, (list(homes), since))
            while rows := await cur.fetchmany(chunk):
                yield [EventRow(*r) for r in rows]

    async def events_since(self, since: datetime) -> list[EventRow]:
        rows: list[EventRow] = await collect(self.stream_events_since(since))
        return rows

    async def _since(self, table: str, since: datetime) -> list[Any]:
        cls = ROW_TYPES[table]
        return [cls(*r) for r in await self._fetch(POSTGRES.select_since(table), (since,))]

    async def inputs_since(self, since: datetime) -> list[InputRow]:
        return await self._since("inputs", since)

    async def steps_since(self, since: datetime) -> list[StepRow]:
        return await self._since("alert_steps", since)

    async def attempts_since(self, since: datetime) -> list[AttemptRow]:
        return await self._since("notification_attempts", since)

    async def dead_letters_since(self, since: datetime) -> list[DeadLetterRow]:
        return await self._since("dead_letters", since)

    async def count_events(self) -> int:
        return int((await self._fetch("SELECT COUNT(*) FROM events"))[0][0])

    async def counts(self) -> dict[str, int]:
        union = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in TABLES)
        return {str(name): int(n) for name, n in await self._fetch(union)}

    # -- retention --------------------------------------------------------------------

    async def prune(self, events_before: datetime, alerts_before: datetime) -> dict[str, int]:
        done: dict[str, int] = {}
        async with self._connection() as conn, conn.transaction():
            for table in PRUNED_TABLES:
                cutoff = events_before if table == "events" else alerts_before
                cur = await conn.execute(POSTGRES.delete_before(table), (cutoff,))
                done[table] = cur.rowcount
        return done
