"""Ground truth: the alert lifecycle a correct system must produce, from the contract alone.

The simulator is the oracle for the engine, so nothing here runs or imports
the engine. A scenario says what it injected in contract terms: when each
alert condition starts to hold ("out of bed for 45 minutes at 02:56") and
when it stops, and what people did (acknowledged, resolved, pressed "I'm OK").
`safety_lines` then applies the contract's lifecycle: one person-safety alert
at a time (a further condition joins its reasons), the first contact at once,
the next after `ack_within`, the last one again every `repeat_every`, until
acknowledged, resolved or the end of the run. Ties between a timer and an
input are not defined by the contract, so they are refused here and
scenarios place their inputs clear of every deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal

from alerts.homeconfig import HomeConfig

SERVICE_KINDS = ("device_offline", "low_battery", "bed_occupied_too_long", "motion_silent")
# routine.check_with_me asks the person first for these (never for help or the front door)
ASK_FIRST = ("out_of_bed_too_long", "still_while_up", "not_in_bed_by", "not_up_by")
Span = tuple[datetime, datetime]


class AmbiguousTie(ValueError):
    """Two things the contract does not order happen at the same instant."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A person-safety condition that holds from `onset` until `cleared` (None: still holds)."""

    kind: str
    onset: datetime | None
    cleared: datetime | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """Something a person does: `ack` or `resolve` (a carer), `press` (the person's button)."""

    at: datetime
    what: Literal["ack", "resolve", "press"]
    by: str


@dataclass(frozen=True, slots=True)
class ServiceIssue:
    """A device problem, which goes to the service contacts rather than the family."""

    kind: str
    device: str
    onset: datetime | None
    cleared: datetime | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """One expected `tecmon replay` line; `reasons` lists the conditions the alert carries."""

    step: str
    alert: str
    home: str
    kind: str
    at: datetime
    contact: str | None
    reasons: tuple[str, ...]

    def line(self) -> dict[str, Any]:
        joined = " + ".join(self.reasons)
        return {
            "step": self.step, "alert": self.alert, "home": self.home, "kind": self.kind,
            "at": self.at.astimezone(UTC).isoformat(), "contact": self.contact,
            "reason": f"ground truth: {joined}", "reasons": list(self.reasons),
        }


# --- the night window, computed here from the contract (local wall-clock) ---------------


def _local(day: date, clock: time, home: HomeConfig) -> datetime:
    return datetime.combine(day, clock, tzinfo=home.zone).astimezone(UTC)


def night_of(home: HomeConfig, at: datetime) -> tuple[datetime, datetime] | None:
    """The routine's night window containing `at`, as UTC [start, end), or None."""
    night = home.routine.night
    crosses = night.to <= night.from_
    day = at.astimezone(home.zone).date()
    for start_day in (day, day - timedelta(days=1)):
        end_day = start_day + timedelta(days=1) if crosses else start_day
        start, end = _local(start_day, night.from_, home), _local(end_day, night.to, home)
        if start <= at < end:
            return start, end
    return None


def away_at(home: HomeConfig, at: datetime) -> bool:
    for period in home.away:
        start = period.from_.replace(tzinfo=period.from_.tzinfo or home.zone)
        end = period.to.replace(tzinfo=period.to.tzinfo or home.zone)
        if start <= at < end:
            return True
    return False


def daytime_from(home: HomeConfig, at: datetime) -> datetime:
    night = night_of(home, at)
    return at if night is None else night[1]


def next_local(home: HomeConfig, after: datetime, clock: time) -> datetime:
    """The first instant after `after` whose local time is `clock` (a skipped time: after the gap)."""
    day = after.astimezone(home.zone).date() - timedelta(days=1)
    while (candidate := _local(day, clock, home)) <= after:
        day += timedelta(days=1)
    return candidate


# --- when each rule's condition starts to hold, per the contract ------------------------


def out_of_bed_onset(home: HomeConfig, left: datetime, since: datetime | None = None) -> datetime | None:
    """Left bed at `left` (period restarted at `since`, e.g. a button press)."""
    rule, night = home.routine.out_of_bed, night_of(home, left)
    if rule is None or night is None:
        return None
    due = max(left, since or left) + rule.alert_after
    return due if due < night[1] else None


