"""Personas: how one person's nights usually go, as data the simulator draws from.

A persona is written like a routine is co-produced: "I go to bed about 22:40,
get up for the loo once or twice and sometimes make tea". Each habit is a mean
with a spread, so every seeded night is different yet stays inside what is
normal for that person; `check_against_home` proves the spreads can never
cross the alert thresholds of the persona's own home configuration, because a
"normal" night that raises an alert would make the simulator a liar.

Clock times are local wall-clock and stored as an offset from midnight of the
evening the night starts on ("00:45" is 24h45m), so a draw never has to guess
which calendar day a time belongs to.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import yaml

from alerts.durations import parse_clock, parse_duration
from alerts.events import EventKind
from alerts.homeconfig import HomeConfig, load_home_config

DATA = Path(str(resources.files("simulator") / "data"))
PERSONA_DIR = DATA / "personas"
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


class PersonaError(ValueError):
    """A persona file that cannot be used; the message names the file and field."""


@dataclass(frozen=True, slots=True)
class Spread:
    """A duration that varies: drawn from a normal law, clamped to mean ± 2 spreads.

    The clamp is what makes safety provable: `hi` is the longest value any
    seed can ever produce.
    """

    mean: timedelta
    spread: timedelta

    @property
    def lo(self) -> timedelta:
        return max(timedelta(0), self.mean - 2 * self.spread)

    @property
    def hi(self) -> timedelta:
        return self.mean + 2 * self.spread

    def draw(self, rng: random.Random) -> timedelta:
        seconds = rng.gauss(self.mean.total_seconds(), self.spread.total_seconds())
        drawn = timedelta(seconds=round(seconds))
        return min(max(drawn, self.lo), self.hi)


@dataclass(frozen=True, slots=True)
class Trip:
    """Getting up in the night: how often, for how long, through which rooms."""

    name: str
    duration: Spread
    rooms: tuple[str, ...]
    per_night: tuple[int, int] = (0, 0)
    chance: float = 0.0

    def count(self, rng: random.Random) -> int:
        base = rng.randint(*self.per_night)
        return base + (1 if self.chance and rng.random() < self.chance else 0)


@dataclass(frozen=True, slots=True)
class DoorUse:
    """A door the person uses at a habitual time (`at`) or some time after waking."""

    door: str
    open_for: Spread
    at: Spread | None = None
    after_wake: Spread | None = None
    goes_out: bool = False
    room_after: str | None = None


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    description: str
    home_file: Path
    devices: tuple[Mapping[str, Any], ...]
    evening_from: timedelta
    bedtime: Spread
    wake: Spread
    morning: timedelta
    motion_every: Spread
    evening_rooms: tuple[str, ...]
    trips: tuple[Trip, ...]
    blips_per_night: tuple[int, int]
    blip_length: Spread
    doors: tuple[DoorUse, ...]
    battery: tuple[int, int]
    checkin_every: Spread

    def home(self) -> HomeConfig:
        return load_home_config(self.home_file)


def local_instant(day: date, offset: timedelta, zone: ZoneInfo) -> datetime:
    """UTC instant of local wall-clock `offset` after midnight starting `day`."""
    days, rest = divmod(offset, DAY)
    clock = (datetime.min + rest).time()
    return datetime.combine(day + days * DAY, clock, tzinfo=zone).astimezone(UTC)


class _Reader:
    """Reads one persona document; every problem names the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> NoReturn:
        raise PersonaError(f"{self.source}: {where}: {problem}")

    def mapping(self, raw: object, where: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.fail(where, "expected a mapping")
        unknown = sorted(set(raw) - keys)
        if unknown:
            self.fail(f"{where}.{unknown[0]}", "unknown key")
        return raw

    def duration(self, raw: object, where: str) -> timedelta:
        try:
            return parse_duration(str(raw))
        except ValueError as exc:
            self.fail(where, str(exc))

    def clock(self, raw: object, where: str, evening: timedelta) -> timedelta:
        try:
            clock: time = parse_clock(str(raw))
        except ValueError as exc:
            self.fail(where, str(exc))
        offset = timedelta(hours=clock.hour, minutes=clock.minute)
        return offset + DAY if offset < evening else offset

    def spread(self, raw: object, where: str, evening: timedelta | None = None) -> Spread:
        if isinstance(raw, str):
            raw = {"mean": raw, "spread": "0s"}
        item = self.mapping(raw, where, {"mean", "spread"})
        if evening is None:
            mean = self.duration(item.get("mean"), f"{where}.mean")
        else:
            mean = self.clock(item.get("mean"), f"{where}.mean", evening)
        return Spread(mean, self.duration(item.get("spread", "0s"), f"{where}.spread"))

    def pair(self, raw: object, where: str) -> tuple[int, int]:
        ok = isinstance(raw, list) and len(raw) == 2 and all(isinstance(n, int) for n in raw)
        if not ok or raw[0] > raw[1] or raw[0] < 0:  # type: ignore[index]
            self.fail(where, f"expected [low, high] whole numbers, got {raw!r}")
        return int(raw[0]), int(raw[1])  # type: ignore[index]

    def trip(self, raw: object, where: str) -> Trip:
        keys = {"name", "per_night", "chance", "duration", "rooms"}
        item = self.mapping(raw, where, keys)
        rooms = item.get("rooms")
        if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
            self.fail(f"{where}.rooms", "expected a list of room names")
        chance = item.get("chance", 0.0)
        if not isinstance(chance, int | float) or not 0 <= chance <= 1:
            self.fail(f"{where}.chance", f"expected a probability 0..1, got {chance!r}")
        per_night = self.pair(item.get("per_night", [0, 0]), f"{where}.per_night")
        return Trip(str(item.get("name", where)), self.spread(item.get("duration"),
                    f"{where}.duration"), tuple(rooms), per_night, float(chance))

    def door(self, raw: object, where: str, evening: timedelta) -> DoorUse:
        keys = {"door", "at", "after_wake", "open_for", "goes_out", "room_after"}
        item = self.mapping(raw, where, keys)
        if ("at" in item) == ("after_wake" in item):
            self.fail(where, "give exactly one of `at` (a local time) or `after_wake`")
        at = self.spread(item["at"], f"{where}.at", evening) if "at" in item else None
        after = self.spread(item["after_wake"], f"{where}.after_wake") if at is None else None
        return DoorUse(
            door=str(item.get("door")),
            open_for=self.spread(item.get("open_for", "20s"), f"{where}.open_for"),
            at=at, after_wake=after, goes_out=bool(item.get("goes_out", False)),
            room_after=item.get("room_after"),
        )


_TOP_KEYS = {
    "name", "description", "home_config", "devices", "evening", "bedtime", "wake", "morning",
    "motion_every", "trips", "restlessness", "doors", "battery", "checkin_every",
}


def parse_persona(data: object, source: str, base: Path) -> Persona:
    """Build a persona from parsed YAML; `base` resolves a relative `home_config`."""
    read = _Reader(source)
    top = read.mapping(data, "(top level)", _TOP_KEYS)
    evening = read.mapping(top.get("evening", {}), "evening", {"from", "rooms"})
    evening_from = read.clock(evening.get("from", "18:00"), "evening.from", timedelta(0))
    restless = read.mapping(top.get("restlessness", {}), "restlessness", {"blips_per_night", "length"})
    devices = top.get("devices")
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        read.fail("devices", "expected a list of devices as in the home configuration")
    return Persona(
        name=str(top.get("name") or read.fail("name", "required")),
        description=str(top.get("description", "")),
        home_file=(base / str(top.get("home_config") or read.fail("home_config", "required"))),
        devices=tuple(devices),
        evening_from=evening_from,
        bedtime=read.spread(top.get("bedtime"), "bedtime", evening_from),
        wake=read.spread(top.get("wake"), "wake", evening_from),
        morning=read.duration(top.get("morning", "2h"), "morning"),
        motion_every=read.spread(top.get("motion_every", "3m"), "motion_every"),
        evening_rooms=tuple(evening.get("rooms", [])),
        trips=tuple(read.trip(t, f"trips[{i}]") for i, t in enumerate(top.get("trips", []))),
        blips_per_night=read.pair(restless.get("blips_per_night", [0, 0]), "restlessness.blips_per_night"),
        blip_length=read.spread(restless.get("length", "20s"), "restlessness.length"),
        doors=tuple(read.door(d, f"doors[{i}]", evening_from) for i, d in enumerate(top.get("doors", []))),
        battery=read.pair(top.get("battery", [60, 100]), "battery"),
        checkin_every=read.spread(top.get("checkin_every", {"mean": "1h", "spread": "5m"}), "checkin_every"),
    )


def load_persona_file(path: Path) -> Persona:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PersonaError(f"{path}: cannot be read: {exc}") from None
    return parse_persona(data, str(path), path.parent)


@cache
def builtin_personas() -> dict[str, Persona]:
    """The shipped personas by name."""
    found = [load_persona_file(p) for p in sorted(PERSONA_DIR.glob("*.yaml")) if ".home." not in p.name]
    return {p.name: p for p in found}


def get_persona(name: str) -> Persona:
    personas = builtin_personas()
    if name not in personas:
        raise PersonaError(f"unknown persona {name!r}; known: {', '.join(sorted(personas))}")
    return personas[name]


def resolve_home(arg: str, persona: str | None = None) -> tuple[HomeConfig, Persona]:
    """`--home julie` is a persona's bundled home; anything else is a home YAML path.

    For a path, the persona is the one given, else the one whose home has the
    same id, else julie's habits applied to that home's devices.
    """
    personas = builtin_personas()
    if arg in personas and not Path(arg).exists():
        chosen = personas[persona] if persona else personas[arg]
        return personas[arg].home(), chosen
    home = load_home_config(arg)
    if persona:
        return home, get_persona(persona)
    same = [p for p in personas.values() if p.home().home == home.home]
    return home, same[0] if same else personas["julie"]


def motion_devices(home: HomeConfig, rooms: tuple[str, ...]) -> tuple[str, ...]:
    """Motion sensors in these rooms; every motion sensor if none of the rooms has one."""
    motion = [d for d in home.devices if d.kind is EventKind.MOTION]
    inside = tuple(d.id for d in motion if d.room in rooms)
    return inside or tuple(d.id for d in motion)


def _offset(clock: time, evening: timedelta) -> timedelta:
    offset = timedelta(hours=clock.hour, minutes=clock.minute)
    return offset + DAY if offset < evening else offset


def _device_problems(p: Persona, home: HomeConfig) -> list[str]:
    mine = [{k: v for k, v in d.items() if k != "heartbeat"} for d in p.devices]
    theirs = [d.model_dump(exclude={"heartbeat"}, exclude_defaults=True) for d in home.devices]
    theirs = [{k: (str(v) if k == "kind" else v) for k, v in d.items()} for d in theirs]
    return [] if mine == theirs else ["devices: differ from the home configuration's devices"]


def _timing_problems(p: Persona, home: HomeConfig) -> list[str]:
    """Would any draw reach a threshold? Margins cover the simulator's own placement slack."""
    r, ev = home.routine, p.evening_from
    night_start, night_end = _offset(r.night.from_, ev), _offset(r.night.to, ev)
    wanted: list[tuple[bool, str]] = [
        (ev + 2 * MINUTE < night_start, "evening.from must be before the night starts"),
        (p.motion_every.lo >= MINUTE, "motion_every: a PIR sensor cannot fire more than once a minute"),
        (p.wake.lo + p.morning > night_end + 10 * MINUTE, "morning: must run past the end of the night"),
    ]
    if r.in_bed_by:
        latest = _offset(r.in_bed_by, ev) - 20 * MINUTE
        wanted.append((p.bedtime.hi < latest, "bedtime: too close to in_bed_by"))
    if r.up_by:
        wanted.append((p.wake.hi < _offset(r.up_by, ev) - 20 * MINUTE, "wake: too close to up_by"))
    if r.out_of_bed:
        after = r.out_of_bed.alert_after
        wanted.append((p.wake.lo + after > night_end or p.wake.lo >= night_end,
                       "wake: up so early that out_of_bed would alert before the night ends"))
        wanted += [(t.duration.hi < after - 5 * MINUTE, f"trips.{t.name}: can last past out_of_bed")
                   for t in p.trips]
    if r.still_while_up:
        quiet = r.still_while_up.alert_after - 2 * MINUTE
        wanted.append((p.motion_every.hi + 2 * MINUTE < quiet, "motion_every: gaps reach still_while_up"))
        wanted.append((p.blip_length.hi < quiet, "restlessness.length: reaches still_while_up"))
    return [problem for ok, problem in wanted if not ok]


def _seen_in(home: HomeConfig, room: str | None) -> bool:
    return bool(room) and any(d.room == room and d.kind is EventKind.MOTION for d in home.devices)


def _door_problems(p: Persona, home: HomeConfig) -> list[str]:
    doors = {d.id: d for d in home.devices if d.kind is EventKind.DOOR}
    night_end = _offset(home.routine.night.to, p.evening_from)
    problems = []
    for i, use in enumerate(p.doors):
        if use.door not in doors:
            problems.append(f"doors[{i}].door: {use.door!r} is not a door of the home")
        elif use.at is not None and use.at.hi + use.open_for.hi + 5 * MINUTE >= p.bedtime.lo:
            problems.append(f"doors[{i}].at: too close to bedtime")
        elif use.at is not None and doors[use.door].exit and not _seen_in(home, use.room_after):
            problems.append(f"doors[{i}].room_after: needs a motion sensor to show the person is back")
        elif use.after_wake is not None and use.goes_out and doors[use.door].exit and (
                p.wake.lo + use.after_wake.lo <= night_end):
            problems.append(f"doors[{i}].after_wake: going out inside the night would alert")
    return problems


def check_against_home(p: Persona, home: HomeConfig) -> list[str]:
    """Why this persona's ordinary nights could raise an alert in this home (empty: they cannot)."""
    return _device_problems(p, home) + _timing_problems(p, home) + _door_problems(p, home)
