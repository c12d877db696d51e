"""What the engine decides: one frozen record per alert lifecycle step.

The shell turns these into notifications (`SendAlert`), stored history and the
`tecmon replay` output lines; the engine itself never performs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from alerts.plan import ContactPlan


class AlertKind(StrEnum):
    NOT_BACK_AFTER_EXIT = "not_back_after_exit"
    OUT_OF_BED_TOO_LONG = "out_of_bed_too_long"
    STILL_WHILE_UP = "still_while_up"
    NOT_IN_BED_BY = "not_in_bed_by"
    NOT_UP_BY = "not_up_by"
    HELP_REQUESTED = "help_requested"
    DEVICE_OFFLINE = "device_offline"
    LOW_BATTERY = "low_battery"
    BED_OCCUPIED_TOO_LONG = "bed_occupied_too_long"  # a stuck bed sensor, or the person unwell in bed
    MOTION_SILENT = "motion_silent"  # a motion sensor that sees nothing while the person is up

    @property
    def person_safety(self) -> bool:
        """Device problems go to the service; everything else is about the person."""
        return self in _PERSON_SAFETY


SERVICE_NOTICES = frozenset(
    {AlertKind.DEVICE_OFFLINE, AlertKind.LOW_BATTERY, AlertKind.BED_OCCUPIED_TOO_LONG,
     AlertKind.MOTION_SILENT}
)
"""Notices about the sensors, for the service contacts; one open per kind and device."""
_PERSON_SAFETY = frozenset(set(AlertKind) - SERVICE_NOTICES)


@dataclass(frozen=True, slots=True)
class AlertInfo:
    id: str
    home: str
    kind: AlertKind
    device: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRaised:
    step: ClassVar[str] = "raised"
    alert: AlertInfo
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SendAlert:
    """Call this contact now, on every channel they gave."""

    alert: AlertInfo
    at: datetime
    contact: ContactPlan
    escalation: bool
    reason: str
    unreached: tuple[str, ...] = ()  # earlier contacts no channel reached: the next one must know

    @property
    def step(self) -> str:
        return "escalated" if self.escalation else "notified"


@dataclass(frozen=True, slots=True)
class AskPerson:
    """Ask the person first (blink their light): a press within `within` means nobody is called.

    The shell carries it out by publishing the device profile's `set` payload;
    the engine has already put the first call off to `at + within`.
    """

    step: ClassVar[str] = "asked"
    alert: AlertInfo
    at: datetime
    device: str
    within: timedelta
    reason: str


@dataclass(frozen=True, slots=True)
class AlertAcknowledged:
    step: ClassVar[str] = "acknowledged"
    alert: AlertInfo
    at: datetime
    by: str
    reason: str


ResolvedHow = Literal["condition", "person", "carer"]


@dataclass(frozen=True, slots=True)
class AlertResolved:
    """Closed; `tell` lists the contacts already called, who should hear it is over."""

    step: ClassVar[str] = "resolved"
    alert: AlertInfo
    at: datetime
    how: ResolvedHow
    reason: str
    by: str | None = None
    outcome: str | None = None
    tell: tuple[ContactPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class SendSummary:
    """A contact's morning account of the night: not an alert, so it is sent quietly."""

    step: ClassVar[str] = "summary"
    home: str
    at: datetime
    contact: ContactPlan
    text: str

    @property
    def id(self) -> str:
        """Names this one summary in logs and replay lines, the way alert ids do."""
        return f"{self.home}:{self.at.strftime('%Y%m%dT%H%M%SZ')}:morning_summary:{self.contact.name}"


Decision = AlertRaised | AskPerson | SendAlert | AlertAcknowledged | AlertResolved | SendSummary