def still_onset(home: HomeConfig, left: datetime, last_activity: datetime | None) -> datetime | None:
    rule, night = home.routine.still_while_up, night_of(home, left)
    if rule is None or night is None:
        return None
    due = max(left, last_activity or left) + rule.alert_after
    return due if due < night[1] else None


def exit_onset(home: HomeConfig, opened: datetime) -> datetime | None:
    rule = home.routine.exit_door
    if rule is None or night_of(home, opened) is None:
        return None
    return opened + rule.alert_if_not_back_within


# --- the lifecycle -----------------------------------------------------------------------


def alert_id(home: HomeConfig, kind: str, at: datetime, device: str | None = None) -> str:
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{home.home}:{stamp}:{kind}" + (f":{device}" if device else "")


def send_times(home: HomeConfig, raised: datetime) -> Iterator[tuple[datetime, str, str]]:
    """(at, step, contact): first contact at once, next ones after ack_within, last repeats.

    With a single contact the contract does not say whether the first repeat
    waits `ack_within` or `repeat_every`; it is read as "repeating every
    repeat_every at the last contact", which that contact already is.
    """
    contacts = [c.name for c in home.contacts]
    ack, repeat = home.escalation.ack_within, home.escalation.repeat_every
    if not contacts:
        return
    at = raised
    yield at, "notified", contacts[0]
    for name in contacts[1:]:
        at += ack
        yield at, "escalated", name
    at += repeat  # the last contact (the only one, if there is one) is called again
    while True:
        yield at, "escalated", contacts[-1]
        at += repeat


@dataclass
class _Open:
    kind: str
    id: str
    reasons: list[str]
    sends: Iterator[tuple[datetime, str, str]]
    next_send: tuple[datetime, str, str] | None
    acknowledged: bool = False
    carried: list[str] = field(default_factory=list)  # every reason it has had
    asked_until: datetime | None = None  # check_with_me: nobody is called before this
    called: bool = False


@dataclass
class _Walk:
    home: HomeConfig
    end: datetime
    out: list[Expected] = field(default_factory=list)
    open: _Open | None = None

    def emit(self, step: str, at: datetime, contact: str | None) -> None:
        assert self.open is not None
        alert = self.open
        self.out.append(Expected(step, alert.id, self.home.home, alert.kind, at, contact,
                                 tuple(alert.reasons)))

    def sends_before(self, t: datetime, inclusive: bool = False) -> None:
        while self.open and self.open.next_send and not self.open.acknowledged:
            at, step, contact = self.open.next_send
            if at > t or (at == t and not inclusive):
                if at == t:
                    raise AmbiguousTie(f"a notification and an input both at {at.isoformat()}")
                return
            self.emit(step, at, contact)
            self.open.called = True
            self.open.next_send = next(self.open.sends, None)

    def raise_or_join(self, kind: str, at: datetime) -> None:
        if away_at(self.home, at):
            return
        if self.open is not None:
            self.join(self.open, kind, at)
            return
        ask = self.home.routine.check_with_me if kind in ASK_FIRST else None
        first_call = at + ask.within if ask is not None else at
        sends = send_times(self.home, first_call)
        self.open = _Open(kind, alert_id(self.home, kind, at), [kind], sends, next(sends, None),
                          carried=[kind], asked_until=first_call if ask else None)
        self.emit("raised", at, None)
        if ask is not None:
            self.emit("asked", at, None)  # the light blinks; calls wait for the person

    def join(self, alert: _Open, kind: str, at: datetime) -> None:
        """A further condition joins; one never asked about ends the wait on the person."""
        if kind not in alert.reasons:
            alert.reasons.append(kind)
        if kind not in alert.carried:
            alert.carried.append(kind)
        waiting = alert.asked_until is not None and alert.asked_until > at and not alert.called
        if waiting and kind not in ASK_FIRST:
            alert.sends = send_times(self.home, at)
            alert.next_send = next(alert.sends, None)
            alert.asked_until = at

    def close(self, at: datetime, by: str | None) -> None:
        """Resolved lines list every reason the alert carried, so a reader sees what ended."""
        assert self.open is not None
        self.open.reasons = self.open.carried
        self.emit("resolved", at, by)
        self.open = None


