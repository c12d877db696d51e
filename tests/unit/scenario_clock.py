"""Local wall-clock times in scenario tables ("02:14", "01:30 BST") as exact instants, and back.

A scenario is written as a care coordinator reads a night: local times, with an
offset only where a clock change makes one ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo


class ScenarioError(ValueError):
    """A scenario that cannot be read; the message says which line and why."""


_WHEN = re.compile(
    r"^(?:(?P<day>\d{4}-\d{2}-\d{2})\s+)?"
    r"(?P<clock>\d{1,2}:\d{2}(?::\d{2})?)"
    r"(?P<offset>[+-]\d{2}:\d{2})?"
    r"(?:\s+(?P<rest>.*))?$"
)


# --- local wall-clock times -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WallTime:
    """A time as written in a scenario: "02:00", "02:44:59", "01:30+01:00", "2026-12-27 18:30"."""

    text: str
    clock: time
    day: date | None = None
    offset: timedelta | None = None


def split_when(text: str) -> tuple[WallTime, str]:
    """The leading time of a line, and the rest of the line."""
    stripped = text.strip()
    match = _WHEN.match(stripped)
    if match is None:
        raise ScenarioError(f"{text!r}: expected a line starting with a time such as 02:00")
    try:
        hour, minute, second = (int(part) for part in (match["clock"] + ":0").split(":")[:3])
        clock = time(hour, minute, second)
        day = date.fromisoformat(match["day"]) if match["day"] else None
    except ValueError:
        raise ScenarioError(f"{text!r}: not a valid date or time") from None
    offset = None
    if match["offset"]:
        sign = -1 if match["offset"][0] == "-" else 1
        hours, minutes = match["offset"][1:].split(":")
        offset = sign * timedelta(hours=int(hours), minutes=int(minutes))
    written = stripped[: match.start("rest")].strip() if match["rest"] else stripped
    return WallTime(written, clock, day, offset), (match["rest"] or "").strip()


def _instants(day: date, wall: WallTime, zone: tzinfo, *, use_offset: bool = True) -> list[datetime]:
    """Every UTC instant at which the wall clock reads `wall` on `day` (0, 1 or 2 of them)."""
    naive = datetime.combine(day, wall.clock)
    found: list[datetime] = []
    for fold in (0, 1):
        local = naive.replace(tzinfo=zone, fold=fold)
        instant = local.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != naive:
            continue  # skipped when the clocks went forward
        if use_offset and wall.offset is not None and local.utcoffset() != wall.offset:
            continue
        if instant not in found:
            found.append(instant)
    return found


def resolve_time(wall: WallTime, zone: tzinfo, ref: datetime, *, forward: bool = True) -> datetime:
    """The instant `wall` means, counting on from `ref` (or back from it, for late news).

    Forward: the first such instant at or after `ref`, so a time earlier on the
    clock than the line before it is the next morning. A time that happens
    twice (the fall-back hour) must carry its offset; one that does not happen
    at all (the spring-forward hour) is refused.
    """
    ref_local = ref.astimezone(zone).replace(tzinfo=None)
    if wall.day is not None:
        days = [wall.day]
    else:
        step = 1 if forward else -1
        days = [ref_local.date() + timedelta(days=step * n) for n in range(3)]
    for day in days:
        naive = datetime.combine(day, wall.clock)
        every = _instants(day, wall, zone, use_offset=False)
        reachable = wall.day is not None or (naive >= ref_local if forward else naive <= ref_local)
        if not every and reachable:
            raise ScenarioError(
                f"{wall.text}: there is no {wall.clock:%H:%M} on {day} in this time zone "
                "(the clocks go forward)"
            )
        options = _instants(day, wall, zone)
        if wall.day is None:
            options = [t for t in options if (t >= ref if forward else t <= ref)]
        if not options:
            continue
        if len(every) > 1 and wall.offset is None:
            first, second = (t.astimezone(zone).strftime("%H:%M%z") for t in every)
            raise ScenarioError(
                f"{wall.text}: {wall.clock:%H:%M} happens twice on {day} (the clocks go back); "
                f"write the offset, e.g. {_with_colon(first)} or {_with_colon(second)}"
            )
        return min(options) if forward else max(options)
    raise ScenarioError(f"{wall.text}: no such time near {ref_local:%Y-%m-%d %H:%M}")


def _with_colon(text: str) -> str:
    """'01:30+0100' -> '01:30+01:00', the way offsets are written in scenarios."""
    return f"{text[:-2]}:{text[-2:]}"


def show_time(at: datetime, zone: tzinfo) -> str:
    """Local time as people read it, with seconds only when there are some and the
    offset only when that wall-clock time happens twice (the fall-back hour)."""
    local = at.astimezone(zone)
    text = local.strftime("%a %d %b %H:%M") + (local.strftime(":%S") if local.second else "")
    naive = local.replace(tzinfo=None)
    if naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset():
        text += _with_colon(local.strftime("%z"))
    return text


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _start_of(day: date, zone: tzinfo) -> datetime:
    """Midnight at the start of `day`: the first input is the first such time after it."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
