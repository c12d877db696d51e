"""One simulated night: the person's habits turned into timed canonical events.

A night is built on a `Timeline` from small pieces (the evening, sleep with
its loo trips and restless blips, the morning, the devices' routine battery
reports) so that scenarios can splice an incident into an otherwise ordinary
night. The timeline stores canonical `SensorEvent`s with the time each one is
*received*, which is what lets scenarios model late or duplicated delivery;
`render` turns it into replay JSONL through the device profiles' encoders,
the same code the gateway decodes with.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import HomeConfig
from device_profiles import DeviceCodec, get_profile
from simulator.personas import Persona, local_instant, motion_devices

MOTION_TIMEOUT = timedelta(seconds=90)  # Zigbee2MQTT sends occupancy false after this
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
Window = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Reading:
    """A sensor event and when the gateway receives it (later, if delivery was late)."""

    event: SensorEvent
    received: datetime


@dataclass(frozen=True, slots=True)
class Command:
    """A carer's action in the replay input: acknowledge or resolve an alert, company on or off."""

    ts: datetime
    body: tuple[tuple[str, str | bool], ...]


Item = Reading | Command


@dataclass
class Timeline:
    """The messages of a simulated stretch of time for one home, in any order."""

    home: HomeConfig
    items: list[Item] = field(default_factory=list)

    def add(self, device: str, kind: EventKind, value: bool | int, at: datetime) -> None:
        event = SensorEvent(self.home.home, device, kind, value, at, "simulator")
        self.items.append(Reading(event, at))

    def bed(self, at: datetime, occupied: bool) -> None:
        self.add(roles(self.home).bed, EventKind.BED, occupied, at)

    def motion(self, device: str, at: datetime) -> None:
        self.add(device, EventKind.MOTION, True, at)

    def door(self, device: str, opened: datetime, open_for: timedelta) -> None:
        self.add(device, EventKind.DOOR, True, opened)
        self.add(device, EventKind.DOOR, False, opened + open_for)

    def press(self, at: datetime, action: str | None = None) -> None:
        """The person's button; `action` is a press other than the usual one ("double")."""
        button = roles(self.home).button
        if button is None:
            raise ValueError(f"home {self.home.home!r} has no button device")
        event = SensorEvent(self.home.home, button, EventKind.BUTTON, True, at, "simulator", action=action)
        self.items.append(Reading(event, at))

    def command(self, at: datetime, **body: str | bool) -> None:
        self.items.append(Command(at, tuple(body.items())))

    def end(self) -> datetime:
        return max(_ts(item) for item in self.items)


@dataclass(frozen=True, slots=True)
class Roles:
    """Which device plays which part in the person's night."""

    bed: str
    exits: tuple[str, ...]
    button: str | None
    devices: tuple[str, ...]  # the sensors: a light (check_with_me) is mains-powered and never fails here


def roles(home: HomeConfig) -> Roles:
    by_kind = {kind: [d.id for d in home.devices if d.kind is kind] for kind in EventKind}
    if not by_kind[EventKind.BED]:
        raise ValueError(f"home {home.home!r} has no bed device to simulate a night with")
    return Roles(
        bed=by_kind[EventKind.BED][0],
        exits=tuple(d.id for d in home.devices if d.exit),
        button=next(iter(by_kind[EventKind.BUTTON]), None),
        devices=tuple(d.id for d in home.devices if d.kind is not EventKind.LIGHT),  # sensors
    )


@dataclass(frozen=True, slots=True)
class NightTimes:
    """The instants that matter for one night, all UTC."""

    start: datetime  # the evening, when the file begins
    night: Window  # the routine's night window
    bedtime: datetime
    wake: datetime
    end: datetime  # the last line of the ordinary night
    in_bed_check: datetime | None
    up_check: datetime | None


def night_times(p: Persona, home: HomeConfig, day: date, rng: random.Random) -> NightTimes:
    zone, routine = home.zone, home.routine
    start = local_instant(day, p.evening_from, zone)

    def clock_after_evening(clock: object) -> datetime:
        offset = timedelta(hours=clock.hour, minutes=clock.minute)  # type: ignore[attr-defined]
        return local_instant(day, offset if offset >= p.evening_from else offset + 24 * 60 * MINUTE, zone)

    wake = local_instant(day, p.wake.draw(rng), zone)
    return NightTimes(
        start=start,
        night=(clock_after_evening(routine.night.from_), clock_after_evening(routine.night.to)),
        bedtime=local_instant(day, p.bedtime.draw(rng), zone),
        wake=wake,
        end=wake + p.morning,
        in_bed_check=clock_after_evening(routine.in_bed_by) if routine.in_bed_by else None,
        up_check=clock_after_evening(routine.up_by) if routine.up_by else None,
    )


