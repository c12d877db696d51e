"""Which night an instant belongs to, and one night's stored events turned into a chart.

A night is named by the local date on which it starts (per the home's night
window and time zone). Its window is [start, end); but an alert counts
towards the night until the next night starts, so a `not_up_by` at 10:30 or
a daytime battery notice belongs to the night before it, and every alert of
a home belongs to exactly one night (the preview's totals rely on that).

The chart is derived from stored events in the order they were applied
(received_at, id), with the engine's own rule for repeats: a reading older
than the newest one seen from that device changes nothing, nor does one that
repeats the current value. Times shown are the events' own times (`at`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from alerts.engine import PRESS_DEBOUNCE
from alerts.nights import NightWindow
from alerts.plan import HomePlan
from gateway.store.base import EventRow, InputRow, StepRow

Span = tuple[datetime, datetime | None]  # an interval; None: still going when the data ends
TRACKED = {"bed": True, "door": True, "availability": False}
"""Kinds charted as intervals, and the value that opens one (availability: offline)."""


@dataclass(frozen=True, slots=True)
class Night:
    day: date
    start: datetime  # the night window, UTC
    end: datetime
    until: datetime  # the next night's start: alerts up to here count towards this night

    def holds(self, at: datetime) -> bool:
        return self.start <= at < self.until


def night_of_date(window: NightWindow, day: date) -> Night:
    start, end = window.night_starting(day)
    return Night(day, start, end, window.night_starting(day + timedelta(days=1))[0])


def last_completed(window: NightWindow, now: datetime) -> date:
    """The local date of the latest night whose window has ended by `now`."""
    day = now.astimezone(window.zone).date()
    while window.night_starting(day)[1] > now:
        day -= timedelta(days=1)
    return day


def nights_ending(window: NightWindow, last: date, count: int) -> list[Night]:
    """`count` consecutive nights, oldest first, the last starting on `last`."""
    return [night_of_date(window, last - timedelta(days=count - 1 - i)) for i in range(count)]


def night_index(nights: Sequence[Night], at: datetime) -> int | None:
    """Which of `nights` (consecutive, oldest first) an alert at `at` counts towards."""
    i = bisect_right([n.start for n in nights], at) - 1
    return i if i >= 0 and nights[i].holds(at) else None


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


# --- readings in the order they were applied ------------------------------------------------


def changes(rows: Iterable[EventRow]) -> Iterable[EventRow]:
    """Rows that changed something: not older than the device's newest, not a repeat."""
    last: dict[tuple[str, str], EventRow] = {}
    for row in rows:
        key = (row.device, row.kind)
        before = last.get(key)
        if before is not None and (row.at < before.at or _repeat(before, row)):
            continue
        last[key] = row
        yield row


def _repeat(before: EventRow, row: EventRow) -> bool:
    if row.kind == "button":  # every press is True: presses closer than the debounce are one
        return row.at - before.at < PRESS_DEBOUNCE
    return row.value == before.value


def spans(rows: Iterable[EventRow], on: bool, initial: bool | None = None,
          since: datetime | None = None) -> list[Span]:
    """Intervals during which one signal had the value `on` (rows of one device and kind)."""
    out: list[Span] = []
    opened: datetime | None = since if initial is on and since is not None else None
    for row in rows:
        if bool(row.value) is on and opened is None:
            opened = row.at
        elif bool(row.value) is not on and opened is not None:
            out.append((opened, row.at))
            opened = None
    if opened is not None:
        out.append((opened, None))
    return out


