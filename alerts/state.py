"""What the engine remembers about one home between inputs.

Everything here is derived from events: replaying the same inputs rebuilds the
same state, which is how the service recovers after a restart. `step` updates a
state in place; `copy_state` branches one for a what-if preview.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.decisions import AlertInfo, AlertKind
from alerts.plan import ContactPlan, HomePlan


@dataclass(slots=True)
class DeviceState:
    value: bool | None = None  # the latest primary reading (occupied / open / detected)
    value_at: datetime | None = None
    heard_at: datetime | None = None  # the newest message of any kind
    online: bool = True
    availability_at: datetime | None = None
    offline_since: datetime | None = None
    offline_raised_for: datetime | None = None  # the offline episode already alerted
    battery: int | None = None
    battery_at: datetime | None = None
    battery_low: bool = False


@dataclass(slots=True)
class ExitWatch:
    """An exit door opened at night: is the person back inside?"""

    door: str
    opened_at: datetime
    closed_at: datetime | None = None
    raised_at: datetime | None = None


@dataclass(slots=True)
class BedSpan:
    """In bed from `start` to `end` (None: still in bed), kept for the morning summary."""

    start: datetime
    end: datetime | None = None


@dataclass(slots=True)
class SensorWatch:
    """Stuck or silent sensors (alerts/sensor_checks.py): what their notices are timed from.

    Keyed by device id. A bed's spell starts when it changes to occupied (not at
    each repeat of "occupied"); a motion sensor's silence starts at its newest
    detection; `up_seen` is each device's newest sign of the person up and about.
    """

    occupied_since: dict[str, datetime] = field(default_factory=dict)
    stuck_done_for: dict[str, datetime] = field(default_factory=dict)  # spell already noticed
    detected_at: dict[str, datetime] = field(default_factory=dict)
    silent_done_for: dict[str, datetime] = field(default_factory=dict)  # silence already noticed
    up_seen: dict[str, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class OpenAlert:
    info: AlertInfo
    raised_at: datetime
    reasons: dict[AlertKind, str]  # the conditions still holding, in the order they arose
    audience: tuple[ContactPlan, ...]
    escalates: bool
    notify_at: datetime | None
    next_contact: int = 0
    notified: list[ContactPlan] = field(default_factory=list)
    acknowledged_by: str | None = None
    unreached: list[str] = field(default_factory=list)  # contacts no channel reached, in order
    asked_until: datetime | None = None  # the person was asked first; nobody called before this

    def matches(self, ref: str) -> bool:
        return ref in (self.info.id, self.info.kind) or ref in self.reasons


@dataclass(slots=True)
class HomeState:
    plan: HomePlan
    clock: datetime | None = None
    began_at: datetime | None = None  # the first input: "not reported since" means since then
    devices: dict[str, DeviceState] = field(default_factory=dict)
    bed_occupied: bool | None = None
    left_bed_at: datetime | None = None
    up_night_end: datetime | None = None  # end of the night the person got up in
    last_motion_at: datetime | None = None
    last_press_at: datetime | None = None
    exit_watch: ExitWatch | None = None
    last_inside_at: datetime | None = None  # the newest sign of someone inside (any hour)
    out_since: datetime | None = None  # an exit's door closed then, and nobody seen inside since?
    leaving: bool = False  # an exit door is open for someone going out (not coming home)
    out_of_bed_done_for: datetime | None = None  # period start already evaluated
    still_done_for: datetime | None = None
    next_bed_check: datetime | None = None
    next_up_check: datetime | None = None
    bed_spans: list[BedSpan] = field(default_factory=list)  # only when someone wants a summary
    raised_log: list[tuple[datetime, AlertKind]] = field(default_factory=list)  # the same
    next_summaries: dict[str, datetime] = field(default_factory=dict)  # contact name -> when
    safety: OpenAlert | None = None  # at most one person-safety alert at a time
    company_from: datetime | None = None  # company mode (alerts/care.py): someone is with her
    company_until: datetime | None = None  # from company_from until then (ended early: then)
    company_action_at: datetime | None = None  # the last button action that toggled it
    service: dict[tuple[AlertKind, str], OpenAlert] = field(default_factory=dict)
    offline: set[str] = field(default_factory=set)  # devices that last reported "offline"
    sensors: SensorWatch = field(default_factory=SensorWatch)  # stuck or silent sensors
    next_due: datetime | None = None  # cached earliest deadline, refreshed by every step
    rules: tuple[Any, ...] | None = None  # the plan's rules (alerts.rules.rules_for), cached

    def device(self, device_id: str) -> DeviceState:
        state = self.devices.get(device_id)
        if state is None:
            state = self.devices[device_id] = DeviceState()
        return state

    def open_alerts(self) -> list[OpenAlert]:
        alerts = [self.safety] if self.safety else []
        return alerts + list(self.service.values())


def new_state(plan: HomePlan) -> HomeState:
    """A home the engine has heard nothing from yet."""
    return HomeState(plan=plan)


def copy_state(state: HomeState) -> HomeState:
    """An independent copy, sharing only the immutable plan."""
    return copy.deepcopy(state, memo={id(state.plan): state.plan})
