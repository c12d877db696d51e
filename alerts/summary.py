"""The morning summary: a short account of the night in plain words, at a contact's chosen time.

A carer who was not called still wants to know how the night went ("Julie had a
settled night: in bed 22:40 to 07:05, up twice for a few minutes; no alerts.").
Pure, like the rest of the engine: the bed's in/out times and the alerts raised
are kept in the state (only for homes where someone asked for a summary), and
the summary is a deadline like any other, producing a `SendSummary` decision
that the shell sends at low urgency.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from alerts.decisions import AlertKind, Decision, SendSummary
from alerts.durations import describe_duration
from alerts.messages import WHAT_HAPPENED
from alerts.nights import next_local
from alerts.plan import HomePlan
from alerts.state import BedSpan, HomeState

Out = list[Decision]

KEEP = timedelta(hours=36)  # longer than any night and the morning after it
A_FEW_MINUTES = timedelta(minutes=15)


def start(state: HomeState, now: datetime) -> None:
    """Time each contact's next summary (at start, and when the routine changes)."""
    plan = state.plan
    state.next_summaries = {
        c.name: next_local(now, c.morning_summary, plan.zone)
        for c in plan.summaries if c.morning_summary is not None
    }


def on_bed(state: HomeState, occupied: bool, at: datetime) -> None:
    """Remember when she got into and out of bed; forget what no summary can need."""
    if not state.plan.summaries:
        return
    spans = state.bed_spans
    if occupied:
        spans.append(BedSpan(at))
    elif spans and spans[-1].end is None:
        spans[-1].end = at
    state.bed_spans = [s for s in spans if s.end is None or s.end > at - KEEP]


def on_raised(state: HomeState, kind: AlertKind, at: datetime) -> None:
    if state.plan.summaries and kind.person_safety:
        state.raised_log = [(t, k) for t, k in state.raised_log if t > at - KEEP] + [(at, kind)]


def summary_due(state: HomeState) -> datetime | None:
    return min(state.next_summaries.values()) if state.next_summaries else None


def fire_summary(state: HomeState, at: datetime, out: Out) -> None:
    plan = state.plan
    for contact in plan.summaries:
        due = state.next_summaries.get(contact.name)
        if due is None or due > at or contact.morning_summary is None:
            continue
        state.next_summaries[contact.name] = next_local(due, contact.morning_summary, plan.zone)
        if not plan.away_at(due):  # away, there is no night at home to tell of
            out.append(SendSummary(plan.home, at, contact, account(state, due)))


def _last_night(plan: HomePlan, at: datetime) -> tuple[datetime, datetime]:
    """The night that began most recently at or before `at` (its end may be after `at`)."""
    day = at.astimezone(plan.zone).date()
    spans = [plan.night.night_starting(d) for d in (day, day - timedelta(days=1))]
    return max((s for s in spans if s[0] <= at), key=lambda s: s[0])


def account(state: HomeState, at: datetime) -> str:
    """The night in one or two sentences: when in bed, how often up, which alerts."""
    plan = state.plan
    night_start, night_end = _last_night(plan, at)
    until = min(night_end, at)
    spans = [s for s in state.bed_spans if s.start < until and (s.end is None or s.end > night_start)]
    alerts = [(t, k) for t, k in state.raised_log if night_start <= t <= at]
    said = _alerts(plan, alerts)
    if not spans:
        return f"{plan.person}'s night: {_no_bed(state, night_start, until)}; {said}."
    bed_from = plan.local(spans[0].start)
    ups = _ups(spans)
    last_end = spans[-1].end
    if last_end is None or last_end > at:
        return f"{plan.person} has not got up yet: in bed since {bed_from}, {ups}; {said}."
    settled = "had a settled night" if not alerts else "had a night with alerts"
    return f"{plan.person} {settled}: in bed {bed_from} to {plan.local(last_end)}, {ups}; {said}."


def _no_bed(state: HomeState, start: datetime, until: datetime) -> str:
    plan = state.plan
    if state.bed_occupied is None:
        return f"the bed has not reported, so it cannot be said when {plan.person} was in bed"
    return f"not seen in bed between {plan.local(start)} and {plan.local(until)}"


def _ups(spans: list[BedSpan]) -> str:
    gaps = [b.start - a.end for a, b in pairwise(spans) if a.end is not None]
    if not gaps:
        return "not up in the night"
    times = {1: "once", 2: "twice"}.get(len(gaps), f"{len(gaps)} times")
    longest = max(gaps)
    if longest < A_FEW_MINUTES:
        return f"up {times} for a few minutes"
    if len(gaps) == 1:
        return f"up once for {describe_duration(longest)}"
    return f"up {times}, for up to {describe_duration(longest)}"


def _alerts(plan: HomePlan, alerts: list[tuple[datetime, AlertKind]]) -> str:
    if not alerts:
        return "no alerts"
    words = ", ".join(f"{WHAT_HAPPENED[k]} at {plan.local(t)}" for t, k in alerts)
    return f"{len(alerts)} alert{'s' if len(alerts) > 1 else ''} ({words})"
