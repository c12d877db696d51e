"""Properties of every shipped profile, for every kind it can be bound as.

1. What the simulator encodes, the gateway decodes back to the same event,
   whether handed over as an object or as the bytes that cross MQTT.
2. Whatever arrives, decode either returns well-formed events or raises
   `DecodeError`; nothing else may escape the ingest path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.events import EventKind, SensorEvent
from device_profiles import DecodeError, DeviceCodec, builtin_profiles

BOUND: list[tuple[str, EventKind, DeviceCodec]] = [
    (profile.id, kind, profile.bind(kind))
    for profile in builtin_profiles().values()
    for kind in sorted(profile.kinds)
]
GENERIC_OPTIONS: list[dict[str, object]] = [
    {"value_field": "v", "invert": True},
    {"battery_field": "batt", "timestamp_field": "ts"},
    {"battery_field": None, "timestamp_field": None},
]
BOUND += [
    ("generic-json", kind, builtin_profiles()["generic-json"].bind(kind, options))
    for kind in (EventKind.BED, EventKind.DOOR, EventKind.MOTION, EventKind.BUTTON)
    for options in GENERIC_OPTIONS
]


def kinds_encodable(c: DeviceCodec) -> list[EventKind]:
    return [reading.kind for reading in c.readings]


def values_for(kind: EventKind) -> st.SearchStrategy[bool | int]:
    if kind is EventKind.BATTERY:
        return st.integers(0, 100)
    if kind is EventKind.BUTTON:  # a button event is always a press
        return st.just(True)
    return st.booleans()


times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)
names = st.text(min_size=1, max_size=20)


@st.composite
def codec_and_event(draw: st.DrawFn) -> tuple[DeviceCodec, SensorEvent]:
    _, _, c = draw(st.sampled_from(BOUND))
    kind = draw(st.sampled_from(kinds_encodable(c)))
    words = builtin_profiles()[c.profile_id].button_actions if kind is EventKind.BUTTON else ()
    event = SensorEvent(
        home=draw(names),
        device=draw(names),
        kind=kind,
        value=draw(values_for(kind)),
        at=draw(times),
        source=draw(st.text(max_size=30)),
        action=draw(st.sampled_from(sorted(words))) if words else None,  # the button's own word
    )
    return c, event


def test_every_profile_and_kind_is_covered() -> None:
    pairs = {(pid, kind) for pid, kind, _ in BOUND}
    assert pairs == {(p.id, k) for p in builtin_profiles().values() for k in p.kinds}


@given(codec_and_event())
@settings(max_examples=500)
def test_decode_of_encode_is_identity(case: tuple[DeviceCodec, SensorEvent]) -> None:
    c, event = case
    payload = c.encode(event)
    back = c.decode(
        payload, home=event.home, device=event.device, received_at=event.at, source=event.source
    )
    assert back == [event]
    assert back[0].at.tzinfo is UTC


@given(codec_and_event(), st.booleans())
def test_round_trip_through_mqtt_bytes(
    case: tuple[DeviceCodec, SensorEvent], as_bytes: bool
) -> None:
    """The simulator publishes strings as they are and objects as JSON."""
    c, event = case
    payload = c.encode(event)
    text = payload if isinstance(payload, str) else json.dumps(payload)
    wire: str | bytes = text.encode() if as_bytes else text
    back = c.decode(
        wire, home=event.home, device=event.device, received_at=event.at, source=event.source
    )
    assert back == [event]


@given(codec_and_event(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
def test_device_time_is_kept_when_received_later(
    case: tuple[DeviceCodec, SensorEvent], delay: timedelta
) -> None:
    c, event = case
    payload = c.encode(event)
    received = event.at + delay
    back = c.decode(payload, home=event.home, device=event.device, received_at=received)
    stamped = isinstance(payload, dict) and c.timestamp_field is not None
    assert [e.at for e in back] == [event.at if stamped else received]


# --- arbitrary input never escapes as anything but DecodeError --------------------------

FIELDS = sorted(
    {reading.field for _, _, c in BOUND for reading in c.readings}
    | {"last_seen", "ts", "linkquality", "click", "voltage"}
)
tricky_text = st.sampled_from(
    ["", " ", "true", "false", "ON", "off", "1", "0", "87", "87.0", "1_0", "nan", "-inf",
     "online", "offline", "single", "release", "2026-01-12T02:10:00", "2026-01-12T02:10:00Z",
     "2026-01-12T02:10:00+0100", "1768183800123", "9" * 400, "\x00", "é"]
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    tricky_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), inner, max_size=4
        )
    ),
    max_leaves=12,
)
plausible = st.one_of(
    st.booleans(), st.integers(-10, 200), st.floats(-10, 200), tricky_text, st.none()
)
device_objects = st.dictionaries(
    st.sampled_from(FIELDS), st.one_of(plausible, json_values), max_size=6
)


def as_json(value: object) -> str:
    try:
        return json.dumps(value)
    except ValueError:  # an int too long to print
        return "{}"


payloads = st.one_of(
    device_objects,
    json_values,
    device_objects.map(as_json),
    json_values.map(as_json),
    device_objects.map(lambda obj: as_json(obj).encode()),
    st.text(max_size=60),
    st.binary(max_size=60),
    tricky_text,
    tricky_text.map(str.encode),
)
received_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(-timedelta(hours=5))]),
)


@given(st.sampled_from(BOUND), payloads, received_times)
@settings(max_examples=1500)
def test_decode_raises_only_decode_error(
    bound: tuple[str, EventKind, DeviceCodec], payload: object, received: datetime
) -> None:
    _, _, c = bound
    try:
        events = c.decode(payload, home="h", device="d", received_at=received)
    except DecodeError as error:
        assert error.reason and str(error) == error.reason
        return
    allowed = set(kinds_encodable(c))
    for event in events:
        assert isinstance(event, SensorEvent)
        assert event.kind in allowed
        assert event.at.tzinfo is UTC
        assert event.at <= received
    assert [e.kind for e in events] == sorted(
        (e.kind for e in events), key=kinds_encodable(c).index
    )
