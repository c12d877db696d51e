"""Local wall-clock windows turned into exact UTC instants.

Routines are written in the home's local time ("night 22:00 to 07:30"), while
every duration is real elapsed time. These helpers answer "which night is this
instant in?" and "when is 01:00 next?" in UTC, so a night that crosses a
daylight-saving change is exactly as long as it really is. Pure: the zone is
handed in; results are memoised per local date because they never change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

Span = tuple[datetime, datetime]


def local_instant(day: date, clock: time, zone: tzinfo) -> datetime:
    """The UTC instant of a local wall-clock time.

    A time that does not exist (skipped at spring-forward) lands after the
    gap; a time that happens twice (fall-back) means its first occurrence.
    """
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


class NightWindow:
    """A nightly local window such as 22:00-07:30, possibly crossing midnight."""

    __slots__ = ("_by_day", "end", "start", "zone")

    def __init__(self, start: time, end: time, zone: tzinfo) -> None:
        self.start = start
        self.end = end
        self.zone = zone
        self._by_day: dict[date, Span] = {}

    def night_starting(self, day: date) -> Span:
        """The night that begins on local date `day`, as UTC [start, end)."""
        span = self._by_day.get(day)
        if span is None:
            end_day = day + timedelta(days=1) if self.end <= self.start else day
            span = (local_instant(day, self.start, self.zone),
                    local_instant(end_day, self.end, self.zone))
            self._by_day[day] = span
        return span

    def night_at(self, at: datetime) -> Span | None:
        """The night containing instant `at`, or None when `at` is daytime."""
        day = at.astimezone(self.zone).date()
        for candidate in (day, day - timedelta(days=1)):
            start, end = self.night_starting(candidate)
            if start <= at < end:
                return start, end
        return None

    def contains(self, at: datetime) -> bool:
        return self.night_at(at) is not None

    def daytime_from(self, at: datetime) -> datetime:
        """`at` itself when it is daytime, otherwise the end of its night."""
        night = self.night_at(at)
        return at if night is None else night[1]


def next_local(after: datetime, clock: time, zone: tzinfo) -> datetime:
    """The first UTC instant strictly after `after` whose local time is `clock`."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        candidate = local_instant(day, clock, zone)
        if candidate > after:
            return candidate
        day += timedelta(days=1)
