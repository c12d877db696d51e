"""Device profiles: real Zigbee2MQTT payloads in, canonical events out.

The payloads are shaped like what Zigbee2MQTT publishes for these models
(field sets from the Zigbee2MQTT device pages), including the quirks the
gateway must survive: numbers and booleans sent as strings, messages with
only linkquality, several readings in one message, and `last_seen` in each
of its configurable forms.
"""

from __future__ import annotations

import pytest

from alerts.events import EventKind, SensorEvent
from tests.unit.profiles_support import (
    AVAILABILITY,
    BATTERY,
    BED,
    BUTTON,
    DOOR,
    MOTION,
    RECEIVED,
    SEEN,
    SEEN_MS,
    Reading,
    codec,
    decode,
    readings,
)

# --- decoding, per profile: (payload, expected readings) -------------------------------

MOTION_CASES: list[tuple[object, list[Reading]]] = [
    (
        {
            "battery": 100,
            "device_temperature": 22,
            "illuminance": 9,
            "illuminance_lux": 9,
            "linkquality": 102,
            "occupancy": True,
            "power_outage_count": 12,
            "voltage": 3035,
        },
        [(MOTION, True), (BATTERY, 100)],
    ),
    ({"occupancy": False, "linkquality": 87}, [(MOTION, False)]),
    ({"illuminance": 30, "illuminance_lux": 30, "linkquality": 87}, []),
    ({"linkquality": 60}, []),
    ({}, []),
    ({"occupancy": None, "battery": None}, []),
    ({"battery": 87, "voltage": 2985}, [(BATTERY, 87)]),
    ('{"occupancy":true,"linkquality":57}', [(MOTION, True)]),
    (b'{"occupancy":false,"battery":"91"}', [(MOTION, False), (BATTERY, 91)]),
    (bytearray(b'{"occupancy":true}'), [(MOTION, True)]),
    ({"occupancy": "true"}, [(MOTION, True)]),
    ({"occupancy": "false"}, [(MOTION, False)]),
    ({"occupancy": "ON"}, [(MOTION, True)]),
    ({"occupancy": "OFF"}, [(MOTION, False)]),
    ({"occupancy": "True"}, [(MOTION, True)]),
    ({"occupancy": 1}, [(MOTION, True)]),
    ({"occupancy": 0}, [(MOTION, False)]),
    ({"occupancy": "1"}, [(MOTION, True)]),
    ({"occupancy": "0"}, [(MOTION, False)]),
    ({"occupancy": 1.0}, [(MOTION, True)]),
    ({"battery": "87"}, [(BATTERY, 87)]),
    ({"battery": "87.0"}, [(BATTERY, 87)]),
    ({"battery": " 87 "}, [(BATTERY, 87)]),
    ({"battery": 87.4}, [(BATTERY, 87)]),
    ({"battery": 87.5}, [(BATTERY, 88)]),
    ({"battery": 86.5}, [(BATTERY, 87)]),
    ({"battery": 120}, [(BATTERY, 100)]),
    ({"battery": "100.5"}, [(BATTERY, 100)]),
    ({"battery": -3}, [(BATTERY, 0)]),
    ({"battery": 0}, [(BATTERY, 0)]),
    ({"battery": 10**30}, [(BATTERY, 100)]),
]

DOOR_CASES: list[tuple[object, list[Reading]]] = [
    (
        {
            "battery": 91,
            "contact": True,
            "device_temperature": 23,
            "linkquality": 78,
            "power_outage_count": 4,
            "voltage": 2995,
        },
        [(DOOR, False), (BATTERY, 91)],
    ),
    ({"contact": False, "linkquality": 81}, [(DOOR, True)]),
    ({"contact": "false"}, [(DOOR, True)]),
    ({"contact": "true"}, [(DOOR, False)]),
    ({"contact": "OFF"}, [(DOOR, True)]),
    ({"contact": 0}, [(DOOR, True)]),
    ({"voltage": 3005, "linkquality": 60}, []),
    ('{"battery":"64","contact":false,"voltage":"2955"}', [(DOOR, True), (BATTERY, 64)]),
]

BED_CASES: list[tuple[object, list[Reading]]] = [
    (
        {
            "battery": 100,
            "illuminance": 1534,
            "interval_time": 10,
            "linkquality": 116,
            "occupancy": True,
            "presence_delay": 60,
            "presence_time": 1,
            "sensitivity": "middle",
            "work_state": "presence",
        },
        [(BED, True), (BATTERY, 100)],
    ),
    ({"occupancy": False, "work_state": "none", "illuminance": 12}, [(BED, False)]),
    ({"occupancy": "false"}, [(BED, False)]),
    ({"sensitivity": "high", "interval_time": 30}, []),
    ({"battery": "55"}, [(BATTERY, 55)]),
]

