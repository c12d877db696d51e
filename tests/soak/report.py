"""The soak's report: events published vs stored, alerts expected vs delivered, late, duplicates, faults.

Expectations account for what each fault legitimately does:
- a message the gateway could not hear on time (it was down, or the broker
  was) reaches it late, stamped late; a home whose night had a message in
  such a window is re-checked with those messages late (`tecmon replay`), and
  only if that changes its alerts is it "changed by a fault" and left out of
  the strict comparison;
- a deadline that fell due while the gateway was down is delivered late on
  recovery (marked late), not lost;
- a SIGKILL loses what the gateway had received but not yet written (at most
  `store_flush_s` plus the time to write): events lost in that window are
  counted apart; a home that lost history is left out of the strict comparison.
Nothing is ever excused for being sent twice: every duplicate is counted.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.clock import ScaledClock
from simulator.groundtruth import Expected
from tests.soak.collect import Delivery, Observed
from tests.soak.faults import Fault
from tests.soak.homes import RAISE_SLACK, Night, raised_by_replay, same_alerts

CRASH_S = 2.0  # real seconds before a SIGKILL whose received events may not have been written yet
CATCHUP_S = 1.0  # real seconds after a fault ends for the backlog to reach the gateway
LATE_DELIVERY_S = 5.0  # a first delivery this many real seconds after its alert's instant is late


@dataclass(frozen=True, slots=True)
class Window:
    kind: str
    start: datetime  # simulated
    end: datetime


def windows(faults: Sequence[Fault], clock: ScaledClock) -> list[Window]:
    """Where the gateway could not hear messages on time (simulated time)."""
    out = []
    for fault in faults:
        if fault.kind in ("gateway", "broker"):
            start = _sim(clock, fault.start)
            out.append(Window(fault.kind, start, _sim(clock, fault.end + CATCHUP_S)))
    return out


def _sim(clock: ScaledClock, real: float) -> datetime:
    return clock.origin + timedelta(seconds=(real - clock.anchor) * clock.speed)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(json.loads(text)["ts"])


def changed_by_faults(night: Night, found: list[Window], lag: timedelta) -> bool | None:
    """None: untouched. Else whether hearing the window's messages late can change the alerts.

    The gateway works through its backlog while its timers run, so a message
    in a window may arrive anywhere from its own time to the window's end: all
    at the end, and two random arrivals in between (in order), are replayed.
    """
    hit = [w for w in found if any(w.start <= _ts(t) <= w.end for t in night.lines)]
    if not hit:
        return None
    longest = max(w.end - w.start for w in hit)
    truth = [(e.kind, e.at) for e in night.raised]
    rng = random.Random(night.config.home)
    for spread in (None, rng, rng):
        lines, last = [], None
        for text in night.lines:
            at = _ts(text)
            for w in hit:
                if w.start <= at <= w.end:
                    at = w.end if spread is None else at + (w.end - at) * spread.random()
            at = at if last is None or at >= last else last
            last = at
            lines.append(json.dumps({**json.loads(text), "ts": at.isoformat()}))
        if not same_alerts(raised_by_replay(night.config, lines, night.end + longest), truth,
                           longest + lag + RAISE_SLACK):
            return True
    return False


def event_figures(observed: Observed, faults: Sequence[Fault]) -> tuple[dict[str, Any], set[str]]:
    kills = [f.start for f in faults if f.kind == "gateway"]
    at_risk: dict[str, Counter[Any]] = {}
    for due, home, key in observed.message_events:
        if any(kill - CRASH_S <= due <= kill for kill in kills):
            at_risk.setdefault(home, Counter())[key] += 1
    lost = extra = in_window = 0
    lost_homes: set[str] = set()
    for home, want in observed.expected_events.items():
        got = observed.stored_events.get(home, Counter())
        missing = want - got
        if missing:
            lost_homes.add(home)
        lost += sum(missing.values())
        extra += sum((got - want).values())
        in_window += sum(min(n, at_risk.get(home, Counter())[k]) for k, n in missing.items())
    published = sum(sum(c.values()) for c in observed.expected_events.values())
    stored = sum(sum(c.values()) for c in observed.stored_events.values())
    return {"expected": published, "stored": stored, "lost": lost, "lost_in_crash_window": in_window,
            "lost_outside_crash_window": lost - in_window, "extra": extra,
            "homes_with_lost_events": len(lost_homes)}, lost_homes


def duplicates(got: Sequence[Delivery], faults: Sequence[Fault], observed: Observed,
               nights: Sequence[Night]) -> dict[str, Any]:
    """Notifications delivered more than once; an all-clear (no alert id in it) is a duplicate only
    beyond the number of alerts of that home resolved in the minute it names."""
    groups: dict[tuple[Any, ...], list[Delivery]] = {}
    for delivery in got:
        groups.setdefault(delivery.key, []).append(delivery)
    zones = {n.config.home: n.config.zone for n in nights}
    kills = [f.start for f in faults if f.kind == "gateway"]
    extra: list[tuple[list[Delivery], int]] = []
    for group in groups.values():
        allowed = 1 if group[0].alert else _resolved_in_minute(group[0], observed, zones)
        if len(group) > allowed:
            extra.append((group, len(group) - allowed))
    across = [(g, n) for g, n in extra if any(d.late for d in g) and any(
        k - CRASH_S <= min(d.real for d in g) <= k < max(d.real for d in g) for k in kills)]
    return {"total": sum(n for _, n in extra), "resent_after_a_crash": sum(n for _, n in across),
            "examples": [[g[0].home, g[0].contact, g[0].alert, g[0].title, g[0].first_line, len(g)]
                         for g, _ in extra[:5]]}


def _resolved_in_minute(d: Delivery, observed: Observed, zones: dict[str, Any]) -> int:
    """How many of the home's alerts were resolved at the local "At HH:MM" the all-clear opens with."""
    zone = zones.get(d.home)
    if zone is None or not d.first_line.startswith("At "):
        return 1
    hhmm = d.first_line[3:8]
    return max(1, sum(n for (home, at), n in observed.resolved.items()
                      if home == d.home and at.astimezone(zone).strftime("%H:%M") == hhmm))