def between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """A whole-second instant in [lo, hi]."""
    span = max(0, int((hi - lo).total_seconds()))
    return lo + timedelta(seconds=rng.randint(0, span))


def up_and_about(
    tl: Timeline, p: Persona, rng: random.Random, start: datetime, end: datetime,
    rooms: tuple[str, ...],
) -> list[datetime]:
    """Motion in these rooms from `start` until `end`, never further apart than the persona's gaps.

    Returns the detection times, which scenarios need for their ground truth.
    """
    sensors = motion_devices(tl.home, rooms)
    seen: list[datetime] = []
    if not sensors:
        return seen
    at = start + timedelta(seconds=rng.randint(20, 60))
    index = rng.randrange(len(sensors))
    while at < end:
        tl.motion(sensors[index % len(sensors)], at)
        seen.append(at)
        index += rng.randint(0, 1)
        at += p.motion_every.draw(rng)
    return seen


def trip(tl: Timeline, p: Persona, rng: random.Random, left: datetime, length: timedelta,
         rooms: tuple[str, ...]) -> None:
    """Out of bed and back: the bed empties, motion along the way, the bed fills again."""
    tl.bed(left, False)
    up_and_about(tl, p, rng, left, left + length - 30 * SECOND, rooms)
    tl.bed(left + length, True)


def _free(spot: Window, taken: list[Window], gap: timedelta) -> bool:
    return all(spot[1] + gap <= a or b + gap <= spot[0] for a, b in taken)


def place(rng: random.Random, window: Window, length: timedelta, taken: list[Window],
          gap: timedelta = 5 * MINUTE) -> datetime | None:
    """A start for something `length` long inside `window`, clear of `taken` (or None)."""
    if window[1] - window[0] < length:
        return None
    for _ in range(60):
        start = between(rng, window[0], window[1] - length)
        if _free((start, start + length), taken, gap):
            taken.append((start, start + length))
            return start
    return None


def asleep(
    tl: Timeline, p: Persona, rng: random.Random, window: Window, avoid: Iterable[Window] = (),
    blips: int | None = None,
) -> None:
    """In bed through `window`, with the persona's trips and restless blips (bed is occupied at both ends)."""
    margin = 20 * MINUTE
    inner = (window[0] + margin, window[1] - margin)
    taken = list(avoid)
    for kind in p.trips:
        for _ in range(kind.count(rng)):
            length = kind.duration.draw(rng)
            left = place(rng, inner, length, taken)
            if left is not None:
                trip(tl, p, rng, left, length, kind.rooms)
    count = rng.randint(*p.blips_per_night) if blips is None else blips
    for _ in range(count):
        length = max(p.blip_length.draw(rng), 3 * SECOND)
        left = place(rng, inner, length, taken, gap=MINUTE)
        if left is not None:
            tl.bed(left, False)
            tl.bed(left + length, True)


def checks_to_avoid(times: NightTimes) -> list[Window]:
    """The routine's fixed bed checks: the bed must not be caught empty by accident."""
    return [(c - 15 * MINUTE, c + 2 * MINUTE) for c in (times.in_bed_check, times.up_check) if c]


def evening(tl: Timeline, p: Persona, rng: random.Random, times: NightTimes,
            until: datetime | None = None) -> None:
    """From the start of the file to bedtime: moving about, the habitual door uses."""
    stop = until or times.bedtime
    tl.bed(times.start + timedelta(seconds=rng.randint(5, 60)), False)
    up_and_about(tl, p, rng, times.start, stop - MINUTE, p.evening_rooms)
    for use in p.doors:
        if use.at is None or use.door not in _doors(tl.home):
            continue
        opened = local_instant(times.start.astimezone(tl.home.zone).date(), use.at.draw(rng), tl.home.zone)
        if times.start < opened < stop - 5 * MINUTE:
            open_for = max(use.open_for.draw(rng), 5 * SECOND)
            tl.door(use.door, opened, open_for)
            after = use.room_after or (p.evening_rooms[0] if p.evening_rooms else "")
            back = motion_devices(tl.home, (after,))
            if back:
                tl.motion(back[0], opened + open_for + timedelta(seconds=rng.randint(15, 45)))
    if until is None:
        tl.bed(times.bedtime, True)


def _doors(home: HomeConfig) -> tuple[str, ...]:
    return tuple(d.id for d in home.devices if d.kind is EventKind.DOOR)


