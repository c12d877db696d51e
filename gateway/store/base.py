"""The storage interface and the rows it keeps.

A care record must not lose what happened: every sensor event, every carer
input and every alert lifecycle step is kept, and the runtime rebuilds each
home's state from them after a restart. Rows are plain frozen data so the
writer can buffer them in memory while the database is away, and so both
backends (SQLite, PostgreSQL) can be held to one contract.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from alerts.events import Acknowledge, DeliveryFailed, EventKind, ResolveAlert, SensorEvent, SetCompany

if TYPE_CHECKING:
    from gateway.store.accounts import UserRow
    from gateway.store.config_sources import ConfigToSave

InputKind = Literal["ack", "resolve", "delivery_failed", "company"]
_KINDS = {kind.value: kind for kind in EventKind}  # a dict look-up, not an enum call, per row read back
INPUT_KINDS: tuple[InputKind, ...] = ("ack", "resolve", "delivery_failed", "company")


class StoreUnavailable(RuntimeError):
    """The database cannot be reached (down, restarting, locked); worth retrying later.

    Backends raise this for connection-level trouble only. Any other exception
    from a write means the rows themselves were refused, and retrying the same
    rows would fail again.
    """


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class EventRow:
    """One canonical sensor event; `value` is 0/1 for booleans or a battery percentage.

    `received_at` is when the gateway got it, which is the order state is
    rebuilt in; `at` is the device's own time and what retention goes by.
    """

    home: str
    device: str
    kind: str
    value: int
    at: datetime
    received_at: datetime
    source: str = ""

    def __post_init__(self) -> None:
        # One cheap test on the common path: millions of rows are read back at start.
        if self.at.tzinfo is None or self.received_at.tzinfo is None:
            _aware("EventRow.at", self.at)
            _aware("EventRow.received_at", self.received_at)

    @classmethod
    def from_event(cls, event: SensorEvent, received_at: datetime) -> EventRow:
        return cls(event.home, event.device, str(event.kind), int(event.value), event.at,
                   received_at, event.source)

    def to_event(self) -> SensorEvent:
        """Back to the engine's input; booleans come back as bool, battery as int."""
        kind = _KINDS[self.kind]
        value: bool | int = self.value if kind is EventKind.BATTERY else bool(self.value)
        return SensorEvent(self.home, self.device, kind, value, self.at, self.source)


@dataclass(frozen=True, slots=True)
class InputRow:
    """What a person did with an alert (or a delivery that failed), needed to rebuild state.

    For `delivery_failed`, `by` is the contact who could not be reached. For
    `company`, `outcome` is `on` or `off` and `alert` is empty.
    """

    home: str
    kind: InputKind
    alert: str
    by: str
    outcome: str | None
    at: datetime

    def __post_init__(self) -> None:
        _aware("InputRow.at", self.at)
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"InputRow.kind must be one of {INPUT_KINDS}, got {self.kind!r}")

    @classmethod
    def from_input(cls, home: str, inp: Acknowledge | ResolveAlert | DeliveryFailed | SetCompany,
                   at: datetime) -> InputRow:
        if isinstance(inp, SetCompany):
            return cls(home, "company", "", inp.by, "on" if inp.on else "off", at)
        if isinstance(inp, Acknowledge):
            return cls(home, "ack", inp.alert, inp.by, None, at)
        if isinstance(inp, ResolveAlert):
            return cls(home, "resolve", inp.alert, inp.by, inp.outcome, at)
        return cls(home, "delivery_failed", inp.alert, inp.contact, None, at)

    def to_input(self) -> Acknowledge | ResolveAlert | DeliveryFailed | SetCompany:
        if self.kind == "company":
            return SetCompany(self.outcome == "on", self.by)
        if self.kind == "ack":
            return Acknowledge(self.alert, self.by)
        if self.kind == "resolve":
            return ResolveAlert(self.alert, self.by, self.outcome or "")
        return DeliveryFailed(self.alert, self.by)