def clip(span: Span, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    begin, finish = max(span[0], start), min(span[1] or end, end)
    if begin < finish or (begin == finish and start <= span[0] < end):  # a door opened and shut at once
        return begin, finish
    return None


# --- one night as a chart -------------------------------------------------------------------


@dataclass
class _Signals:
    """The night's readings by device and kind; `prior` rows give the state each had at the start."""

    rows: dict[tuple[str, str], list[EventRow]] = field(default_factory=dict)
    points: dict[str, list[EventRow]] = field(default_factory=lambda: {"motion": [], "button": []})

    @classmethod
    def read(cls, prior: Iterable[EventRow], events: Iterable[EventRow]) -> _Signals:
        signals = cls()
        for row in changes([*prior, *events]):
            if row.kind in TRACKED:
                signals.rows.setdefault((row.device, row.kind), []).append(row)
            elif row.kind in signals.points and row.value:
                signals.points[row.kind].append(row)
        return signals

    def intervals(self, kind: str, night: Night) -> list[tuple[str, datetime, datetime]]:
        out = []
        for (device, k), rows in sorted(self.rows.items()):
            if k != kind:
                continue
            later = [r for r in rows if r.at >= night.start]
            first = [r for r in rows if r.at < night.start]
            initial = bool(first[-1].value) if first else None
            for span in spans(later, TRACKED[kind], initial, night.start):
                clipped = clip(span, night.start, night.end)
                if clipped:
                    out.append((device, *clipped))
        out.sort(key=lambda item: item[1])
        return out


def alert_record(steps: Sequence[StepRow]) -> dict[str, Any]:
    """One alert and every lifecycle step recorded for it, raised first."""
    raised = next((s for s in steps if s.step == "raised"), steps[0])
    return {"alert": raised.alert, "kind": raised.kind, "raised_at": iso(raised.at), "reason": raised.reason,
            "steps": [{"step": s.step, "at": iso(s.at), "contact": s.contact, "reason": s.reason,
                       "late": s.late} for s in steps]}


def night_chart(plan: HomePlan, night: Night, prior: Sequence[EventRow], events: Sequence[EventRow],
                alerts: Sequence[Sequence[StepRow]]) -> dict[str, Any]:
    """The JSON of `GET /homes/{home}/nights/{date}`; `prior`: each device's last reading before."""
    signals = _Signals.read(prior, [e for e in events if e.at < night.end])
    exits = {d.id for d in plan.devices.values() if d.exit}

    def window(kind: str) -> list[dict[str, Any]]:
        return [{"device": d, "from": iso(a), "to": iso(b), "minutes": round((b - a).total_seconds() / 60, 1)}
                for d, a, b in signals.intervals(kind, night)]

    def points(kind: str) -> list[dict[str, Any]]:
        return [{"device": r.device, "at": iso(r.at)} for r in signals.points[kind] if night.start <= r.at]

    doors = [{**d, "exit": d["device"] in exits} for d in window("door")]
    return {"home": plan.home, "date": night.day.isoformat(), "timezone": str(plan.zone),
            "window": {"from": iso(night.start), "to": iso(night.end)},
            "in_bed": window("bed"), "doors": doors, "motion": points("motion"), "buttons": points("button"),
            "offline": window("availability"), "alerts": [alert_record(a) for a in alerts if a]}


def company_spans(inputs: Iterable[InputRow], night: Night, lasts: timedelta) -> list[dict[str, Any]]:
    """When someone was with the person during the night (company mode), from the stored inputs.

    As the engine has it: an "on" starts it until exactly then + `lasts` (an "on" while it is on
    starts the time again: one span); an "off" ends it. `inputs` should reach back `lasts` before
    the night, to see one running at its start. Each span: `{"from", "to", "by", "ended_by"}`;
    `ended_by` None: its time ran out.
    """
    found: list[tuple[datetime, datetime, str, str | None]] = []
    running: list[Any] = []  # [start, by, expires] while on
    for row in sorted((r for r in inputs if r.kind == "company"), key=lambda r: r.at):
        if running and row.at >= running[2]:
            found.append((running[0], running[2], running[1], None))
            running = []
        if row.outcome == "on":
            first = running[:2] if running else [row.at, row.by]
            running = [*first, row.at + lasts]
        elif running:
            found.append((running[0], row.at, running[1], row.by))
            running = []
    if running:
        found.append((running[0], running[2], running[1], None))
    return [{"from": iso(max(a, night.start)), "to": iso(min(b, night.end)), "by": by, "ended_by": ended}
            for a, b, by, ended in found if a < night.end and b > night.start and b > a]
