"""Many nights in a few figures, for the people who review a routine with the person.

Each function takes plain rows (stored steps, bed readings) and the nights
they are counted in, so every figure can be tested from a small table:
- alerts per night, and the nights without one;
- outcomes by kind: what carers recorded when they closed an alert (the
  outcome text's prefix: "false alarm", "needed help", "no action needed",
  "other"), or that it cleared by itself or by the person, or is still open;
  the false-alarm share is of the alerts a carer judged;
- time to acknowledge per contact: from the first call to that contact to
  their acknowledgement (median, 90th percentile), which says whether the
  escalation timings suit the people called;
- how long the person is out of bed at night (a histogram), and their
  typical bedtime and rising time (median local HH:MM), which is what a
  routine's thresholds should be set against.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from gateway.history.nights import Night, Span, changes, night_index, spans
from gateway.store.base import EventRow, StepRow

OUTCOMES = ("false_alarm", "needed_help", "no_action_needed", "other")
_PREFIXES = (("false alarm", "false_alarm"), ("needed help", "needed_help"),
             ("no action needed", "no_action_needed"), ("other", "other"))
ENDINGS = (*OUTCOMES, "cleared", "by_person", "open")
BUCKETS_MIN = (0, 5, 15, 30, 45, 60, 120)
"""Out-of-bed histogram edges in minutes; the last bucket is open-ended."""
SLEEP_GAP = timedelta(hours=1)
"""Time out of bed shorter than this (the loo, a drink) does not end the night's sleep."""


def outcome_class(text: str) -> str:
    """"false alarm: making tea" -> false_alarm; free text a carer wrote elsewhere -> other."""
    lowered = text.strip().lower()
    for prefix, name in _PREFIXES:
        if lowered == prefix or lowered.startswith(prefix + ":"):
            return name
    return "other"


def ending(steps: Sequence[StepRow]) -> str:
    """How one alert ended: a carer's outcome class, cleared, by the person, or still open."""
    resolved = next((s for s in steps if s.step == "resolved"), None)
    if resolved is None:
        return "open"
    if resolved.contact is None:
        return "cleared"
    prefix = f"Resolved by {resolved.contact}: "
    if resolved.reason.startswith(prefix):
        return outcome_class(resolved.reason[len(prefix):])
    return "by_person"


def per_night(nights: Sequence[Night], alerts: Iterable[Sequence[StepRow]]) -> list[dict[str, Any]]:
    counts: list[dict[str, int]] = [{} for _ in nights]
    for steps in alerts:
        index = night_index(nights, steps[0].at)
        if index is not None:
            counts[index][steps[0].kind] = counts[index].get(steps[0].kind, 0) + 1
    return [{"date": n.day.isoformat(), "alerts": sum(c.values()), "kinds": dict(sorted(c.items()))}
            for n, c in zip(nights, counts, strict=True)]


def outcomes(alerts: Iterable[Sequence[StepRow]]) -> list[dict[str, Any]]:
    by_kind: dict[str, dict[str, int]] = {}
    for steps in alerts:
        tally = by_kind.setdefault(steps[0].kind, dict.fromkeys(ENDINGS, 0))
        tally[ending(steps)] += 1
    out = []
    for kind, tally in sorted(by_kind.items()):
        judged = sum(tally[o] for o in OUTCOMES)
        share = round(tally["false_alarm"] / judged, 3) if judged else None
        out.append({"kind": kind, "alerts": sum(tally.values()), **tally, "false_alarm_share": share})
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or under it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def acknowledge_times(alerts: Iterable[Sequence[StepRow]]) -> list[dict[str, Any]]:
    """Seconds from the first call to a contact to their acknowledgement, per contact."""
    samples: dict[str, list[float]] = {}
    for steps in alerts:
        called: dict[str, datetime] = {}
        for s in steps:
            if s.step in ("notified", "escalated") and s.contact and s.contact not in called:
                called[s.contact] = s.at
            elif s.step == "acknowledged" and s.contact in called:
                samples.setdefault(s.contact, []).append((s.at - called[s.contact]).total_seconds())
    return [{"contact": c, "count": len(v), "median_s": statistics.median(v), "p90_s": percentile(v, 0.9)}
            for c, v in sorted(samples.items())]


# --- the bed ----------------------------------------------------------------------------------


def in_bed(rows: Iterable[EventRow], initial: dict[str, bool], since: datetime) -> list[Span]:
    """Occupied intervals of every bed device together (merged), from `since` on."""
    by_device: dict[str, list[EventRow]] = {}
    for row in changes(rows):
        by_device.setdefault(row.device, []).append(row)
    found: list[Span] = []
    for device in sorted(set(by_device) | set(initial)):
        found += spans(by_device.get(device, []), True, initial.get(device), since)
    found.sort(key=lambda s: s[0])
    return _merged(found, timedelta(0))


def _merged(found: Sequence[Span], gap: timedelta) -> list[Span]:
    out: list[Span] = []
    for begin, finish in found:
        if out and (out[-1][1] is None or begin - out[-1][1] <= gap):
            last_end = out[-1][1]
            out[-1] = (out[-1][0], None if last_end is None or finish is None else max(last_end, finish))
        else:
            out.append((begin, finish))
    return out


def out_of_bed(nights: Sequence[Night], occupied: Sequence[Span]) -> dict[str, Any]:
    """Times out of bed that began inside a night and ended back in bed before it ended."""
    minutes: list[float] = []
    for (_, left), (back, _) in pairwise(occupied):
        if left is None:
            continue
        night = next((n for n in nights if n.start <= left < n.end), None)
        if night is not None and back < night.end:
            minutes.append((back - left).total_seconds() / 60)
    highs: tuple[int | None, ...] = (*BUCKETS_MIN[1:], None)
    buckets = [{"from_minutes": lo, "to_minutes": hi,
                "count": sum(1 for m in minutes if lo <= m and (hi is None or m < hi))}
               for lo, hi in zip(BUCKETS_MIN, highs, strict=True)]
    return {"count": len(minutes), "buckets": buckets}


def _typical(moments: Sequence[tuple[Night, datetime]], zone: tzinfo) -> str | None:
    """Median local clock time, counted from the evening a night starts on (so 23:50 < 00:10)."""
    if not moments:
        return None
    offsets = []
    for night, at in moments:
        wall = at.astimezone(zone).replace(tzinfo=None)  # wall-clock: a DST change shifts nothing
        offsets.append((wall - datetime.combine(night.day, time(0))).total_seconds() / 60)
    median = round(statistics.median(offsets)) % (24 * 60)
    return f"{median // 60:02d}:{median % 60:02d}"


def sleep_times(nights: Sequence[Night], occupied: Sequence[Span], since: datetime,
                zone: tzinfo) -> dict[str, Any]:
    """Typical bedtime and rising: the night's sleep is the time in bed (short trips out
    bridged) that overlaps the night window most."""
    sleeps = _merged(occupied, SLEEP_GAP)
    beds: list[tuple[Night, datetime]] = []
    rises: list[tuple[Night, datetime]] = []
    for night in nights:
        best, overlap = None, timedelta(0)
        for span in sleeps:
            shared = min(span[1] or night.end, night.end) - max(span[0], night.start)
            if shared > overlap:
                best, overlap = span, shared
        if best is None:
            continue
        if best[0] > since:  # in bed since before the readings began: bedtime unknown
            beds.append((night, best[0]))
        if best[1] is not None:
            rises.append((night, best[1]))
    return {"bedtime": _typical(beds, zone), "rising": _typical(rises, zone),
            "nights_with_sleep": len(rises)}
