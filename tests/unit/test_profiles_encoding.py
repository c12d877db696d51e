"""Device profiles encoding canonical events as the payloads the devices send: what the simulator publishes.

An event the device could never send (a door reporting motion, a button
released) is refused as a programming error, not a payload error.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.events import EventKind, SensorEvent
from device_profiles import DecodeError
from tests.unit.profiles_support import AVAILABILITY, BATTERY, BED, BUTTON, DOOR, MOTION, SEEN, codec

# --- encode: what the simulator publishes ---------------------------------------------

ISO = SEEN.isoformat()


def stamped(**fields: object) -> dict[str, object]:
    return {**fields, "last_seen": ISO}


ENCODE_CASES: list[tuple[str, EventKind, dict[str, object], EventKind, bool | int, object]] = [
    ("aqara-mccgq11lm", DOOR, {}, DOOR, True, stamped(contact=False)),
    ("aqara-mccgq11lm", DOOR, {}, DOOR, False, stamped(contact=True)),
    ("aqara-mccgq11lm", DOOR, {}, BATTERY, 87, stamped(battery=87)),
    ("aqara-rtcgq11lm", MOTION, {}, MOTION, True, stamped(occupancy=True)),
    ("tuya-ts0601-bed", BED, {}, BED, False, stamped(occupancy=False)),
    ("aqara-wxkg11lm", BUTTON, {}, BUTTON, True, stamped(action="single")),
    ("zigbee2mqtt-availability", AVAILABILITY, {}, AVAILABILITY, True, "online"),
    ("zigbee2mqtt-availability", AVAILABILITY, {}, AVAILABILITY, False, "offline"),
    ("generic-json", BED, {"value_field": "in_bed"}, BED, True, stamped(in_bed=True)),
    (
        "generic-json",
        DOOR,
        {"value_field": "shut", "invert": True},
        DOOR,
        True,
        stamped(shut=False),
    ),
    ("generic-json", MOTION, {"timestamp_field": None}, MOTION, True, {"motion": True}),
    (
        "generic-json",
        BED,
        {"timestamp_field": "ts", "battery_field": "b"},
        BATTERY,
        5,
        {"b": 5, "ts": ISO},
    ),
]


@pytest.mark.parametrize(("profile_id", "kind", "options", "event", "value", "want"), ENCODE_CASES)
def test_encode(
    profile_id: str,
    kind: EventKind,
    options: dict[str, object],
    event: EventKind,
    value: bool | int,
    want: object,
) -> None:
    sensor_event = SensorEvent("julie", "dev", event, value, SEEN, "sim")
    assert codec(profile_id, kind, **options).encode(sensor_event) == want


def test_encode_writes_last_seen_in_utc_at_full_precision() -> None:
    at = datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    payload = codec("aqara-rtcgq11lm", MOTION).encode(SensorEvent("h", "d", MOTION, True, at))
    assert payload == {"occupancy": True, "last_seen": "2026-03-29T00:30:00.000005+00:00"}


@pytest.mark.parametrize(
    ("profile_id", "kind", "event"),
    [
        ("aqara-mccgq11lm", DOOR, SensorEvent("h", "d", MOTION, True, SEEN)),
        ("zigbee2mqtt-availability", AVAILABILITY, SensorEvent("h", "d", BATTERY, 5, SEEN)),
        ("aqara-wxkg11lm", BUTTON, SensorEvent("h", "d", BUTTON, False, SEEN)),
        ("generic-json", BUTTON, SensorEvent("h", "d", BUTTON, False, SEEN)),
    ],
)
def test_encode_refuses_what_the_device_cannot_send(
    profile_id: str, kind: EventKind, event: SensorEvent
) -> None:
    with pytest.raises(ValueError) as caught:
        codec(profile_id, kind).encode(event)
    assert not isinstance(caught.value, DecodeError)


def test_generic_battery_field_none_cannot_encode_battery() -> None:
    c = codec("generic-json", BED, battery_field=None)
    with pytest.raises(ValueError, match="battery"):
        c.encode(SensorEvent("h", "d", BATTERY, 50, SEEN))