def in_company(company: Iterable[Span], at: datetime) -> bool:
    """Someone is with the person: company mode runs from its start to exactly start + for."""
    return any(start <= at < stop for start, stop in company)


def safety_lines(
    home: HomeConfig, conditions: Iterable[Condition], actions: Iterable[Action], end: datetime,
    company: Iterable[Span] = (),
) -> list[Expected]:
    """The person-safety lifecycle lines up to `end` (inclusive), in time order.

    A condition that starts to hold while someone is with the person
    (`company`, [start, end) spans) raises nothing: the contract pauses every
    rule but the call for help. The scenario states onsets after company mode
    counted from its end, as the contract says they are.
    """
    spans = list(company)
    points: list[tuple[datetime, int, Condition | Action]] = []
    for cond in conditions:
        if cond.onset is None or (cond.cleared is not None and cond.cleared <= cond.onset):
            continue
        if in_company(spans, cond.onset):
            continue
        points.append((cond.onset, 0, cond))
        if cond.cleared is not None:
            points.append((cond.cleared, 1, cond))
    points += [(a.at, 1, a) for a in actions]
    points = sorted((p for p in points if p[0] <= end), key=lambda p: (p[0], p[1]))
    _refuse_ties(points)
    walk = _Walk(home, end)
    for at, is_input, what in points:
        walk.sends_before(at, inclusive=not is_input)
        _apply(walk, at, is_input == 0, what)
    walk.sends_before(end, inclusive=True)
    return walk.out


def _refuse_ties(points: list[tuple[datetime, int, Condition | Action]]) -> None:
    """Simultaneous points are fine only when they are one input clearing several conditions."""
    for (t1, k1, w1), (t2, k2, w2) in pairwise(points):
        both_clears = k1 == k2 == 1 and isinstance(w1, Condition) and isinstance(w2, Condition)
        if t1 == t2 and not both_clears:
            raise AmbiguousTie(f"two scenario points at {t1.isoformat()}")


def _apply(walk: _Walk, at: datetime, onset: bool, what: Condition | Action) -> None:
    alert = walk.open
    if isinstance(what, Condition):
        if onset:
            walk.raise_or_join(what.kind, at)
        elif alert is not None and what.kind in alert.reasons:
            alert.reasons.remove(what.kind)
            if not alert.reasons:
                walk.close(at, None)
        return
    if what.what == "press":
        if alert is not None:
            walk.close(at, walk.home.person.name)
        else:
            walk.raise_or_join("help_requested", at)
    elif alert is not None and what.what == "ack" and not alert.acknowledged:
        alert.acknowledged = True
        walk.emit("acknowledged", at, what.by)
    elif alert is not None and what.what == "resolve":
        walk.close(at, what.by)


def service_lines(home: HomeConfig, issues: Iterable[ServiceIssue], end: datetime) -> list[Expected]:
    """Device problems: raised, every service contact told once (a low battery in daytime)."""
    out: list[Expected] = []
    for issue in issues:
        onset = issue.onset
        if onset is None or onset > end or away_at(home, onset):
            continue
        if issue.cleared is not None and issue.cleared <= onset:
            continue
        ident = alert_id(home, issue.kind, onset, issue.device)

        def line(step: str, at: datetime, contact: str | None, ident: str = ident,
                 kind: str = issue.kind) -> Expected:
            return Expected(step, ident, home.home, kind, at, contact, (kind,))

        out.append(line("raised", onset, None))
        notify = daytime_from(home, onset) if issue.kind == "low_battery" else onset
        resolved = issue.cleared if issue.cleared is not None and issue.cleared <= end else None
        if notify <= end and (resolved is None or notify < resolved):
            out += [line("notified", notify, c.name) for c in home.service_contacts]
        if resolved is not None:
            out.append(line("resolved", resolved, None))
    return out


def merge(*groups: list[Expected]) -> list[Expected]:
    """All lines in time order; lines of one alert at one instant keep their order."""
    return sorted((line for group in groups for line in group), key=lambda e: e.at)
