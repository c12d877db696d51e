"""Engine snapshots in the store: one row per home, replaced by each newer one (migration 5).

Written once over the SQL seam (`gateway/store/sql.py`) so both backends
answer alike. A snapshot round writes the homes whose state changed and only
moves `through` on for the others, so one idle home never makes a restart
read back hours of everyone's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from gateway.store.base import SnapshotRow
from gateway.store.sql import SqlSeam

UPSERT = (
    "INSERT INTO home_snapshots (home, engine, routine, through, state) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (home) DO UPDATE SET engine = excluded.engine, routine = excluded.routine, "
    "through = excluded.through, state = excluded.state"
)
SELECT = "SELECT home, engine, routine, through, state FROM home_snapshots"
CONFIRM_CHUNK = 10_000  # homes per statement: well under every driver's parameter limits


class SnapshotTables(SqlSeam):
    """The snapshot queries of a store (a mixin of both backends)."""

    async def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        if not rows:
            return
        ts = self.ts_param
        await self.execute_many(UPSERT, [(r.home, r.engine, r.routine, ts(r.through), r.state) for r in rows])

    async def confirm_snapshots(self, homes: Sequence[str], through: datetime) -> None:
        sql = f"UPDATE home_snapshots SET through = ? WHERE through < ? AND {self.in_list('home')}"
        at = self.ts_param(through)
        statements = [(sql, (at, at, self.list_param(homes[i:i + CONFIRM_CHUNK])))
                      for i in range(0, len(homes), CONFIRM_CHUNK)]
        if statements:
            await self.transaction(statements)

    async def snapshots(self) -> list[SnapshotRow]:
        return [row async for chunk in self.stream_snapshots() for row in chunk]

    async def stream_snapshots(self, chunk: int = 10_000) -> AsyncIterator[list[SnapshotRow]]:
        """Every snapshot, in pages by home: 100,000 homes' states are never all in memory as text."""
        ts, after = self.ts_value, ""
        while True:
            rows = await self.fetch(f"{SELECT} WHERE home > ? ORDER BY home LIMIT ?", (after, chunk))
            if not rows:
                return
            yield [SnapshotRow(home, engine, routine, ts(through), state)
                   for home, engine, routine, through, state in rows]
            if len(rows) < chunk:
                return
            after = rows[-1][0]
