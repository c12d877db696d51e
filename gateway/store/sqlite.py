"""SQLite backend: the embedded default (`sqlite:///tecmon.db`).

The stdlib driver blocks, so one worker thread owns the one connection and
every call is handed to it; the event loop (and so the safety path) never
waits on disk. WAL mode lets readers such as `tecmon db config-history` look
at the file while the service writes to it. Timestamps are stored as UTC
ISO-8601 text with a fixed width, so text order is time order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

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
    SCHEMA_VERSION_DDL,
    SQLITE,
    pending,
    time_layout_statements,
)
from gateway.store.snapshots import SnapshotTables

T = TypeVar("T")
TABLES = (*PRUNED_TABLES, "home_configs")


def ts_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _encoder(table: str) -> Callable[[Any], tuple[Any, ...]]:
    get = row_getter(table)
    kinds = [kind for _, kind in COLUMNS[table]]
    conv: list[Callable[[Any], Any] | None] = [
        ts_text if k == "ts" else (int if k == "bool" else None) for k in kinds
    ]

    def encode(row: Any) -> tuple[Any, ...]:
        return tuple(v if c is None or v is None else c(v) for c, v in zip(conv, get(row), strict=True))

    return encode


def _decoder(table: str) -> Callable[[Sequence[Any]], Any]:
    cls = ROW_TYPES[table]
    kinds = [kind for _, kind in COLUMNS[table]]
    conv: list[Callable[[Any], Any] | None] = [
        datetime.fromisoformat if k == "ts" else (bool if k == "bool" else None) for k in kinds
    ]

    def decode(values: Sequence[Any]) -> Any:
        return cls(*(v if c is None or v is None else c(v) for c, v in zip(conv, values, strict=True)))

    return decode


_NAMES = ", ".join(name for name, _ in COLUMNS["events"])
EVENTS_FIRST_PAGE = f"SELECT {_NAMES}, id FROM events WHERE received_at >= ? ORDER BY received_at, id LIMIT ?"
EVENTS_NEXT_PAGE = (  # a row-value comparison: an index SEARCH per page (an OR would scan from the start)
    f"SELECT {_NAMES}, id FROM events WHERE (received_at, id) > (?, ?) ORDER BY received_at, id LIMIT ?"
)
_OF_HOMES = "home IN (SELECT value FROM json_each(?)) AND "
HOME_EVENTS_FIRST_PAGE = EVENTS_FIRST_PAGE.replace("WHERE ", "WHERE " + _OF_HOMES)
HOME_EVENTS_NEXT_PAGE = EVENTS_NEXT_PAGE.replace("WHERE ", "WHERE " + _OF_HOMES)
ENCODE = {table: _encoder(table) for table in COLUMNS}
DECODE = {table: _decoder(table) for table in COLUMNS}


class SqliteStore(TableWrites, AccountTables, HistoryReads, SnapshotTables, ConfigSources):
    """One connection, one thread, `executemany` in one transaction per batch."""

    def __init__(self, path: str, *, event_retention_days: int = 90) -> None:
        self.path = path
        self.event_retention_days = event_retention_days
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._layout = ""

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def time_layout(self) -> str:
        return self._layout

    # -- plumbing ---------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None or self._db is None:
            raise StoreUnavailable(f"store {self.path} is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.OperationalError as exc:  # locked, disk I/O, cannot open: try later
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
        except sqlite3.ProgrammingError as exc:
            if "closed" not in str(exc):  # a mistake in the SQL is a bug, not an outage
                raise
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.execute(sql, params).fetchall()

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._run(self._fetchall, sql, params)

    # -- the SQL seam (`gateway/store/sql.py`) ---------------------------------------------

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._query(sql, params)

    async def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        def run(db: sqlite3.Connection) -> list[int]:
            return [db.execute(sql, params).rowcount for sql, params in statements]

        return await self._run(self._transaction, run, True)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._run(self._transaction, lambda db: db.executemany(sql, rows), True)

    def in_list(self, column: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def list_param(self, values: Sequence[str]) -> Any:
        return json.dumps(list(values))

    def ts_param(self, moment: datetime) -> Any:
        return ts_text(moment)

    def ts_value(self, value: Any) -> datetime:
        return datetime.fromisoformat(value)

    @property
    def unique_violation(self) -> type[Exception]:
        return sqlite3.IntegrityError

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:  # closed while this call waited for the store's thread
            raise StoreUnavailable(f"store {self.path} is not open")
        return self._db

    def _transaction(self, work: Callable[[sqlite3.Connection], T], immediate: bool = False) -> T:
        db = self.db
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tecmon-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._db = await loop.run_in_executor(self._thread, self._connect)
            self._layout = await self._run(self._transaction, self._migrate, True)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)  # transactions are explicit
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a crash of the process
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def _migrate(self, db: sqlite3.Connection) -> str:
        db.execute(SQLITE.render(SCHEMA_VERSION_DDL))
        applied = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        for migration in pending(applied):
            for statement in migration.statements_for("sqlite"):
                db.execute(SQLITE.render(statement))
            if migration.events_time_layout:
                layout, statements = time_layout_statements(SQLITE, False, self.event_retention_days)
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                           "DO UPDATE SET value = excluded.value", (LAYOUT_KEY, layout))
            db.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                       (migration.version, migration.description, ts_text(datetime.now(UTC))))
        row = db.execute("SELECT value FROM store_meta WHERE key = ?", (LAYOUT_KEY,)).fetchone()
        return str(row[0]) if row else ""

    async def close(self) -> None:
        thread, db = self._thread, self._db
        self._thread = self._db = None
        if thread is not None:
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(thread, db.close)
            thread.shutdown(wait=True)

    async def schema_version(self) -> int:
        rows = await self._query("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)

    # -- writes -----------------------------------------------------------------------

    async def _write(self, table: str, rows: Sequence[Any]) -> None:
        if not rows:
            return
        encode = ENCODE[table]
        values = [encode(row) for row in rows]
        sql = SQLITE.insert(table)
        await self._run(self._transaction, lambda db: db.executemany(sql, values))

    async def write_events(self, rows: Sequence[EventRow]) -> None:
        await self._write("events", rows)

    # -- home configurations ----------------------------------------------------------

    async def save_home_config(self, home: str, config: Mapping[str, Any], by: str, why: str,
                               at: datetime) -> int:
        text = canonical_json(config)
        digest = hashlib.sha256(text.encode()).hexdigest()

        def save(db: sqlite3.Connection) -> int:
            last = db.execute("SELECT version, digest FROM home_configs WHERE home = ? "
                              "ORDER BY version DESC LIMIT 1", (home,)).fetchone()
            if last is not None and last[1] == digest:
                return int(last[0])
            version = (int(last[0]) if last else 0) + 1
            values = (home, version, text, digest, ts_text(at), by, why)
            db.execute("INSERT INTO home_configs (home, version, config_json, digest, saved_at, saved_by, "
                       "why) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
            return version

        return await self._run(self._transaction, save, True)

    async def home_config_history(self, home: str) -> list[ConfigVersion]:
        rows = await self._query("SELECT home, version, config_json, saved_at, saved_by, why "
                                 "FROM home_configs WHERE home = ? ORDER BY version", (home,))
        return [ConfigVersion(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4], r[5]) for r in rows]

    # -- reads ------------------------------------------------------------------------

    async def stream_events_since(
        self, since: datetime, chunk: int = 50_000
    ) -> AsyncIterator[list[EventRow]]:
        """Keyset pages on the (received_at, id) index: each page is one short query."""
        async for rows in self._pages(EVENTS_FIRST_PAGE, EVENTS_NEXT_PAGE, (), since, chunk):
            yield rows

    async def stream_home_events_since(
        self, homes: Sequence[str], since: datetime, chunk: int = 50_000
    ) -> AsyncIterator[list[EventRow]]:
        """The same pages, of only these homes' rows."""
        of = (json.dumps(list(homes)),)
        async for rows in self._pages(HOME_EVENTS_FIRST_PAGE, HOME_EVENTS_NEXT_PAGE, of, since, chunk):
            yield rows

    async def _pages(self, first: str, then: str, of: tuple[Any, ...], since: datetime,
                     chunk: int) -> AsyncIterator[list[EventRow]]:
        page = await self._query(first, (*of, ts_text(since), chunk))
        decode = DECODE["events"]
        while page:
            yield [decode(r[:-1]) for r in page]
            if len(page) < chunk:
                return
            last_at, last_id = page[-1][5], page[-1][-1]
            page = await self._query(then, (*of, last_at, last_id, chunk))

    async def events_since(self, since: datetime) -> list[EventRow]:
        rows: list[EventRow] = await collect(self.stream_events_since(since))
        return rows

    async def _since(self, table: str, since: datetime) -> list[Any]:
        sql = SQLITE.select_since(table)
        rows = await self._query(sql, (ts_text(since),))
        decode = DECODE[table]
        return [decode(r) for r in rows]

    async def inputs_since(self, since: datetime) -> list[InputRow]:
        return await self._since("inputs", since)

    async def steps_since(self, since: datetime) -> list[StepRow]:
        return await self._since("alert_steps", since)

    async def attempts_since(self, since: datetime) -> list[AttemptRow]:
        return await self._since("notification_attempts", since)

    async def dead_letters_since(self, since: datetime) -> list[DeadLetterRow]:
        return await self._since("dead_letters", since)

    async def count_events(self) -> int:
        return int((await self._query("SELECT COUNT(*) FROM events"))[0][0])

    async def counts(self) -> dict[str, int]:
        def count(db: sqlite3.Connection) -> dict[str, int]:
            return {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES}

        return await self._run(count, self.db)

    # -- retention --------------------------------------------------------------------

    async def prune(self, events_before: datetime, alerts_before: datetime) -> dict[str, int]:
        def delete(db: sqlite3.Connection) -> dict[str, int]:
            done: dict[str, int] = {}
            for table in PRUNED_TABLES:
                cutoff = events_before if table == "events" else alerts_before
                done[table] = db.execute(SQLITE.delete_before(table), (ts_text(cutoff),)).rowcount
            return done

        return await self._run(self._transaction, delete, True)