BUTTON_CASES: list[tuple[object, list[Reading]]] = [
    (
        {"action": "single", "battery": 100, "click": "single", "linkquality": 72, "voltage": 3055},
        [(BUTTON, True), (BATTERY, 100)],
    ),
    ({"action": "single"}, [(BUTTON, True)]),
    ({"action": "double"}, [(BUTTON, True)]),
    ({"action": "triple"}, [(BUTTON, True)]),
    ({"action": "quadruple"}, [(BUTTON, True)]),
    ({"action": "hold"}, [(BUTTON, True)]),
    ({"action": "SINGLE"}, [(BUTTON, True)]),
    ({"action": "release"}, []),
    ({"action": ""}, []),
    ({"action": None}, []),
    ({"click": "single"}, []),
    ({"battery": 97, "voltage": 3005, "linkquality": 70}, [(BATTERY, 97)]),
    ('{"action":"release","battery":"96"}', [(BATTERY, 96)]),
]

AVAILABILITY_CASES: list[tuple[object, list[Reading]]] = [
    ("online", [(AVAILABILITY, True)]),
    ("offline", [(AVAILABILITY, False)]),
    (b"online", [(AVAILABILITY, True)]),
    (b"offline", [(AVAILABILITY, False)]),
    ("online\n", [(AVAILABILITY, True)]),
    ("ONLINE", [(AVAILABILITY, True)]),
    ('{"state":"online"}', [(AVAILABILITY, True)]),
    (b'{"state":"offline"}', [(AVAILABILITY, False)]),
    ({"state": "online"}, [(AVAILABILITY, True)]),
    ('"online"', [(AVAILABILITY, True)]),
    (b'"offline"', [(AVAILABILITY, False)]),
    ("{}", []),
]

DECODE_CASES = (
    [
        pytest.param("aqara-rtcgq11lm", MOTION, payload, want, id=f"motion-{n}")
        for n, (payload, want) in enumerate(MOTION_CASES)
    ]
    + [
        pytest.param("aqara-mccgq11lm", DOOR, payload, want, id=f"door-{n}")
        for n, (payload, want) in enumerate(DOOR_CASES)
    ]
    + [
        pytest.param("tuya-ts0601-bed", BED, payload, want, id=f"bed-{n}")
        for n, (payload, want) in enumerate(BED_CASES)
    ]
    + [
        pytest.param("aqara-wxkg11lm", BUTTON, payload, want, id=f"button-{n}")
        for n, (payload, want) in enumerate(BUTTON_CASES)
    ]
    + [
        pytest.param("zigbee2mqtt-availability", AVAILABILITY, payload, want, id=f"avail-{n}")
        for n, (payload, want) in enumerate(AVAILABILITY_CASES)
    ]
)


@pytest.mark.parametrize(("profile_id", "kind", "payload", "want"), DECODE_CASES)
def test_decode(profile_id: str, kind: EventKind, payload: object, want: list[Reading]) -> None:
    events = decode(codec(profile_id, kind), payload)
    assert readings(events) == want
    for event in events:
        assert (event.home, event.device, event.source, event.at) == ("julie", "dev", "t", RECEIVED)


def test_decode_builds_whole_events() -> None:
    events = decode(codec("aqara-mccgq11lm", DOOR), {"contact": False, "battery": 80})
    assert events == [
        SensorEvent("julie", "dev", DOOR, True, RECEIVED, "t"),
        SensorEvent("julie", "dev", BATTERY, 80, RECEIVED, "t"),
    ]


# --- generic JSON: defaults per kind, and options -------------------------------------

GENERIC_CASES: list[tuple[EventKind, dict[str, object], object, list[Reading]]] = [
    (BED, {}, {"occupied": True, "battery": 50}, [(BED, True), (BATTERY, 50)]),
    (DOOR, {}, {"open": "true"}, [(DOOR, True)]),
    (MOTION, {}, {"motion": 0, "battery": "12"}, [(MOTION, False), (BATTERY, 12)]),
    (BUTTON, {}, {"pressed": True}, [(BUTTON, True)]),
    (BUTTON, {}, {"pressed": False}, []),
    (BED, {}, {"open": True, "motion": True, "pressed": True}, []),
    (DOOR, {"value_field": "is_open"}, {"is_open": "ON", "open": False}, [(DOOR, True)]),
    (DOOR, {"value_field": "closed", "invert": True}, {"closed": True}, [(DOOR, False)]),
    (DOOR, {"invert": False}, {"open": True}, [(DOOR, True)]),
    (BED, {"battery_field": "batt"}, {"batt": 40, "battery": 99}, [(BATTERY, 40)]),
    (BED, {"battery_field": None}, {"battery": 99, "occupied": False}, [(BED, False)]),
    (BED, {"timestamp_field": None}, {"occupied": True, "last_seen": "garbage"}, [(BED, True)]),
]


@pytest.mark.parametrize(("kind", "options", "payload", "want"), GENERIC_CASES)
def test_generic_json(
    kind: EventKind, options: dict[str, object], payload: object, want: list[Reading]
) -> None:
    assert readings(decode(codec("generic-json", kind, **options), payload)) == want


def test_generic_json_timestamp_field_option() -> None:
    c = codec("generic-json", MOTION, timestamp_field="ts")
    events = decode(c, {"motion": True, "ts": SEEN_MS, "last_seen": "garbage"})
    assert [event.at for event in events] == [SEEN]
