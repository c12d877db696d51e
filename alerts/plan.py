"""A home's routine compiled for the engine: plain values, UTC instants, no parsing.

The engine never sees YAML or pydantic; it sees a `HomePlan`, built once per
configuration version, so the per-event path does no validation work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from alerts.events import EventKind
from alerts.nights import NightWindow

if TYPE_CHECKING:
    from alerts.homeconfig import AwayPeriod, Device, HomeConfig, Routine


MOVEMENT_EXPECTED_EVERY = timedelta(hours=24)
"""A motion sensor that sees nothing this long while the person is up and about is a notice."""


@dataclass(frozen=True, slots=True)
class DevicePlan:
    id: str
    kind: EventKind
    room: str
    exit: bool
    heartbeat: timedelta | None
    expect_movement: timedelta | None = None  # motion sensors: silent this long while she is up

    @property
    def label(self) -> str:
        """How people name it: "front-door (hall)"."""
        return f"{self.id} ({self.room})" if self.room else self.id


@dataclass(frozen=True, slots=True)
class ContactPlan:
    name: str
    notify: tuple[str, ...]
    morning_summary: time | None = None  # local time of their account of the night


@dataclass(frozen=True, slots=True)
class AwayPlan:
    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class AskPlan:
    """routine.check_with_me: which device asks the person, and how long to wait for a press."""

    device: str
    within: timedelta


@dataclass(frozen=True, slots=True)
class CompanyPlan:
    """routine.company: the button action that starts (and ends) company mode, and for how long."""

    action: str
    lasts: timedelta


@dataclass(frozen=True, slots=True)
class HomePlan:
    home: str
    person: str
    in_my_words: str
    zone: tzinfo
    night: NightWindow
    out_of_bed_after: timedelta | None
    exit_within: timedelta | None
    still_after: timedelta | None
    in_bed_by: time | None
    up_by: time | None
    offline_after: timedelta
    devices: dict[str, DevicePlan]  # treated as read-only; a plain dict is faster to look up
    contacts: tuple[ContactPlan, ...]
    service_contacts: tuple[ContactPlan, ...]
    ack_within: timedelta
    repeat_every: timedelta
    away: tuple[AwayPlan, ...] = ()
    heartbeat_devices: tuple[str, ...] = ()  # devices whose silence is itself a problem
    check_with_me: AskPlan | None = None
    company: CompanyPlan | None = None
    bed_occupied_max: timedelta = timedelta(hours=16)  # a bed occupied longer is a service notice

    @property
    def summaries(self) -> tuple[ContactPlan, ...]:
        """The contacts who asked for a morning account of the night."""
        return tuple(c for c in self.contacts if c.morning_summary is not None)

    def away_at(self, at: datetime) -> AwayPlan | None:
        for period in self.away:
            if period.start <= at < period.end:
                return period
        return None

    def local(self, at: datetime) -> str:
        """Local wall-clock time for messages: "02:14"."""
        return at.astimezone(self.zone).strftime("%H:%M")


def _away(period: AwayPeriod, zone: tzinfo) -> AwayPlan:
    def utc(moment: datetime) -> datetime:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        return aware.astimezone(UTC)

    return AwayPlan(utc(period.from_), utc(period.to), period.reason)


def contact_plans(items: object) -> tuple[ContactPlan, ...]:
    return tuple(
        ContactPlan(c.name, tuple(c.notify), c.morning_summary)
        for c in items  # type: ignore[attr-defined]
    )


def _device(d: Device, profile_heartbeat: timedelta | None) -> DevicePlan:
    """The device's own heartbeat, else its profile's; `0m` (for either setting) means none."""
    heartbeat = profile_heartbeat if d.heartbeat is None else d.heartbeat
    expect = None
    if d.kind is EventKind.MOTION:
        expect = MOVEMENT_EXPECTED_EVERY if d.expect_movement_every is None else d.expect_movement_every
    return DevicePlan(d.id, d.kind, d.room, d.exit, heartbeat or None, expect or None)


def device_plans(devices: Iterable[Device]) -> dict[str, DevicePlan]:
    """The devices compiled; the only place that reads profiles."""
    from device_profiles import get_profile

    return {d.id: _device(d, get_profile(d.profile).heartbeat) for d in devices}


def routine_fields(routine: Routine, zone: tzinfo) -> dict[str, Any]:
    """The `HomePlan` fields a routine gives in a time zone: the same for every home that
    shares both, so a service with many homes compiles each shape once (gateway/compile_cache.py)."""
    return {
        "night": NightWindow(routine.night.from_, routine.night.to, zone),
        "out_of_bed_after": routine.out_of_bed.alert_after if routine.out_of_bed else None,
        "exit_within": routine.exit_door.alert_if_not_back_within if routine.exit_door else None,
        "still_after": routine.still_while_up.alert_after if routine.still_while_up else None,
        "in_bed_by": routine.in_bed_by,
        "up_by": routine.up_by,
        "offline_after": routine.device_offline_after,
        "check_with_me": AskPlan(ask.device, ask.within) if (ask := routine.check_with_me) else None,
        "company": CompanyPlan(co.action, co.for_) if (co := routine.company) else None,
        "bed_occupied_max": routine.bed_occupied_max,
    }


def plan_from_config(cfg: HomeConfig, devices: dict[str, DevicePlan] | None = None,
                     routine: dict[str, Any] | None = None) -> HomePlan:
    """Compile a validated configuration; `devices` and `routine`, when given, are what
    `device_plans` and `routine_fields` give for its devices and routine (compiled once, shared)."""
    zone = cfg.zone
    devices = device_plans(cfg.devices) if devices is None else devices
    return HomePlan(
        home=cfg.home,
        person=cfg.person.name,
        in_my_words=cfg.person.in_my_words,
        zone=zone,
        devices=devices,
        contacts=contact_plans(cfg.contacts),
        service_contacts=contact_plans(cfg.service_contacts),
        ack_within=cfg.escalation.ack_within,
        repeat_every=cfg.escalation.repeat_every,
        away=tuple(_away(p, zone) for p in cfg.away),
        heartbeat_devices=tuple(d.id for d in devices.values() if d.heartbeat is not None),
        **(routine_fields(cfg.routine, zone) if routine is None else routine),
    )