@dataclass(frozen=True, slots=True)
class StepRow:
    """One alert lifecycle step: the `tecmon replay` line, plus whether it came late."""

    step: str
    alert: str
    home: str
    kind: str
    at: datetime
    contact: str | None
    reason: str
    late: bool = False

    def __post_init__(self) -> None:
        _aware("StepRow.at", self.at)

    @classmethod
    def from_line(cls, line: Mapping[str, Any], late: bool = False) -> StepRow:
        """From `gateway.replay.lifecycle_line(decision)`."""
        return cls(line["step"], line["alert"], line["home"], line["kind"],
                   datetime.fromisoformat(line["at"]), line["contact"], line["reason"], late)


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One notification attempt on one channel; `target` is already redacted."""

    alert: str
    contact: str
    target: str
    attempt: int
    ok: bool
    error: str | None
    started_at: datetime
    seconds: float

    def __post_init__(self) -> None:
        _aware("AttemptRow.started_at", self.started_at)

    @classmethod
    def from_attempt(cls, a: Any) -> AttemptRow:
        """From `alerts.notify.DeliveryAttempt` (duck-typed to keep storage free of the notifier)."""
        return cls(a.alert_id, a.contact, a.target, a.attempt, a.ok, a.error, a.started_at, a.seconds)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A message kept for inspection instead of applied (`gateway.runtime.DeadLetterRecord`)."""

    received_at: datetime
    topic: str
    payload: str
    reason: str
    code: str

    def __post_init__(self) -> None:
        _aware("DeadLetterRow.received_at", self.received_at)

    @classmethod
    def from_record(cls, r: Any) -> DeadLetterRow:
        return cls(r.received_at, r.topic, r.payload, r.reason, r.code)


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One saved version of a home's configuration, with who saved it, when and why."""

    home: str
    version: int
    config_json: str
    saved_at: datetime
    saved_by: str
    why: str

    @property
    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.config_json)
        return loaded


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A home's engine state (`alerts.snapshot` JSON) as it was at `through`.

    Every event, input and step of the home up to `through` is in `state`;
    recovery replays only what was recorded after it. `engine` and `routine`
    say which engine code and which configuration it was taken with: a
    snapshot that no longer fits either is ignored and the home replayed in full.
    """

    home: str
    engine: str
    routine: str
    through: datetime
    state: str

    def __post_init__(self) -> None:
        _aware("SnapshotRow.through", self.through)


def canonical_json(config: Mapping[str, Any]) -> str:
    """One spelling per content, so "changed?" is a string comparison on either backend."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


PRUNED_TABLES = ("events", "inputs", "alert_steps", "notification_attempts", "dead_letters")


class TableWrites:
    """The per-table writes of the `Store` interface, over each backend's one `_write`."""

    async def _write(self, table: str, rows: Sequence[Any]) -> None:
        raise NotImplementedError

    async def write_inputs(self, rows: Sequence[InputRow]) -> None:
        await self._write("inputs", rows)

    async def write_steps(self, rows: Sequence[StepRow]) -> None:
        await self._write("alert_steps", rows)

    async def write_attempts(self, rows: Sequence[AttemptRow]) -> None:
        await self._write("notification_attempts", rows)

    async def write_dead_letters(self, rows: Sequence[DeadLetterRow]) -> None:
        await self._write("dead_letters", rows)


