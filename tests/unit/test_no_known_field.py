"""A configured device whose messages carry none of its profile's fields.

Typically the wrong profile: a presence radar set up as `tuya-ts0601-bed`
sends `presence`, never `occupancy`. Before, such messages were dropped
without a word. Now the first one of each device is kept as a dead letter that
names the likely cause, and every one still counts as the device being alive.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.decisions import AlertRaised, AlertResolved
from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import HomeConfig, load_home_config
from gateway.clock import SimClock
from gateway.decoding import DeadLetter, Decoded, MessageDecoder
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.runtime import Dispatch, Runtime

HOME_FILE = Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml"
HOME = "julie-12-oak-road"
AT = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
RADAR = {"presence": True, "target_distance": 0.6, "linkquality": 120}
WHY = "bed: no 'occupancy' field; is this device's profile right?"


@pytest.fixture
def cfg() -> HomeConfig:
    return load_home_config(HOME_FILE)


def topic(device: str) -> str:
    return f"zigbee2mqtt/{HOME}/{device}"


def test_the_first_message_without_a_known_field_is_a_notice_naming_the_cause(cfg: HomeConfig) -> None:
    decoder = MessageDecoder([cfg])
    decoded = decoder.decode_message(topic("bed"), json.dumps(RADAR).encode(), AT)
    assert decoded.notice is not None
    assert decoded.notice.code == "no_known_field"
    assert decoded.notice.reason.startswith(WHY)
    assert "tuya-ts0601-bed" in decoded.notice.reason
    assert decoded.notice.topic == topic("bed")
    alive = SensorEvent(HOME, "bed", EventKind.AVAILABILITY, True, AT, topic("bed"))
    assert decoded.events == [alive]


def test_once_per_device_but_every_message_is_the_device_alive(cfg: HomeConfig) -> None:
    decoder = MessageDecoder([cfg])
    first = decoder.decode_message(topic("bed"), RADAR, AT)
    later = [decoder.decode_message(topic("bed"), RADAR, AT + timedelta(minutes=n)) for n in (1, 2)]
    assert first.notice is not None
    assert [d.notice for d in later] == [None, None]
    assert [[e.at for e in d.events] for d in later] == [[AT + timedelta(minutes=1)], [AT + timedelta(minutes=2)]]
    other = decoder.decode_message(topic("hall-motion"), {"linkquality": 40}, AT)
    assert other.notice is not None and "no 'occupancy' field" in other.notice.reason
    assert other.notice.reason.startswith("hall-motion: ")


def test_decode_gives_the_events_only(cfg: HomeConfig) -> None:
    """`tecmon replay` decodes with `decode`: the same events as live, no notice."""
    events = MessageDecoder([cfg]).decode(topic("bed"), RADAR, AT)
    assert [(e.kind, e.value) for e in events] == [(EventKind.AVAILABILITY, True)]


def test_the_device_time_is_used_when_it_sent_one(cfg: HomeConfig) -> None:
    seen = AT - timedelta(minutes=3)
    payload = {"presence": False, "last_seen": seen.isoformat()}
    assert [e.at for e in MessageDecoder([cfg]).decode(topic("bed"), payload, AT)] == [seen]


@pytest.mark.parametrize(
    ("device", "payload"),
    [
        ("ok-button", {"action": "", "linkquality": 80}),  # the empty action after a press
        ("bed", {"occupancy": None}),  # the field, without a value
        ("bed", {"battery": 80, "linkquality": 80}),  # a battery report is a reading
    ],
)
def test_a_message_with_one_of_the_fields_is_not_this(cfg: HomeConfig, device: str, payload: object) -> None:
    decoded = MessageDecoder([cfg]).decode_message(topic(device), payload, AT)
    assert decoded.notice is None
    assert all(e.kind is not EventKind.AVAILABILITY for e in decoded.events)


def test_an_empty_availability_message_is_not_this(cfg: HomeConfig) -> None:
    decoded = MessageDecoder([cfg]).decode_message(topic("bed") + "/availability", "{}", AT)
    assert decoded == Decoded([])


def test_undecodable_and_unknown_stay_dead_letters(cfg: HomeConfig) -> None:
    decoder = MessageDecoder([cfg])
    with pytest.raises(DeadLetter) as caught:
        decoder.decode_message(topic("bed"), {"occupancy": "maybe"}, AT)
    assert caught.value.code == "undecodable"
    with pytest.raises(DeadLetter) as caught:
        decoder.decode_message(topic("toaster"), RADAR, AT)
    assert caught.value.code == "unknown_device"


# --- in the live runtime -------------------------------------------------------------------


def runtime(cfg: HomeConfig, start: datetime) -> tuple[Runtime, SimClock]:
    clock = SimClock(start)
    live = Runtime(clock, Metrics())
    live.set_home(cfg)
    return live, clock


def message(device: str, payload: object, at: datetime, suffix: str = "") -> Inbound:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return Inbound(topic(device) + suffix, text.encode(), at, 1)


def counted(live: Runtime, code: str) -> float:
    value = live.metrics.registry.get_sample_value("tecmon_dead_letters_total", {"reason": code})
    return value or 0.0


def test_live_keeps_one_dead_letter_counts_it_and_hears_the_device(cfg: HomeConfig) -> None:
    live, _ = runtime(cfg, AT)
    for minutes in (0, 5, 10):
        applied = live.ingest(message("bed", RADAR, AT + timedelta(minutes=minutes)))
        assert applied == 1
    assert counted(live, "no_known_field") == 1
    assert counted(live, "undecodable") == 0
    assert [(r.code, r.topic) for r in live.dead_letters] == [("no_known_field", topic("bed"))]
    assert live.dead_letters[0].reason.startswith(WHY)
    assert live.homes[HOME].state.devices["bed"].heard_at == AT + timedelta(minutes=10)


def test_live_a_message_without_a_known_field_ends_an_offline_episode(cfg: HomeConfig) -> None:
    live, clock = runtime(cfg, AT)
    live.ingest(message("bed", "offline", AT, "/availability"))
    clock.set(AT + timedelta(minutes=10))
    live.fire_due()
    raised = [d.decision for d in _drain(live) if isinstance(d.decision, AlertRaised)]
    assert [(d.alert.kind, d.alert.device) for d in raised] == [("device_offline", "bed")]
    live.ingest(message("bed", RADAR, AT + timedelta(minutes=12)))
    resolved = [d.decision for d in _drain(live) if isinstance(d.decision, AlertResolved)]
    assert [(d.alert.kind, d.how) for d in resolved] == [("device_offline", "condition")]
    assert live.homes[HOME].state.offline == set()


def _drain(live: Runtime) -> list[Dispatch]:
    found: list[Dispatch] = []
    while not live.outbox.empty():
        found.append(live.outbox.get_nowait())
    return found
