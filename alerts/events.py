"""Canonical events and the other inputs the engine understands.

Everything that reaches the rule engine is one of the frozen dataclasses here:
sensor readings decoded from any vendor payload (`SensorEvent`), a timer
firing (`Tick`), and what people do with an alert (`Acknowledge`,
`ResolveAlert`), plus the delivery outcome the notifier reports back
(`DeliveryFailed`). Keeping them plain data lets the same engine run live, in
replay, in the simulator and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    """What a reading is about; the `kind` field of the canonical event contract."""

    BED = "bed"  # value: occupied (bool)
    DOOR = "door"  # value: open (bool)
    MOTION = "motion"  # value: detected (bool)
    BUTTON = "button"  # value: pressed (always True)
    AVAILABILITY = "availability"  # value: online (bool)
    BATTERY = "battery"  # value: percent (int, 0..100)
    LIGHT = "light"  # value: on (bool); a light's own state only shows it is alive


BOOL_KINDS = frozenset(
    {EventKind.BED, EventKind.DOOR, EventKind.MOTION, EventKind.BUTTON, EventKind.AVAILABILITY,
     EventKind.LIGHT}
)


@dataclass(frozen=True, slots=True)
class SensorEvent:
    """One reading from one device, in canonical form.

    `at` is timezone-aware UTC: the payload's own `last_seen` when the device
    sent one, otherwise when the message was received. `source` says where the
    reading came from (an MQTT topic, a simulator, a dataset) for the record;
    it never changes what the engine decides. `action` is the button's own word
    for how it was pressed (`single`, `double`, `hold`) when its profile has one;
    an action the routine gives a meaning (company mode) is not a press.
    """

    home: str
    device: str
    kind: EventKind
    value: bool | int
    at: datetime
    source: str = ""
    action: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"SensorEvent.at must be timezone-aware, got {self.at!r}")
        if self.kind is EventKind.BATTERY:
            if isinstance(self.value, bool) or not 0 <= int(self.value) <= 100:
                raise ValueError(f"battery value must be 0..100, got {self.value!r}")
        elif not isinstance(self.value, bool):
            raise ValueError(f"{self.kind} value must be a bool, got {self.value!r}")


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed; nothing else happened. Timers that are due fire."""


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """A carer has seen the alert and is dealing with it; escalation stops.

    `alert` is an alert id or an alert kind (`out_of_bed_too_long`); a kind
    matches the open alert that carries it.
    """

    alert: str
    by: str


@dataclass(frozen=True, slots=True)
class ResolveAlert:
    """A carer closes the alert and records what happened ("false alarm: making tea")."""

    alert: str
    by: str
    outcome: str


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    """Every channel of a contact failed: the next contact is called at once."""

    alert: str
    contact: str


@dataclass(frozen=True, slots=True)
class SetCompany:
    """Someone is with the person (`on`), or has left: company mode, set by a carer.

    The routine's button action toggles it too (a `SensorEvent` with that
    `action`); this input says the state outright, as the API and replay do.
    """

    on: bool
    by: str


EngineInput = SensorEvent | Tick | Acknowledge | ResolveAlert | DeliveryFailed | SetCompany