def morning(tl: Timeline, p: Persona, rng: random.Random, wake: datetime, end: datetime) -> None:
    """Up for the day: the bed empties, motion until the end or until going out."""
    tl.bed(wake, False)
    stop = end
    for use in p.doors:
        if use.after_wake is None or use.door not in _doors(tl.home):
            continue
        opened = wake + use.after_wake.draw(rng)
        if opened < end - MINUTE:
            tl.door(use.door, opened, max(use.open_for.draw(rng), 5 * SECOND))
            if use.goes_out:
                stop = min(stop, opened - 20 * SECOND)
    rooms = tuple(dict.fromkeys(r for t in p.trips for r in t.rooms)) + p.evening_rooms
    up_and_about(tl, p, rng, wake, stop, rooms)


def checkins(
    tl: Timeline, p: Persona, rng: random.Random, window: Window,
    quiet: dict[str, Window] | None = None, battery: dict[str, tuple[datetime, int]] | None = None,
) -> None:
    """Each device's routine battery report, roughly hourly; the bed also reports at the end.

    `quiet` silences a device for a while (it is offline); `battery` makes a
    device report a new level from a given instant on.
    """
    quiet, battery = quiet or {}, battery or {}
    for device in roles(tl.home).devices:
        level = rng.randint(*p.battery)
        at = window[0] + timedelta(seconds=rng.randint(60, 600))
        while at < window[1]:
            off = quiet.get(device)
            if off is None or not off[0] <= at <= off[1]:
                changed = battery.get(device)
                now_level = changed[1] if changed and at >= changed[0] else level
                tl.add(device, EventKind.BATTERY, now_level, at)
            at += max(p.checkin_every.draw(rng), 10 * MINUTE)
    bed = roles(tl.home).bed
    changed = battery.get(bed)
    tl.add(bed, EventKind.BATTERY, changed[1] if changed else p.battery[1], window[1])


def normal_night(tl: Timeline, p: Persona, day: date, rng: random.Random) -> NightTimes:
    """An ordinary night for this persona, added to `tl`; returns its key instants."""
    times = night_times(p, tl.home, day, rng)
    evening(tl, p, rng, times)
    asleep(tl, p, rng, (times.bedtime, times.wake), checks_to_avoid(times))
    morning(tl, p, rng, times.wake, times.end)
    checkins(tl, p, rng, (times.start, times.end))
    return times


def _ts(item: Item) -> datetime:
    return item.received if isinstance(item, Reading) else item.ts


def _motion_clears(items: list[Item]) -> list[Item]:
    """The `occupancy: false` Zigbee2MQTT sends when a motion sensor has seen nothing for a while."""
    seen: dict[str, list[datetime]] = {}
    for item in items:
        if isinstance(item, Reading) and item.event.kind is EventKind.MOTION and item.event.value:
            seen.setdefault(item.event.device, []).append(item.event.at)
    clears: list[Item] = []
    home = items[0].event.home if items and isinstance(items[0], Reading) else ""
    for device, times in seen.items():
        times = sorted(set(times))
        for at, following in zip(times, [*times[1:], None], strict=True):
            if following is None or following - at > MOTION_TIMEOUT:
                event = SensorEvent(home, device, EventKind.MOTION, False, at + MOTION_TIMEOUT, "simulator")
                clears.append(Reading(event, at + MOTION_TIMEOUT))
    return clears


def ordered(items: list[Item]) -> list[Item]:
    """By time received; simultaneous items keep the order they were added in."""
    return sorted(items, key=_ts)


def render(tl: Timeline, prefix: str = "zigbee2mqtt",
           motion_clears_until: datetime | None = None) -> list[str]:
    """The replay JSONL lines, as a Zigbee2MQTT bridge would have published them.

    The motion sensors' automatic `occupancy: false` messages are added, up to
    `motion_clears_until` (default: the last item), so they never prolong a run.
    """
    codecs: dict[str, DeviceCodec] = {
        d.id: get_profile(d.profile).bind(d.kind, d.options) for d in tl.home.devices
    }
    availability = get_profile("zigbee2mqtt-availability").bind(EventKind.AVAILABILITY)
    last = motion_clears_until or tl.end()
    items = tl.items + [c for c in _motion_clears(tl.items) if _ts(c) <= last]
    lines: list[str] = []
    for item in ordered(items):
        if isinstance(item, Command):
            lines.append(json.dumps({"ts": _iso(item.ts), **dict(item.body)}))
            continue
        event = item.event
        topic = f"{prefix}/{event.home}/{event.device}"
        if event.kind is EventKind.AVAILABILITY:
            topic, payload = topic + "/availability", availability.encode(event)
        else:
            payload = codecs[event.device].encode(event)
        lines.append(json.dumps({"ts": _iso(item.received), "topic": topic, "payload": payload}))
    return lines


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()
