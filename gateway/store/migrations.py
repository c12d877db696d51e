"""One schema, one migration path, two dialects.

Migrations are numbered and applied in order, each recorded in
`schema_version`, so `open()` and `tecmon db upgrade` can run any number of
times and only do what is missing. Their SQL is written once with a few
placeholders (`{id}`, `{ts}`, `{bool}`, ...); the `Dialect` objects below are
the only place where SQLite and PostgreSQL differ. A migration's text is
history: it is never edited once released; a change is a new migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SCHEMA_VERSION_DDL = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at {ts} NOT NULL
)"""

MIGRATION_LOCK = 746_563_001
"""Key of the PostgreSQL advisory lock that lets one process at a time migrate."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """Everything that differs between the backends, and nothing else."""

    name: str
    types: Mapping[str, str]
    param: str

    def render(self, sql: str) -> str:
        return sql.format(**self.types)

    def insert(self, table: str) -> str:
        names = [name for name, _ in COLUMNS[table]]
        marks = ", ".join([self.param] * len(names))
        return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"

    def select_since(self, table: str) -> str:
        names = ", ".join(name for name, _ in COLUMNS[table])
        col = SINCE_COLUMN[table]
        return f"SELECT {names} FROM {table} WHERE {col} >= {self.param} ORDER BY {col}, id"

    def delete_before(self, table: str) -> str:
        return f"DELETE FROM {table} WHERE {PRUNE_COLUMN[table]} < {self.param}"


SQLITE = Dialect(
    "sqlite",
    {"id": "INTEGER PRIMARY KEY", "event_id": "INTEGER PRIMARY KEY", "ts": "TEXT",
     "bool": "INTEGER", "float": "REAL"},
    "?",
)
POSTGRES = Dialect(
    "postgresql",
    # events carries no primary key constraint so it can become a hypertable (whose unique
    # indexes must include the partitioning column); its identity column still numbers rows.
    {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
     "event_id": "BIGINT GENERATED ALWAYS AS IDENTITY", "ts": "TIMESTAMPTZ",
     "bool": "BOOLEAN", "float": "DOUBLE PRECISION"},
    "%s",
)

# The current logical columns, in the field order of the row dataclasses in `base.py`.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "events": (("home", "text"), ("device", "text"), ("kind", "text"), ("value", "int"),
               ("at", "ts"), ("received_at", "ts"), ("source", "text")),
    "inputs": (("home", "text"), ("kind", "text"), ("alert", "text"), ("by_name", "text"),
               ("outcome", "text"), ("at", "ts")),
    "alert_steps": (("step", "text"), ("alert", "text"), ("home", "text"), ("kind", "text"),
                    ("at", "ts"), ("contact", "text"), ("reason", "text"), ("late", "bool")),
    "notification_attempts": (("alert", "text"), ("contact", "text"), ("target", "text"),
                              ("attempt", "int"), ("ok", "bool"), ("error", "text"),
                              ("started_at", "ts"), ("seconds", "float")),
    "dead_letters": (("received_at", "ts"), ("topic", "text"), ("payload", "text"),
                     ("reason", "text"), ("code", "text")),
}
SINCE_COLUMN = {"events": "received_at", "inputs": "at", "alert_steps": "at",
                "notification_attempts": "started_at", "dead_letters": "received_at"}
PRUNE_COLUMN = {**SINCE_COLUMN, "events": "at"}  # retention follows the device's own time


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...] = ()
    events_time_layout: bool = False  # the backend also organises `events` in time (see below)
    by_dialect: Mapping[str, tuple[str, ...]] | None = None  # where the two must differ

    def statements_for(self, dialect: str) -> tuple[str, ...]:
        """The shared statements, then this backend's own."""
        return self.statements + (self.by_dialect or {}).get(dialect, ())


