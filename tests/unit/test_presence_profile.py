"""mmWave presence radars (Tuya TS0601 presence variants, ZY-M100): `presence`, not `occupancy`.

One profile serves two uses: a radar over the bed is the bed sensor, a radar
in a room is movement. The payloads are shaped like Zigbee2MQTT's state
messages for these models (field sets from its device pages).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import parse_home_config
from alerts.plan import plan_from_config
from device_profiles import DecodeError, get_profile

RECEIVED = datetime(2026, 1, 12, 2, 14, tzinfo=UTC)
BED, MOTION, BATTERY = EventKind.BED, EventKind.MOTION, EventKind.BATTERY

ZY_M100 = {
    "presence": True,
    "target_distance": 1.46,
    "illuminance_lux": 12,
    "radar_sensitivity": 7,
    "minimum_range": 0.5,
    "maximum_range": 6,
    "detection_delay": 0.1,
    "fading_time": 30,
    "linkquality": 120,
}
TS0601_PRESENCE = {
    "presence": "false",  # older firmwares: numbers and booleans as strings
    "illuminance": 180,
    "motion_state": "none",
    "sensitivity": 8,
    "keep_time": "30",
    "linkquality": 87,
}


def readings(kind: EventKind, payload: object) -> list[tuple[EventKind, bool | int]]:
    codec = get_profile("tuya-ts0601-presence").bind(kind)
    events = codec.decode(payload, home="h", device="radar", received_at=RECEIVED)
    return [(e.kind, e.value) for e in events]


@pytest.mark.parametrize("kind", [BED, MOTION])
def test_presence_is_the_reading_whichever_use(kind: EventKind) -> None:
    assert readings(kind, ZY_M100) == [(kind, True)]
    assert readings(kind, TS0601_PRESENCE) == [(kind, False)]


def test_occupancy_is_not_presence() -> None:
    """The radar never says `occupancy`: a payload that does is not this model's."""
    assert readings(BED, {"occupancy": True, "linkquality": 80}) == []


def test_a_battery_variant_reports_its_battery() -> None:
    assert readings(MOTION, {"presence": True, "battery": 64}) == [(MOTION, True), (BATTERY, 64)]


def test_a_garbled_presence_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="field 'presence'"):
        readings(BED, {"presence": "maybe"})


@pytest.mark.parametrize("kind", [BED, MOTION])
def test_encode_is_what_the_radar_sends(kind: EventKind) -> None:
    codec = get_profile("tuya-ts0601-presence").bind(kind)
    payload = codec.encode(SensorEvent("h", "radar", kind, True, RECEIVED))
    assert payload == {"presence": True, "last_seen": RECEIVED.isoformat()}


def test_it_cannot_be_a_door() -> None:
    data = _home({"id": "radar", "profile": "tuya-ts0601-presence", "kind": "door"})
    with pytest.raises(ValueError, match="cannot be kind 'door'; it can be: bed, motion"):
        parse_home_config(data)


def test_a_home_can_use_one_as_the_bed_and_one_as_movement() -> None:
    cfg = parse_home_config(_home(
        {"id": "bed", "profile": "tuya-ts0601-presence", "kind": "bed", "room": "bedroom"},
        {"id": "lounge", "profile": "tuya-ts0601-presence", "kind": "motion", "room": "lounge"},
    ))
    plan = plan_from_config(cfg)
    assert {d.id: d.kind for d in plan.devices.values()} == {"bed": BED, "lounge": MOTION}
    assert plan.devices["bed"].heartbeat is None  # mains powered: the broker's availability watches it


def _home(*devices: dict[str, object]) -> dict[str, object]:
    return {
        "home": "h",
        "timezone": "Europe/London",
        "person": {"name": "Julie"},
        "devices": list(devices),
        "routine": {"night": {"from": "22:00", "to": "07:30"}},
        "contacts": [{"name": "Sam", "notify": ["json://127.0.0.1:9/"]}],
    }


def test_the_round_trip_properties_cover_both_uses() -> None:
    """tests/unit/test_profiles_roundtrip.py binds every shipped profile for every kind it has."""
    from tests.unit.test_profiles_roundtrip import BOUND

    assert {kind for pid, kind, _ in BOUND if pid == "tuya-ts0601-presence"} == {BED, MOTION}
