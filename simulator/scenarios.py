"""Scenarios: an incident spliced into one of the persona's ordinary nights.

Each scenario builds the night on a `Timeline` and says, in contract terms,
what it injected: which alert conditions start to hold and when they stop,
and what people did. `generate` turns that into replay JSONL lines and the
ground-truth lifecycle lines (see `groundtruth`), both deterministic for a
given seed. The builders themselves live in `simulator.incidents`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from alerts.homeconfig import HomeConfig
from simulator import groundtruth as gt
from simulator.night import (
    MINUTE,
    NightTimes,
    Timeline,
    Window,
    asleep,
    between,
    checkins,
    checks_to_avoid,
    evening,
    morning,
    night_times,
    render,
    up_and_about,
)
from simulator.personas import Persona

DEFAULT_DAY = date(2026, 1, 11)
MAX_ATTEMPTS = 20


class ScenarioError(ValueError):
    """A scenario that cannot be built for this home (a rule or device it needs is missing)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a scenario injected, in contract terms, and when its run ends."""

    end: datetime
    conditions: tuple[gt.Condition, ...] = ()
    actions: tuple[gt.Action, ...] = ()
    issues: tuple[gt.ServiceIssue, ...] = ()
    company: tuple[gt.Span, ...] = ()  # someone with the person: [start, end)


@dataclass
class Ctx:
    """Everything a scenario builder needs, with the pieces of an ordinary night at hand."""

    home: HomeConfig
    persona: Persona
    day: date
    rng: random.Random
    tl: Timeline
    times: NightTimes
    avoid: list[Window] = field(default_factory=list)
    quiet: dict[str, Window] = field(default_factory=dict)
    battery: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    delivery: list[Callable[[], None]] = field(default_factory=list)  # late/duplicate delivery

    @property
    def rooms(self) -> tuple[str, ...]:
        """Where the person goes when up in the night (their first habitual trip)."""
        return self.persona.trips[0].rooms if self.persona.trips else ()

    def secs(self, lo: int, hi: int) -> timedelta:
        return timedelta(seconds=self.rng.randint(lo, hi))

    def pick(self, length: timedelta, lo: datetime | None = None, hi: datetime | None = None) -> datetime:
        """A start for an incident `length` long, asleep-time only, clear of the routine's checks."""
        start, stop = self.times.night
        lo = lo or max(self.times.bedtime + 40 * MINUTE, start + 5 * MINUTE)
        hi = hi or min(stop, self.times.wake) - length - 10 * MINUTE
        for _ in range(200):
            at = between(self.rng, lo, hi)
            if lo <= at <= hi and all(at + length < a or b < at for a, b in self.avoid):
                return at
        raise ScenarioError(f"no room in the night of {self.day} for a {length} incident")

    def need(self, ok: object, what: str) -> None:
        if not ok:
            raise ScenarioError(f"this scenario needs {what} in home {self.home.home!r}")

    def up(self, start: datetime, end: datetime, rooms: tuple[str, ...] | None = None) -> list[datetime]:
        return up_and_about(self.tl, self.persona, self.rng, start, end, rooms or self.rooms)

    def sleep_until(self, until: datetime) -> None:
        """The ordinary evening, then asleep (with the usual trips) until shortly before `until`."""
        evening(self.tl, self.persona, self.rng, self.times)
        asleep(self.tl, self.persona, self.rng, (self.times.bedtime, until - 5 * MINUTE), self.avoid)

    def rest_of_night(self, back_in_bed: datetime) -> datetime:
        """Asleep again from `back_in_bed` until the usual wake-up and morning; returns the end."""
        wake = max(self.times.wake, back_in_bed + 30 * MINUTE)
        asleep(self.tl, self.persona, self.rng, (back_in_bed, wake), self.avoid)
        end = wake + self.persona.morning
        morning(self.tl, self.persona, self.rng, wake, end)
        return end

    def send_at(self, raised: datetime, before: datetime) -> str:
        """Who was called last before `before` for an alert raised at `raised`."""
        name = self.home.contacts[0].name
        for at, _, contact in gt.send_times(self.home, raised):
            if at >= before:
                break
            name = contact
        return name


Builder = Callable[[Ctx], Outcome]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    build: Builder
    day: date | None = None  # a scenario tied to a date (daylight saving) ignores --date


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, summary: str, day: date | None = None) -> Callable[[Builder], Builder]:
    """Register a builder under a name for `tecmon sim scenario NAME`."""

    def register(build: Builder) -> Builder:
        SCENARIOS[name] = Scenario(name, summary, build, day)
        return build

    return register


@dataclass(frozen=True, slots=True)
class Generated:
    name: str
    lines: list[str]
    expected: list[gt.Expected]
    end: datetime


def all_scenarios() -> dict[str, Scenario]:
    from simulator import care_incidents, incidents, sensor_incidents  # noqa: F401  (they register)

    return SCENARIOS


def generate(
    name: str, home: HomeConfig, persona: Persona, seed: int = 0, day: date | None = None,
    prefix: str = "zigbee2mqtt",
) -> Generated:
    """Build scenario `name` for this home; the same inputs always give the same output."""
    known = all_scenarios()
    if name not in known:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(sorted(known))}")
    chosen = known[name]
    night = chosen.day or day or DEFAULT_DAY
    rng = random.Random(f"{name}:{seed}:{night.isoformat()}:{home.home}")
    for _ in range(MAX_ATTEMPTS):  # a draw that lands two things on one instant is redrawn
        try:
            return _attempt(chosen, home, persona, night, rng, prefix)
        except gt.AmbiguousTie:
            continue
    raise ScenarioError(f"scenario {name!r}: could not avoid simultaneous events")


def _attempt(chosen: Scenario, home: HomeConfig, persona: Persona, night: date,
             rng: random.Random, prefix: str) -> Generated:
    tl = Timeline(home)
    times = night_times(persona, home, night, rng)
    ctx = Ctx(home, persona, night, rng, tl, times, avoid=checks_to_avoid(times))
    outcome = chosen.build(ctx)
    checkins(tl, persona, rng, (times.start, outcome.end), ctx.quiet, ctx.battery)
    for change in ctx.delivery:
        change()
    lines = render(tl, prefix, motion_clears_until=outcome.end)
    end = max(tl.end(), outcome.end)
    expected = gt.merge(
        gt.safety_lines(home, outcome.conditions, outcome.actions, end, outcome.company),
        gt.service_lines(home, outcome.issues, end),
    )
    return Generated(chosen.name, lines, expected, end)
