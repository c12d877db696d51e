"""What the device profile tests share: the event kinds, fixed instants, and a profile bound and decoded.

A payload is decoded as if it arrived for device "dev" of home "julie" at
`RECEIVED`; `SEEN` (and `SEEN_MS`, the same instant in epoch milliseconds) is
a device's own `last_seen`, a few minutes earlier.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.events import EventKind, SensorEvent
from device_profiles import DeviceCodec, get_profile

BED, DOOR, MOTION = EventKind.BED, EventKind.DOOR, EventKind.MOTION
BUTTON, AVAILABILITY, BATTERY = EventKind.BUTTON, EventKind.AVAILABILITY, EventKind.BATTERY
RECEIVED = datetime(2026, 1, 12, 2, 14, tzinfo=UTC)
SEEN = datetime(2026, 1, 12, 2, 10, 0, 123000, tzinfo=UTC)
SEEN_MS = 1768183800123

Reading = tuple[EventKind, bool | int]


def codec(profile_id: str, kind: EventKind, **options: object) -> DeviceCodec:
    return get_profile(profile_id).bind(kind, options or None)


def decode(c: DeviceCodec, payload: object, received_at: datetime = RECEIVED) -> list[SensorEvent]:
    return c.decode(payload, home="julie", device="dev", received_at=received_at, source="t")


def readings(events: list[SensorEvent]) -> list[Reading]:
    return [(event.kind, event.value) for event in events]
