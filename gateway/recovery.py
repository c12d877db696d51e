"""Rebuilding every home's state after a restart, without missed or repeated alerts.

Each home starts from its latest snapshot (`gateway/snapshots.py`) when one
fits its engine and routine, and replays only the events, inputs and steps
recorded after the snapshot's `through`; a home without one replays the last
`window` of stored events and carer inputs. Replay goes through the engine at
simulated speed, in the order they were applied live, which brings each home
back to exactly the state it had. Homes are independent, so each home's
inputs are merged with its own events only. The engine re-decides every
lifecycle step of that period; the ones already in the record were carried
out before the restart and are not repeated. What remains fell due while the
service was down (or was decided just before a crash, unrecorded): those
steps are recorded and marked late, and the alerts still open are called at
once, once per contact.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts import snapshot
from alerts.decisions import Decision, SendAlert, SendSummary
from alerts.engine import step
from alerts.events import EngineInput, Tick
from gateway.bulk import collector_paused
from gateway.late import calls_worth_making
from gateway.runtime import Dispatch, Runtime
from gateway.snapshots import routine_of
from gateway.store.base import EventRow, InputRow, SnapshotRow, Store

StepKey = tuple[str, str, str | None]


@dataclass
class RecoveryReport:
    homes: int = 0
    events: int = 0
    inputs: int = 0
    already_done: int = 0
    late: int = 0
    from_snapshot: int = 0  # homes restored from a snapshot that fits
    snapshots_ignored: int = 0  # another engine or routine, too old, or unreadable: replayed in full
    seconds: float = 0.0
    pending: list[Dispatch] = field(default_factory=list)


def _key(decision: Decision) -> StepKey:
    if isinstance(decision, SendSummary):
        return (decision.id, decision.step, decision.contact.name)
    contact = decision.contact.name if isinstance(decision, SendAlert) else getattr(decision, "by", None)
    return (decision.alert.id, decision.step, contact)


class _Rebuild:
    def __init__(self, runtime: Runtime, done: Counter[StepKey], report: RecoveryReport) -> None:
        self.runtime, self.done, self.report = runtime, done, report

    def apply(self, home: str, inp: EngineInput, now: datetime) -> None:
        runtime = self.runtime.homes.get(home)
        if runtime is None:
            return  # a home no longer configured
        runtime.state, decisions = step(runtime.state, inp, now)
        for decision in decisions:
            key = _key(decision)
            if self.done[key] > 0:
                self.done[key] -= 1
                self.report.already_done += 1
            else:
                self.report.pending.append(Dispatch(home, decision, runtime.plan, late=True))


FEW_FULL = 1000
"""Up to this many homes replayed in full are read by home; more, and the window is read once."""


async def recover(runtime: Runtime, store: Store, now: datetime, window: timedelta,
                  engine: str | None = None) -> RecoveryReport:
    """Restore and replay into `runtime`; returns the late steps still to carry out.

    `engine` is the running engine's version (`gateway.snapshots.engine_version()`);
    None replays every home over the whole window, ignoring snapshots.
    """
    with collector_paused():
        return await _recover(runtime, store, now, window, engine)


async def _recover(runtime: Runtime, store: Store, now: datetime, window: timedelta,
                   engine: str | None) -> RecoveryReport:
    began = time.perf_counter()
    since = now - window
    report = RecoveryReport(homes=len(runtime.homes))
    after: dict[str, datetime] = {}
    if engine is not None:
        async for rows in store.stream_snapshots():
            _restore(runtime, rows, engine, since, now, report, after)
    steps = await store.steps_since(since - window)
    done = Counter((r.alert, r.step, r.contact) for r in steps if _after(after, r.home, r.at))
    rebuild = _Rebuild(runtime, done, report)
    waiting: dict[str, deque[InputRow]] = {}
    for inp in await store.inputs_since(since):
        if _after(after, inp.home, inp.at):
            waiting.setdefault(inp.home, deque()).append(inp)
            report.inputs += 1
    async for chunk in _events(runtime, store, after, since):
        for row in chunk:
            if not _after(after, row.home, row.received_at):
                continue
            queue = waiting.get(row.home)
            while queue and queue[0].at <= row.received_at:
                rest = queue.popleft()
                rebuild.apply(rest.home, rest.to_input(), rest.at)
            rebuild.apply(row.home, row.to_event(), row.received_at)
            report.events += 1
    for queue in waiting.values():
        for rest in queue:
            rebuild.apply(rest.home, rest.to_input(), rest.at)
    for home, rt in runtime.homes.items():
        if rt.state.clock is None or home not in after or _due_by(rt.state.next_due, now):
            rebuild.apply(home, Tick(), now)  # a restored home with nothing due is already where it was
        runtime.reschedule(home)
    still_open = (a["alert"] for a in runtime.open_alerts())
    report.pending = calls_worth_making(report.pending, still_open)
    report.late = len(report.pending)
    report.seconds = time.perf_counter() - began
    return report


def _due_by(due: datetime | None, now: datetime) -> bool:
    return due is not None and due <= now


def _after(after: dict[str, datetime], home: str, at: datetime) -> bool:
    """Recorded after the home's snapshot (every record counts for a home without one)."""
    through = after.get(home)
    return through is None or at > through


def _restore(runtime: Runtime, rows: Iterable[SnapshotRow], engine: str, since: datetime,
             now: datetime, report: RecoveryReport, after: dict[str, datetime]) -> None:
    """Each home's snapshot that fits, restored; `after` gets the `through` of each restored home."""
    for row in rows:
        home = runtime.homes.get(row.home)
        if home is None:
            continue  # a home no longer configured
        if row.engine != engine or row.routine != routine_of(home) or not since <= row.through <= now:
            report.snapshots_ignored += 1
            continue
        try:
            home.state = snapshot.loads(row.state, home.plan)
        except snapshot.SnapshotError:
            report.snapshots_ignored += 1
            continue
        after[row.home] = row.through
        report.from_snapshot += 1


def _events(runtime: Runtime, store: Store, after: dict[str, datetime],
            since: datetime) -> AsyncIterator[list[EventRow]]:
    """The stored events recovery needs; `recover` skips those a snapshot already holds.

    Snapshots are taken together, so the events after the oldest one are a few
    minutes' worth; the homes replayed in full, if few, are read by home.
    """
    if not after:
        return store.stream_events_since(since)
    full = [home for home in runtime.homes if home not in after]
    oldest = min(after.values())
    if len(full) > FEW_FULL or oldest <= since:
        return store.stream_events_since(since)
    return _chained(store.stream_events_since(oldest), after, store.stream_home_events_since(full, since))


async def _chained(recent: AsyncIterator[list[EventRow]], restored: dict[str, datetime],
                   full: AsyncIterator[list[EventRow]]) -> AsyncIterator[list[EventRow]]:
    """The restored homes' recent events, then the others' whole window: homes are
    independent, and each home's events stay in their order."""
    async for chunk in recent:
        yield [row for row in chunk if row.home in restored]
    async for chunk in full:
        yield chunk