def _during(at: datetime, faults: Sequence[Fault], kind: str, clock: ScaledClock, slack_s: float = 2.0) -> bool:
    return any(f.kind == kind and _sim(clock, f.start - slack_s) <= at <= _sim(clock, f.end + slack_s)
               for f in faults)


LiveAlert = tuple[str, str, datetime, bool]  # alert id, kind, raised at, late


@dataclass
class _Compare:
    """Each compared night's expected alerts matched to what was raised and delivered."""

    observed: Observed
    found: list[Window]
    faults: Sequence[Fault]
    clock: ScaledClock
    lag: timedelta
    live: dict[str, list[LiveAlert]] = field(default_factory=dict)
    sent: dict[str, list[Delivery]] = field(default_factory=dict)
    fig: Counter[str] = field(default_factory=Counter)
    missed: list[list[Any]] = field(default_factory=list)
    unexpected: list[list[Any]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    def night(self, night: Night, lost_homes: set[str]) -> None:
        home = night.config.home
        changed = changed_by_faults(night, self.found, self.lag)
        if not night.robust or changed or home in lost_homes:
            self.fig["homes_not_compared"] += 1
            self.fig["alerts_not_compared"] += len(night.raised)
            return
        self.fig["homes_compared"] += 1
        self.fig["homes_touched_by_a_fault_unchanged"] += changed is False
        pool = [a for a in self.live.get(home, []) if a[2] <= night.end]
        tol = self.lag + RAISE_SLACK + max((w.end - w.start for w in self.found), default=timedelta(0))
        for want in night.raised:
            self.fig["expected"] += 1
            match = next((a for a in pool if a[1] == want.kind
                          and want.at - RAISE_SLACK <= a[2] <= want.at + tol), None)
            if match is None:
                self.missed.append([home, night.scenario, want.kind, want.at.isoformat(), "not raised",
                                    _around(self.observed, home, want.at)])
                continue
            pool.remove(match)
            self.one(night, want, match)
        self.unexpected += [[home, night.scenario, a[1], a[2].isoformat()] for a in pool]

    def one(self, night: Night, want: Expected, match: LiveAlert) -> None:
        copies = self.sent.get(match[0], [])
        if want.alert not in night.called:
            self.fig["raised_not_yet_due_a_call"] += 1
        elif not copies and _during(match[2], self.faults, "notifier", self.clock):
            self.fig["raised_while_notifier_down_never_delivered"] += 1
        elif not copies:
            self.missed.append([night.config.home, night.scenario, want.kind, want.at.isoformat(),
                                "raised, never delivered"])
        else:
            self.fig["delivered"] += 1
            down = any(w.kind == "gateway" and w.start <= match[2] <= w.end for w in self.found)
            self.fig["fell_due_while_gateway_down"] += down
            self.fig["of_those_delivered_marked_late"] += down and any(d.late for d in copies)
            delay = min(d.real for d in copies) - self.clock.real_time_of(match[2])
            self.delays.append(delay)
            self.fig["late_deliveries"] += delay > LATE_DELIVERY_S


def alert_figures(nights: Sequence[Night], observed: Observed, found: list[Window], lost_homes: set[str],
                  clock: ScaledClock, lag: timedelta, faults: Sequence[Fault]) -> dict[str, Any]:
    cmp = _Compare(observed, found, faults, clock, lag)
    for alert, home, kind, at, late in observed.raised:
        cmp.live.setdefault(home, []).append((alert, kind, at, late))
    for d in observed.deliveries:
        if d.alert:
            cmp.sent.setdefault(d.alert, []).append(d)
    for night in nights:
        cmp.night(night, lost_homes)
    cmp.fig["missed"], cmp.fig["unexpected"] = len(cmp.missed), len(cmp.unexpected)
    out: dict[str, Any] = dict(cmp.fig)
    if cmp.delays:
        out["first_delivery_real_s"] = {"median": round(statistics.median(cmp.delays), 3),
                                        "max": round(max(cmp.delays), 3)}
    out["missed_list"], out["unexpected_list"] = cmp.missed[:20], cmp.unexpected[:20]
    return out


def _around(observed: Observed, home: str, at: datetime) -> list[Any]:
    """The home's stored events (device, kind, value, at, received) within an hour of `at`."""
    lo, hi = (at - timedelta(hours=1)).isoformat()[11:19], (at + timedelta(hours=1)).isoformat()[11:19]
    return [row for row in observed.rows.get(home, []) if lo <= row[4] <= hi][:40]


def build_report(summary: dict[str, Any], nights: Sequence[Night], faults: Sequence[Fault],
                 observed: Observed, clock: ScaledClock, lag: timedelta) -> dict[str, Any]:
    found = windows(faults, clock)
    events, lost_homes = event_figures(observed, faults)
    report = dict(summary)
    report["events"] = events
    report["alerts"] = alert_figures(nights, observed, found, lost_homes, clock, lag, faults)
    report["deliveries"] = {"total": len(observed.deliveries),
                            "marked_late": sum(d.late for d in observed.deliveries),
                            "duplicates": duplicates(observed.deliveries, faults, observed, nights)}
    report["faults"] = [f.line() | {"simulated": _sim(clock, f.start).astimezone(UTC).isoformat()}
                        for f in faults]
    report["nights"] = {"scenarios": dict(Counter(n.scenario for n in nights)),
                        "redrawn_as_fragile": sum(n.redrawn for n in nights),
                        "not_robust": sum(not n.robust for n in nights),
                        "expected_alerts": sum(len(n.raised) for n in nights)}
    report["settle_s"] = observed.settle_s
    return report


def text(report: dict[str, Any]) -> str:
    """The few lines a person reads at the end of a run."""
    run, ev, al, de = report["run"], report["events"], report["alerts"], report["deliveries"]
    faults = ", ".join(f"{f['kind']} {f['seconds']}s" for f in report["faults"])
    return "\n".join([
        f"soak: {run['homes']} homes, {run['seconds']:.0f}s at {run['speed']}x, {run['messages']:,} messages "
        f"({run['wall_seconds']}s in all)",
        f"events: {ev['expected']:,} expected, {ev['stored']:,} stored, {ev['lost']} lost "
        f"({ev['lost_in_crash_window']} in a crash window), {ev['extra']} extra",
        f"alerts: {al.get('expected', 0)} expected in {al.get('homes_compared', 0)} homes compared, "
        f"{al.get('delivered', 0)} delivered ({al.get('raised_not_yet_due_a_call', 0)} more raised, no call "
        f"due yet; {al.get('raised_while_notifier_down_never_delivered', 0)} raised while the notifier was "
        f"down and closed before a call got through), {al['missed']} missed, {al['unexpected']} unexpected; "
        f"{al.get('fell_due_while_gateway_down', 0)} fell due between a SIGKILL and the gateway being back "
        f"({al.get('of_those_delivered_marked_late', 0)} found by recovery, marked late; the rest after "
        f"recovery, on time); first delivery "
        f"{al.get('first_delivery_real_s', {}).get('median', '-')}s median, "
        f"{al.get('late_deliveries', 0)} over {LATE_DELIVERY_S:.0f}s; "
        f"{al.get('homes_not_compared', 0)} homes not compared (changed by a fault)",
        f"deliveries: {de['total']:,}, {de['marked_late']} marked late, {de['duplicates']['total']} duplicates "
        f"({de['duplicates']['resent_after_a_crash']} re-sent after a crash)",
        f"faults: {faults}",
    ])