class Store(Protocol):
    """What the service needs from a database; both backends pass the same contract tests."""

    @property
    def is_open(self) -> bool: ...

    @property
    def time_layout(self) -> str:
        """How events are organised in time: `hypertable`, `brin` or `btree`."""
        ...

    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent)."""

    async def close(self) -> None: ...

    async def write_events(self, rows: Sequence[EventRow]) -> None: ...

    async def write_inputs(self, rows: Sequence[InputRow]) -> None: ...

    async def write_steps(self, rows: Sequence[StepRow]) -> None: ...

    async def write_attempts(self, rows: Sequence[AttemptRow]) -> None: ...

    async def write_dead_letters(self, rows: Sequence[DeadLetterRow]) -> None: ...

    async def save_home_config(self, home: str, config: Mapping[str, Any], by: str, why: str,
                               at: datetime) -> int:
        """Keep a new version only when the content changed; return the current version number."""
        ...

    async def home_config_history(self, home: str) -> list[ConfigVersion]: ...

    async def config_sources(self) -> dict[str, str]:
        """Each home's latest version's source digest, where it records one (migration 7)."""
        ...

    async def save_home_configs(self, items: Sequence[ConfigToSave]) -> list[int]:
        """Many `save_home_config` at once, with each file's source digest."""
        ...

    def stream_events_since(self, since: datetime, chunk: int = 50_000) -> AsyncIterator[list[EventRow]]:
        """Events received at or after `since`, ordered by (received_at, id), in chunks."""
        ...

    async def events_since(self, since: datetime) -> list[EventRow]: ...

    async def inputs_since(self, since: datetime) -> list[InputRow]: ...

    async def steps_since(self, since: datetime) -> list[StepRow]: ...

    async def attempts_since(self, since: datetime) -> list[AttemptRow]: ...

    async def dead_letters_since(self, since: datetime) -> list[DeadLetterRow]: ...

    async def count_events(self) -> int: ...

    # Engine snapshots (`gateway/store/snapshots.py`, one implementation).

    async def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        """Keep each row as its home's snapshot, replacing the one before."""
        ...

    async def confirm_snapshots(self, homes: Sequence[str], through: datetime) -> None:
        """These homes' snapshots still hold at `through` (their state has not changed since)."""
        ...

    async def snapshots(self) -> list[SnapshotRow]: ...

    def stream_snapshots(self, chunk: int = 10_000) -> AsyncIterator[list[SnapshotRow]]:
        """Every home's snapshot, in pages."""
        ...

    def stream_home_events_since(self, homes: Sequence[str], since: datetime,
                                 chunk: int = 50_000) -> AsyncIterator[list[EventRow]]:
        """Only these homes' events received at or after `since`, ordered by (received_at, id)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Rows per table, for `tecmon db status`."""
        ...

    async def schema_version(self) -> int: ...

    async def prune(self, events_before: datetime, alerts_before: datetime) -> dict[str, int]:
        """Delete raw events older than `events_before` and alert records older than
        `alerts_before`; return rows deleted per table. Home configurations are never pruned."""
        ...

    # Accounts, links and managed homes (`gateway/store/accounts.py`, one implementation).

    async def add_user(self, user: UserRow) -> None: ...
    async def get_user(self, name: str) -> UserRow | None: ...
    async def list_users(self) -> list[UserRow]: ...
    async def remove_user(self, name: str) -> bool: ...
    async def set_user_homes(self, name: str, homes: tuple[str, ...]) -> None: ...
    async def set_password_hash(self, name: str, digest: str) -> None: ...
    async def add_machine_token(self, token_id: str, user: str, digest: str, at: datetime) -> None: ...
    async def machine_token(self, token_id: str) -> tuple[str, str] | None: ...
    async def use_ack_link(self, token_id: str, alert: str, contact: str, at: datetime) -> bool: ...
    async def release_ack_link(self, token_id: str) -> None: ...
    async def ack_link_used_at(self, token_id: str) -> datetime | None: ...
    async def managed_homes(self) -> list[str]: ...
    async def set_managed(self, home: str, managed: bool, at: datetime) -> None: ...
    async def home_config_version(self, home: str, version: int | None = None) -> ConfigVersion | None: ...
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta_once(self, key: str, value: str) -> str: ...

    # History of one home or alert (`gateway/store/history.py`, one implementation).

    async def home_events_between(self, home: str, start: datetime, end: datetime) -> list[EventRow]: ...
    async def home_inputs_between(self, home: str, start: datetime, end: datetime) -> list[InputRow]: ...
    async def home_kind_events_between(self, home: str, kind: str, start: datetime,
                                       end: datetime) -> list[EventRow]: ...
    async def home_last_reading(self, home: str, device: str, kind: str, before: datetime,
                                since: datetime) -> EventRow | None: ...
    async def home_steps_between(self, home: str, start: datetime, end: datetime) -> list[StepRow]: ...
    async def alert_steps(self, alert: str) -> list[StepRow]: ...
    async def alert_attempts(self, alert: str) -> list[AttemptRow]: ...
    async def raised_alerts(self, homes: Sequence[str] | None, *, kind: str | None = None,
                            since: datetime | None = None, until: datetime | None = None,
                            before: tuple[datetime, str] | None = None, limit: int = 50,
                            unresolved: bool = False) -> list[StepRow]: ...


async def collect(chunks: AsyncIterator[list[EventRow]]) -> list[EventRow]:
    out: list[EventRow] = []
    async for chunk in chunks:
        out.extend(chunk)
    return out


ROW_TYPES: dict[str, type[Any]] = {
    "events": EventRow, "inputs": InputRow, "alert_steps": StepRow,
    "notification_attempts": AttemptRow, "dead_letters": DeadLetterRow,
}


def row_getter(table: str) -> Callable[[Any], tuple[Any, ...]]:
    """Fields of a row as a tuple in column order (C-speed; `dataclasses.astuple` deep-copies)."""
    names = [f.name for f in fields(ROW_TYPES[table])]
    getter = attrgetter(*names)
    return cast(Callable[[Any], tuple[Any, ...]], getter)
