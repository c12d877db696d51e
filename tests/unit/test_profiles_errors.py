"""Device profiles refusing payloads they cannot read, with a reason that names the field and the value.

A refused message becomes a dead letter; its reason is all an operator sees,
so it must say what was wrong, briefly, and never be confused with a bug in
the caller (a naive `received_at`).
"""

from __future__ import annotations

import pytest

from alerts.events import EventKind
from device_profiles import DecodeError
from tests.unit.profiles_support import AVAILABILITY, BED, BUTTON, DOOR, MOTION, RECEIVED, codec, decode

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
