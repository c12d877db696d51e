"""Device profiles: real Zigbee2MQTT payloads in, canonical events out.

The payloads are shaped like what Zigbee2MQTT publishes for these models
(field sets from the Zigbee2MQTT device pages), including the quirks the
gateway must survive: numbers and booleans sent as strings, messages with
only linkquality, several readings in one message, and `last_seen` in each
of its configurable forms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from alerts.events import EventKind, SensorEvent
from device_profiles import (
    DecodeError,
    DeviceCodec,
    get_profile,
)

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


# --- errors: (profile, kind, payload, exact reason or start of it) --------------------

ERROR_CASES: list[tuple[str, EventKind, object, str]] = [
    (
        "aqara-rtcgq11lm",
        MOTION,
        {"occupancy": "maybe"},
        "field 'occupancy': expected true/false, got 'maybe'",
    ),
    ("aqara-rtcgq11lm", MOTION, {"occupancy": 2}, "field 'occupancy': expected true/false, got 2"),
    (
        "aqara-rtcgq11lm",
        MOTION,
        {"occupancy": []},
        "field 'occupancy': expected true/false, got []",
    ),
    (
        "aqara-rtcgq11lm",
        MOTION,
        {"battery": "low"},
        "field 'battery': expected a number, got 'low'",
    ),
    ("aqara-rtcgq11lm", MOTION, {"battery": True}, "field 'battery': expected a number, got true"),
    ("aqara-rtcgq11lm", MOTION, '{"battery": NaN}', "field 'battery': expected a number, got NaN"),
    (
        "aqara-rtcgq11lm",
        MOTION,
        {"battery": "1_0"},
        "field 'battery': expected a number, got '1_0'",
    ),
    (
        "aqara-rtcgq11lm",
        MOTION,
        {"battery": "inf"},
        "field 'battery': expected a number, got 'inf'",
    ),
    ("aqara-rtcgq11lm", MOTION, "[1, 2]", "payload is a JSON array, expected a JSON object"),
    ("aqara-rtcgq11lm", MOTION, [1, 2], "payload is a JSON array, expected a JSON object"),
    ("aqara-rtcgq11lm", MOTION, None, "payload is null, expected a JSON object"),
    ("aqara-rtcgq11lm", MOTION, 42, "payload is the bare value 42, expected a JSON object"),
    (
        "aqara-rtcgq11lm",
        MOTION,
        '"occupancy"',
        "payload is the JSON string 'occupancy', expected a JSON object",
    ),
    ("aqara-rtcgq11lm", MOTION, "not json", "payload is not valid JSON (Expecting value"),
    ("aqara-rtcgq11lm", MOTION, "", "payload is not valid JSON"),
    ("aqara-rtcgq11lm", MOTION, '{"occupancy": tru', "payload is not valid JSON"),
    ("aqara-rtcgq11lm", MOTION, b"\xff\xfe{", "payload is not UTF-8 text"),
    ("aqara-rtcgq11lm", MOTION, "[" * 100_000, "payload is nested too deeply"),
    ("aqara-mccgq11lm", DOOR, {"contact": "open"}, "field 'contact': expected true/false, got"),
    ("tuya-ts0601-bed", BED, {"occupancy": "presence"}, "field 'occupancy': expected true/false"),
    (
        "aqara-wxkg11lm",
        BUTTON,
        {"action": "shake"},
        "field 'action': expected one of 'single', 'double', 'triple', 'quadruple', 'hold', "
        "'release', ''; got 'shake'",
    ),
    ("aqara-wxkg11lm", BUTTON, {"action": 1}, "field 'action': expected one of"),
    (
        "zigbee2mqtt-availability",
        AVAILABILITY,
        "maybe",
        "field 'state': expected one of 'online', 'offline'; got 'maybe'",
    ),
    ("zigbee2mqtt-availability", AVAILABILITY, "", "field 'state': expected one of"),
    ("zigbee2mqtt-availability", AVAILABILITY, '{"state": true}', "field 'state': expected one"),
    ("zigbee2mqtt-availability", AVAILABILITY, "[]", "payload is a JSON array"),
    ("zigbee2mqtt-availability", AVAILABILITY, '{"state": ', "payload is not valid JSON"),
    ("generic-json", BED, {"occupied": "yes please"}, "field 'occupied': expected true/false"),
]


@pytest.mark.parametrize(("profile_id", "kind", "payload", "reason"), ERROR_CASES)
def test_decode_errors(profile_id: str, kind: EventKind, payload: object, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(codec(profile_id, kind), payload)
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == caught.value.reason


def test_error_quotes_long_values_briefly() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(codec("aqara-rtcgq11lm", MOTION), {"occupancy": "x" * 500})
    assert len(caught.value.reason) < 120
    assert caught.value.reason.endswith("...")


def test_naive_received_at_is_a_programming_error_not_a_payload_error() -> None:
    with pytest.raises(ValueError, match="received_at must be timezone-aware") as caught:
        decode(codec("aqara-rtcgq11lm", MOTION), {"occupancy": True}, RECEIVED.replace(tzinfo=None))
    assert not isinstance(caught.value, DecodeError)


# --- last_seen: (value, expected event time) ------------------------------------------

LAST_SEEN_CASES: list[tuple[object, datetime]] = [
    ("2026-01-12T02:10:00.123Z", SEEN),  # Zigbee2MQTT ISO_8601
    ("2026-01-12T03:10:00.123+01:00", SEEN),  # ISO_8601_local, current form
    ("2026-01-12T03:10:00.123+0100", SEEN),  # ISO_8601_local, older releases
    ("2026-01-11T21:10:00.123-05:00", SEEN),
    ("2026-01-12T02:10:00.123+00:00", SEEN),
    ("2026-01-12T02:10:00Z", SEEN.replace(microsecond=0)),
    (SEEN_MS, SEEN),  # epoch
    (float(SEEN_MS), SEEN),
    (str(SEEN_MS), SEEN),
    (f"{SEEN_MS}.0", SEEN),
    (None, RECEIVED),
    ("2026-01-12T02:14:00Z", RECEIVED),  # the same instant as received
    ("2026-01-12T02:14:00.000001Z", RECEIVED),  # clamped: later than received
    ("2027-01-01T00:00:00+00:00", RECEIVED),  # clamped: device clock far ahead
    (SEEN_MS + 10**9, RECEIVED),  # clamped, epoch form
]


@pytest.mark.parametrize(("last_seen", "at"), LAST_SEEN_CASES)
def test_last_seen(last_seen: object, at: datetime) -> None:
    payload = {"occupancy": True, "battery": 90, "last_seen": last_seen}
    events = decode(codec("aqara-rtcgq11lm", MOTION), payload)
    assert [event.at for event in events] == [at, at]
    assert all(event.at.tzinfo is UTC for event in events)


BAD_LAST_SEEN: list[tuple[object, str]] = [
    ("2026-01-12T02:10:00", "field 'last_seen': time '2026-01-12T02:10:00' has no UTC offset"),
    ("2026-01-12", "field 'last_seen': time '2026-01-12' has no UTC offset"),
    ("yesterday", "field 'last_seen': expected an ISO-8601 time with offset or epoch millis"),
    ("", "field 'last_seen': expected an ISO-8601 time"),
    (True, "field 'last_seen': expected an ISO-8601 time"),
    ({"t": 1}, "field 'last_seen': expected an ISO-8601 time"),
    ("-5", "field 'last_seen': expected an ISO-8601 time"),
    (1e300, "field 'last_seen': epoch milliseconds out of range"),
    ("9" * 5000, "field 'last_seen': epoch milliseconds out of range"),
    (float("nan"), "field 'last_seen': epoch milliseconds out of range"),
]


@pytest.mark.parametrize(("last_seen", "reason"), BAD_LAST_SEEN)
def test_bad_last_seen(last_seen: object, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(codec("aqara-rtcgq11lm", MOTION), {"occupancy": True, "last_seen": last_seen})
    assert caught.value.reason.startswith(reason)


def test_bad_last_seen_is_reported_even_without_readings() -> None:
    with pytest.raises(DecodeError, match="last_seen"):
        decode(codec("aqara-rtcgq11lm", MOTION), {"linkquality": 40, "last_seen": "soon"})


def test_received_at_in_another_zone_is_converted_to_utc() -> None:
    local = RECEIVED.astimezone(timezone(timedelta(hours=1)))
    events = decode(codec("aqara-rtcgq11lm", MOTION), {"occupancy": True}, local)
    assert events[0].at == RECEIVED
    assert events[0].at.tzinfo is UTC


def test_availability_has_no_device_time() -> None:
    events = decode(codec("zigbee2mqtt-availability", AVAILABILITY), "offline")
    assert [event.at for event in events] == [RECEIVED]


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
