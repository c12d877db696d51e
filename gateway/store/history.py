"""Reads of one home's or one alert's history, for the API (nights, alerts, the preview).

Written once over the SQL seam (`gateway/store/sql.py`) so both backends
answer alike; each query uses a per-home or per-alert index (migration 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.store.base import ROW_TYPES, AttemptRow, EventRow, InputRow, StepRow
from gateway.store.migrations import COLUMNS
from gateway.store.sql import SqlSeam

_NAMES = {table: ", ".join(name for name, _ in columns) for table, columns in COLUMNS.items()}


class HistoryReads(SqlSeam):
    """The history queries of a store (a mixin of both backends)."""

    def _rows(self, table: str, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        kinds = [kind for _, kind in COLUMNS[table]]
        cls = ROW_TYPES[table]
        out = []
        for row in rows:
            values = [self.ts_value(v) if k == "ts" and v is not None else (bool(v) if k == "bool" else v)
                      for k, v in zip(kinds, row, strict=True)]
            out.append(cls(*values))
        return out

    def _events(self, rows: Sequence[tuple[Any, ...]]) -> list[EventRow]:
        """Event rows without the generic per-column loop: a preview reads tens of thousands."""
        ts = self.ts_value
        return [EventRow(home, device, kind, value, ts(at), ts(received), source or "")
                for home, device, kind, value, at, received, source in rows]

    async def home_events_between(self, home: str, start: datetime, end: datetime) -> list[EventRow]:
        """A home's events received in [start, end), in the order they were applied."""
        sql = (f"SELECT {_NAMES['events']} FROM events WHERE home = ? AND received_at >= ? "
               "AND received_at < ? ORDER BY received_at, id")
        return self._events(await self.fetch(sql, (home, self.ts_param(start), self.ts_param(end))))

    async def home_kind_events_between(self, home: str, kind: str, start: datetime,
                                       end: datetime) -> list[EventRow]:
        """Only one kind of a home's events (the bed, for a summary of many nights), in applied order."""
        sql = (f"SELECT {_NAMES['events']} FROM events WHERE home = ? AND received_at >= ? "
               "AND received_at < ? AND kind = ? ORDER BY received_at, id")
        params = (home, self.ts_param(start), self.ts_param(end), kind)
        return self._events(await self.fetch(sql, params))

    async def home_last_reading(self, home: str, device: str, kind: str, before: datetime,
                                since: datetime) -> EventRow | None:
        """A device's last reading of a kind received in [since, before): its state when a night began."""
        sql = (f"SELECT {_NAMES['events']} FROM events WHERE home = ? AND received_at >= ? "
               "AND received_at < ? AND device = ? AND kind = ? ORDER BY received_at DESC, id DESC LIMIT 1")
        params = (home, self.ts_param(since), self.ts_param(before), device, kind)
        rows = self._events(await self.fetch(sql, params))
        return rows[0] if rows else None

    async def home_inputs_between(self, home: str, start: datetime, end: datetime) -> list[InputRow]:
        sql = (f"SELECT {_NAMES['inputs']} FROM inputs WHERE home = ? AND at >= ? AND at < ? "
               "ORDER BY at, id")
        return self._rows("inputs", await self.fetch(sql, (home, self.ts_param(start), self.ts_param(end))))

    async def home_steps_between(self, home: str, start: datetime, end: datetime) -> list[StepRow]:
        sql = (f"SELECT {_NAMES['alert_steps']} FROM alert_steps WHERE home = ? AND at >= ? AND at < ? "
               "ORDER BY at, id")
        rows = await self.fetch(sql, (home, self.ts_param(start), self.ts_param(end)))
        return self._rows("alert_steps", rows)

    async def alert_steps(self, alert: str) -> list[StepRow]:
        sql = f"SELECT {_NAMES['alert_steps']} FROM alert_steps WHERE alert = ? ORDER BY at, id"
        return self._rows("alert_steps", await self.fetch(sql, (alert,)))

    async def alert_attempts(self, alert: str) -> list[AttemptRow]:
        sql = (f"SELECT {_NAMES['notification_attempts']} FROM notification_attempts WHERE alert = ? "
               "ORDER BY started_at, id")
        return self._rows("notification_attempts", await self.fetch(sql, (alert,)))

    async def raised_alerts(self, homes: Sequence[str] | None, *, kind: str | None = None,
                            since: datetime | None = None, until: datetime | None = None,
                            before: tuple[datetime, str] | None = None, limit: int = 50,
                            unresolved: bool = False) -> list[StepRow]:
        """`raised` steps, newest first, filtered; `before` is a keyset cursor (at, alert id).

        `unresolved`: only alerts with no `resolved` step yet (the open ones, as stored).
        """
        where: list[str] = ["step = 'raised'"]
        if unresolved:
            where.append("NOT EXISTS (SELECT 1 FROM alert_steps r WHERE r.alert = alert_steps.alert "
                         "AND r.step = 'resolved')")
        params: list[Any] = []
        if homes is not None:
            if not homes:
                return []
            where.append(f"home IN ({', '.join('?' * len(homes))})")
            params.extend(homes)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if since is not None:
            where.append("at >= ?")
            params.append(self.ts_param(since))
        if until is not None:
            where.append("at < ?")
            params.append(self.ts_param(until))
        if before is not None:
            where.append("(at < ? OR (at = ? AND alert < ?))")
            params.extend([self.ts_param(before[0]), self.ts_param(before[0]), before[1]])
        sql = (f"SELECT {_NAMES['alert_steps']} FROM alert_steps WHERE {' AND '.join(where)} "
               f"ORDER BY at DESC, alert DESC LIMIT {int(limit)}")
        return self._rows("alert_steps", await self.fetch(sql, params))