CORE_TABLES = (
    """CREATE TABLE IF NOT EXISTS events (
        id {event_id},
        home TEXT NOT NULL,
        device TEXT NOT NULL,
        kind TEXT NOT NULL,
        value INTEGER NOT NULL,
        at {ts} NOT NULL,
        received_at {ts} NOT NULL,
        source TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS events_received ON events (received_at, id)",
    """CREATE TABLE IF NOT EXISTS inputs (
        id {id},
        home TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('ack', 'resolve', 'delivery_failed')),
        alert TEXT NOT NULL,
        by_name TEXT NOT NULL,
        outcome TEXT,
        at {ts} NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS inputs_at ON inputs (at, id)",
    """CREATE TABLE IF NOT EXISTS alert_steps (
        id {id},
        step TEXT NOT NULL,
        alert TEXT NOT NULL,
        home TEXT NOT NULL,
        kind TEXT NOT NULL,
        at {ts} NOT NULL,
        contact TEXT,
        reason TEXT NOT NULL,
        late {bool} NOT NULL DEFAULT FALSE
    )""",
    "CREATE INDEX IF NOT EXISTS alert_steps_at ON alert_steps (at, id)",
    "CREATE INDEX IF NOT EXISTS alert_steps_alert ON alert_steps (alert)",
    """CREATE TABLE IF NOT EXISTS notification_attempts (
        id {id},
        alert TEXT NOT NULL,
        contact TEXT NOT NULL,
        target TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        ok {bool} NOT NULL,
        error TEXT,
        started_at {ts} NOT NULL,
        seconds {float} NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS notification_attempts_started ON notification_attempts (started_at, id)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id {id},
        received_at {ts} NOT NULL,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        code TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at, id)",
    """CREATE TABLE IF NOT EXISTS home_configs (
        home TEXT NOT NULL,
        version INTEGER NOT NULL,
        config_json TEXT NOT NULL,
        digest TEXT NOT NULL,
        saved_at {ts} NOT NULL,
        saved_by TEXT NOT NULL,
        why TEXT NOT NULL,
        PRIMARY KEY (home, version)
    )""",
    """CREATE TABLE IF NOT EXISTS store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)

