"""A device's `last_seen`, in each form Zigbee2MQTT can be set to send, as the event's time in UTC.

A time later than the message's arrival is clamped to the arrival; a malformed
one is refused even when the message carries no reading.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from device_profiles import DecodeError
from tests.unit.profiles_support import AVAILABILITY, MOTION, RECEIVED, SEEN, SEEN_MS, codec, decode

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