ACCOUNT_TABLES = (
    """CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'carer', 'engineer')),
        homes TEXT NOT NULL,
        contact TEXT,
        password_hash TEXT NOT NULL,
        created_at {ts} NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS machine_tokens (
        id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at {ts} NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS used_ack_links (
        token_id TEXT PRIMARY KEY,
        alert TEXT NOT NULL,
        contact TEXT NOT NULL,
        used_at {ts} NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS managed_homes (
        home TEXT PRIMARY KEY,
        managed_since {ts} NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_home_received ON events (home, received_at)",
    "CREATE INDEX IF NOT EXISTS alert_steps_home_at ON alert_steps (home, at)",
    "CREATE INDEX IF NOT EXISTS inputs_home_at ON inputs (home, at)",
    "CREATE INDEX IF NOT EXISTS notification_attempts_alert ON notification_attempts (alert)",
)

# Company mode is a recorded input. SQLite cannot change a CHECK in place: the table is rebuilt.
_INPUT_KINDS_4 = "('ack', 'resolve', 'delivery_failed', 'company')"
COMPANY_INPUTS = {
    "sqlite": (
        f"""CREATE TABLE inputs_v4 (
        id INTEGER PRIMARY KEY,
        home TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN {_INPUT_KINDS_4}),
        alert TEXT NOT NULL,
        by_name TEXT NOT NULL,
        outcome TEXT,
        at TEXT NOT NULL
    )""",
        "INSERT INTO inputs_v4 (id, home, kind, alert, by_name, outcome, at) "
        "SELECT id, home, kind, alert, by_name, outcome, at FROM inputs",
        "DROP TABLE inputs",
        "ALTER TABLE inputs_v4 RENAME TO inputs",
        "CREATE INDEX IF NOT EXISTS inputs_at ON inputs (at, id)",
        "CREATE INDEX IF NOT EXISTS inputs_home_at ON inputs (home, at)",
    ),
    "postgresql": (
        "ALTER TABLE inputs DROP CONSTRAINT IF EXISTS inputs_kind_check",
        f"ALTER TABLE inputs ADD CONSTRAINT inputs_kind_check CHECK (kind IN {_INPUT_KINDS_4})",
    ),
}

# Each home's engine state, so a restart replays only what came after it (gateway/recovery.py).
# One row per home, replaced by every newer snapshot; `engine` and `routine` say what it fits.
SNAPSHOT_TABLES = (
    """CREATE TABLE IF NOT EXISTS home_snapshots (
        home TEXT PRIMARY KEY,
        engine TEXT NOT NULL,
        routine TEXT NOT NULL,
        through {ts} NOT NULL,
        state TEXT NOT NULL
    )""",
)

# Beyond one machine (`ingest: nats`): who owns each partition, under which epoch, and how far
# its stream has been applied. Every state-changing write of a partition updates its row with
# `WHERE epoch = <the writer's epoch>` first, in the same transaction: a fenced writer changes nothing.
CLUSTER_TABLES = (
    """CREATE TABLE IF NOT EXISTS partition_leases (
        partition INTEGER PRIMARY KEY,
        epoch BIGINT NOT NULL DEFAULT 0,
        owner TEXT,
        renewed_at TIMESTAMPTZ,
        checkpoint BIGINT NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS cluster_instances (
        instance TEXT PRIMARY KEY,
        seen_at TIMESTAMPTZ NOT NULL,
        api_url TEXT
    )""",
)

# A digest of the file (and of the validation code) each configuration version was read from:
# a start compares them in one query instead of saving 100,000 homes again (gateway/store/config_sources.py).
CONFIG_SOURCES = ("ALTER TABLE home_configs ADD COLUMN source_digest TEXT",)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables: events, inputs, alert steps, attempts, dead letters, home configs",
              CORE_TABLES),
    Migration(2, "events organised in time (hypertable, BRIN or b-tree) with retention",
              events_time_layout=True),
    Migration(3, "accounts, machine tokens, used acknowledgement links, homes managed in the database; "
              "per-home indexes for history", ACCOUNT_TABLES),
    Migration(4, "company mode (someone is with the person) as a recorded input",
              by_dialect=COMPANY_INPUTS),
    Migration(5, "engine state snapshots per home, versioned by engine and routine", SNAPSHOT_TABLES),
    Migration(6, "partition leases (owner, fencing epoch, checkpoint) and cluster instances; "
              "PostgreSQL only (ingest: nats)", by_dialect={"postgresql": CLUSTER_TABLES}),
    Migration(7, "the home file each configuration version was read from (source_digest): a start "
              "saves again only the files that changed", CONFIG_SOURCES),
)
LATEST = MIGRATIONS[-1].version


def pending(applied: int) -> list[Migration]:
    """Migrations newer than the recorded version, oldest first."""
    return [m for m in MIGRATIONS if m.version > applied]


TIMESCALE_PROBE = "select 1 from pg_available_extensions where name='timescaledb'"
LAYOUT_KEY = "events_time_layout"


def time_layout_statements(dialect: Dialect, timescale: bool, retention_days: int) -> tuple[str, list[str]]:
    """The statements that organise `events` by time, and the layout's name.

    With TimescaleDB the database drops old chunks itself (retention policy);
    otherwise a BRIN index keeps the time index tiny for an append-only table
    and `prune` does the retention. SQLite gets a plain index.
    """
    if dialect.name == "sqlite":
        return "btree", ["CREATE INDEX IF NOT EXISTS events_at ON events (at)"]
    if not timescale:
        return "brin", ["CREATE INDEX IF NOT EXISTS events_at_brin ON events USING brin (at)"]
    days = int(retention_days)
    return "hypertable", [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        "SELECT create_hypertable('events', 'at', chunk_time_interval => INTERVAL '1 day', "
        "if_not_exists => TRUE, migrate_data => TRUE)",
        f"SELECT add_retention_policy('events', drop_after => INTERVAL '{days} days', if_not_exists => TRUE)",
    ]
