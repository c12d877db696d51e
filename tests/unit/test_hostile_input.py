"""Hostile and broken MQTT messages through `Runtime.ingest`: each is a dead letter, and ingest goes on.

Every case is a message a broken device, a buggy bridge or an attacker with a
home's credentials could send. Each must become a dead letter with a reason in
plain words, be counted in `tecmon_dead_letters_total`, leave a record that
any store can keep (no NUL, valid UTF-8, bounded size), and leave the runtime
working: a valid message right after it is still applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.homeconfig import parse_home_config
from gateway.clock import SimClock
from gateway.dead_letters import KeepLimits
from gateway.decoding import MAX_DEPTH, MAX_PAYLOAD_BYTES
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.runtime import Runtime
from gateway.store.base import DeadLetterRow, EventRow, InputRow

T0 = datetime(2026, 1, 12, 1, 0, tzinfo=UTC)
HOME = "julie"
BED, AVAIL = f"zigbee2mqtt/{HOME}/bed", f"zigbee2mqtt/{HOME}/bed/availability"
MOTION = f"zigbee2mqtt/{HOME}/hall-motion"
MB = 1024 * 1024
DEEP = 10_000
RECORD_LIMIT = 2000  # characters of a payload or topic kept in a dead letter


def home_config() -> dict[str, Any]:
    return {
        "home": HOME, "timezone": "Europe/London", "person": {"name": "Julie"},
        "devices": [
            {"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"},
            {"id": "hall-motion", "profile": "aqara-rtcgq11lm", "kind": "motion"},
        ],
        "routine": {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "45m"}},
        "contacts": [{"name": "Sam", "notify": ["json://127.0.0.1:9/"]}],
    }


@dataclass
class KeptRows:
    """A recorder that checks each row could be written by SQLite and PostgreSQL alike."""

    dead: list[DeadLetterRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)

    def add_event(self, row: EventRow) -> bool:
        self.events.append(row)
        return True

    def add_input(self, row: InputRow) -> bool:
        return True

    def add_dead_letter(self, row: DeadLetterRow) -> bool:
        for text in (row.topic, row.payload, row.reason, row.code):
            assert "\x00" not in text, "PostgreSQL refuses NUL in text"
            text.encode("utf-8")  # strict: a lone surrogate would make the whole batch fail
        assert len(row.payload) <= RECORD_LIMIT + 100 and len(row.topic) <= RECORD_LIMIT + 100
        self.dead.append(row)
        return True


def make_runtime(limits: KeepLimits | None = None) -> tuple[Runtime, KeptRows, SimClock]:
    clock = SimClock(T0)
    runtime = Runtime(clock, Metrics(), dead_letter_limits=limits)
    runtime.set_home(parse_home_config(home_config(), "test"))
    kept = KeptRows()
    runtime.recorder = kept
    return runtime, kept, clock


def dead_letter_count(runtime: Runtime, code: str) -> float:
    return runtime.metrics.registry.get_sample_value("tecmon_dead_letters_total", {"reason": code}) or 0.0


def not_kept_count(runtime: Runtime, code: str = "undecodable") -> float:
    sample = runtime.metrics.registry.get_sample_value("tecmon_dead_letters_not_kept_total", {"reason": code})
    return sample or 0.0


_valid_flip = [False]


def valid_message(at: datetime) -> Inbound:
    _valid_flip[0] = not _valid_flip[0]
    return Inbound(BED, json.dumps({"occupancy": _valid_flip[0]}).encode(), at, 1)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (case id, topic, payload, dead-letter code, words the reason must contain)
CORPUS: list[tuple[str, str, bytes, str, str]] = [
    # -- not JSON
    ("plain words", BED, b"not json", "undecodable", "not valid JSON"),
    ("half an object", BED, b'{"occupancy": true', "undecodable", "not valid JSON"),
    ("python dict", BED, b"{'occupancy': True}", "undecodable", "not valid JSON"),
    ("xml", BED, b"<occupancy>true</occupancy>", "undecodable", "not valid JSON"),
    ("not utf-8", BED, b"\xff\xfe\x00\x80garbage", "undecodable", "not UTF-8"),
    ("utf-8 bom", BED, b'\xef\xbb\xbf{"occupancy": true}', "undecodable", "JSON"),
    ("trailing garbage", BED, b'{"occupancy": true} {"occupancy": false}', "undecodable", "not valid JSON"),
    ("trailing nul", BED, b'{"occupancy": true}\x00', "undecodable", "not valid JSON"),
    # -- wrong types
    ("array", BED, b"[true]", "undecodable", "expected a JSON object"),
    ("bare string", BED, b'"occupied"', "undecodable", "expected a JSON object"),
    ("bare number", BED, b"42", "undecodable", "expected a JSON object"),
    ("null", BED, b"null", "undecodable", "expected a JSON object"),
    ("bare true", BED, b"true", "undecodable", "expected a JSON object"),
    ("word for a bool", BED, b'{"occupancy": "maybe"}', "undecodable", "occupancy"),
    ("object for a bool", BED, b'{"occupancy": {"value": true}}', "undecodable", "occupancy"),
    ("list for a bool", BED, b'{"occupancy": [true]}', "undecodable", "occupancy"),
    ("number for a bool", BED, b'{"occupancy": 2}', "undecodable", "occupancy"),
    ("word for a battery", MOTION, b'{"battery": "lots"}', "undecodable", "battery"),
    ("bool for a battery", MOTION, b'{"battery": true}', "undecodable", "battery"),
    ("time without offset", BED, b'{"occupancy": true, "last_seen": "2026-01-12T01:00:00"}',
     "undecodable", "offset"),
    ("time in words", BED, b'{"occupancy": true, "last_seen": "yesterday"}', "undecodable", "last_seen"),
    ("time as object", BED, b'{"occupancy": true, "last_seen": {}}', "undecodable", "last_seen"),
    # -- NaN, Infinity, numbers out of range
    ("NaN bool", BED, b'{"occupancy": NaN}', "undecodable", "occupancy"),
    ("NaN battery", MOTION, b'{"battery": NaN}', "undecodable", "battery"),
    ("Infinity battery", MOTION, b'{"battery": Infinity}', "undecodable", "battery"),
    ("NaN time", BED, b'{"occupancy": true, "last_seen": NaN}', "undecodable", "last_seen"),
    ("Infinity time", BED, b'{"occupancy": true, "last_seen": Infinity}', "undecodable", "last_seen"),
    ("-Infinity time", BED, b'{"occupancy": true, "last_seen": -Infinity}', "undecodable", "last_seen"),
    ("1e400 time", BED, b'{"occupancy": true, "last_seen": 1e400}', "undecodable", "last_seen"),
    ("huge epoch", BED, b'{"occupancy": true, "last_seen": 99999999999999999999}', "undecodable",
     "last_seen"),
    ("5000-digit int", MOTION, b'{"battery": 1' + b"0" * 5000 + b"}", "undecodable", "JSON"),
    ("NaN string time", BED, b'{"occupancy": true, "last_seen": "NaN"}', "undecodable", "last_seen"),
    # -- size
    ("1 MB valid state", BED, b'{"occupancy": true, "pad": "' + b"x" * MB + b'"}', "undecodable",
     "too large"),
    ("1 MB garbage", BED, b"\x01" * MB, "undecodable", "too large"),
    ("1 MB of spaces then a state", BED, b" " * MB + b'{"occupancy": true}', "undecodable", "too large"),
    ("1 MB on availability", AVAIL, b"online" + b" " * MB, "undecodable", "too large"),
    ("1 MB to an unknown home", "zigbee2mqtt/nobody/bed", b"x" * MB, "unknown_home", "nobody"),
    # -- nesting
    (f"{DEEP}-deep arrays", BED, nested(DEEP), "undecodable", "nested"),
    (f"{DEEP}-deep objects", BED, b'{"a":' * DEEP + b"1" + b"}" * DEEP, "undecodable", "nested"),
    (f"{DEEP}-deep inside a valid state", BED, b'{"occupancy": true, "x": ' + nested(DEEP) + b"}",
     "undecodable", "nested"),
    (f"{DEEP} unclosed brackets", BED, b"[" * DEEP, "undecodable", "nested"),
    ("just past the depth limit", BED, b'{"occupancy": true, "x": ' + nested(MAX_DEPTH) + b"}",
     "undecodable", "nested"),
    # -- odd Unicode and control characters
    ("lone surrogate", BED, b'{"occupancy": "\\ud800"}', "undecodable", "occupancy"),
    ("encoded surrogate bytes", BED, b'{"occupancy": "\xed\xa0\x80"}', "undecodable", "UTF-8"),
    ("raw NUL in a string", BED, b'{"occupancy": "\x00"}', "undecodable", "not valid JSON"),
    ("escaped NUL value", BED, b'{"occupancy": "\\u0000"}', "undecodable", "occupancy"),
    ("raw newline in a string", BED, b'{"occupancy": "a\nb"}', "undecodable", "not valid JSON"),
    ("right-to-left override", BED, '{"occupancy": "\u202etrue"}'.encode(), "undecodable", "occupancy"),
    ("emoji", BED, '{"occupancy": "✅"}'.encode(), "undecodable", "occupancy"),
    ("zero-width space in true", BED, '{"occupancy": "tr\u200bue"}'.encode(), "undecodable", "occupancy"),
    ("overlong utf-8", BED, b'{"occupancy": "\xc0\xaf"}', "undecodable", "UTF-8"),
    # -- wildcards, separators and '..' in ids
    ("+ as home", "zigbee2mqtt/+/bed", b'{"occupancy": true}', "bad_topic", "home"),
    ("# as home", "zigbee2mqtt/#", b'{"occupancy": true}', "bad_topic", "device"),
    ("+ as device", f"zigbee2mqtt/{HOME}/+", b'{"occupancy": true}', "bad_topic", "device"),
    ("# as device", f"zigbee2mqtt/{HOME}/#", b'{"occupancy": true}', "bad_topic", "device"),
    ("+ inside a device", f"zigbee2mqtt/{HOME}/be+d", b'{"occupancy": true}', "bad_topic", "device"),
    (".. as home", "zigbee2mqtt/../bed", b'{"occupancy": true}', "bad_topic", "home"),
    (".. as device", f"zigbee2mqtt/{HOME}/..", b'{"occupancy": true}', "bad_topic", "device"),
    ("path climbing", f"zigbee2mqtt/{HOME}/../{HOME}/bed", b'{"occupancy": true}', "bad_topic", "device"),
    ("climbing after a device", f"zigbee2mqtt/{HOME}/bed/../../x/bed", b"{}", "bad_topic", "level"),
    ("empty home", "zigbee2mqtt//bed", b'{"occupancy": true}', "bad_topic", "home"),
    ("empty device", f"zigbee2mqtt/{HOME}/", b'{"occupancy": true}', "bad_topic", "device"),
    ("double slash", f"zigbee2mqtt/{HOME}//bed", b'{"occupancy": true}', "bad_topic", "device"),
    ("newline in home (forged log line)", "zigbee2mqtt/julie\n2026-01-12 WARNING all fine/bed",
     b"{}", "bad_topic", "home"),
    ("NUL in home", "zigbee2mqtt/jul\x00ie/bed", b"{}", "bad_topic", "home"),
    ("right-to-left override in home", "zigbee2mqtt/julie\u202e/bed", b"{}", "bad_topic", "home"),
    ("space in device", f"zigbee2mqtt/{HOME}/bed room", b"{}", "bad_topic", "device"),
    ("64 KB topic", f"zigbee2mqtt/{HOME}/" + "b" * 65_000, b"{}", "bad_topic", "device"),
    # -- wrong topic depths and prefixes
    ("prefix only", "zigbee2mqtt", b"{}", "bad_topic", "zigbee2mqtt/"),
    ("home only", f"zigbee2mqtt/{HOME}", b"{}", "bad_topic", "device"),
    ("empty topic", "", b"{}", "bad_topic", "zigbee2mqtt/"),
    ("other prefix", f"homeassistant/{HOME}/bed", b"{}", "bad_topic", "zigbee2mqtt/"),
    ("leading slash", f"/zigbee2mqtt/{HOME}/bed", b"{}", "bad_topic", "zigbee2mqtt/"),
    ("prefix in capitals", f"ZIGBEE2MQTT/{HOME}/bed", b"{}", "bad_topic", "zigbee2mqtt/"),
    ("one level too many", f"zigbee2mqtt/{HOME}/bed/extra", b"{}", "bad_topic", "level"),
    ("availability one level down", f"zigbee2mqtt/{HOME}/bed/availability/x", b"online", "bad_topic", "level"),
    ("a command topic", f"zigbee2mqtt/{HOME}/bed/set", b'{"state": "ON"}', "bad_topic", "level"),
    # -- unknown homes and devices
    ("unknown home", "zigbee2mqtt/nobody/bed", b'{"occupancy": true}', "unknown_home", "nobody"),
    ("unknown home availability", "zigbee2mqtt/nobody/bed/availability", b"online", "unknown_home", "nobody"),
    ("home in capitals", "zigbee2mqtt/JULIE/bed", b'{"occupancy": true}', "unknown_home", "JULIE"),
    ("unknown device", f"zigbee2mqtt/{HOME}/kettle", b'{"occupancy": true}', "unknown_device", "kettle"),
    # -- empty and blank payloads (a retained message being cleared)
    ("empty retained state", BED, b"", "undecodable", "empty"),
    ("empty retained availability", AVAIL, b"", "undecodable", "empty"),
    ("blank state", BED, b"  \r\n\t ", "undecodable", "empty"),
    # -- availability that is neither online nor offline
    ("availability word", AVAIL, b"maybe", "undecodable", "state"),
    ("availability number", AVAIL, b'{"state": 1}', "undecodable", "state"),
    ("availability cut short", AVAIL, b'{"state": "online"', "undecodable", "not valid JSON"),
    ("availability as array", AVAIL, b'["online"]', "undecodable", "JSON object"),
]


@pytest.mark.parametrize(("topic", "payload", "code", "words"),
                         [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_each_malformed_message_is_a_dead_letter_and_the_next_valid_one_still_works(
    topic: str, payload: bytes, code: str, words: str
) -> None:
    runtime, kept, clock = make_runtime()
    before = dead_letter_count(runtime, code)
    assert runtime.ingest(Inbound(topic, payload, clock.now(), 1)) == 0
    assert dead_letter_count(runtime, code) == before + 1
    assert len(kept.dead) == 1 and len(runtime.dead_letters) == 1
    row = kept.dead[0]
    assert row.code == code
    assert words.lower() in row.reason.lower(), row.reason
    clock.advance(timedelta(seconds=1))
    assert runtime.ingest(valid_message(clock.now())) == 1, "the runtime stopped applying valid messages"


def test_the_whole_corpus_through_one_runtime() -> None:
    """One runtime takes every case in turn, each followed by a valid message.

    Ten seconds apart: slower than the per-topic keeping limit, so every one is kept.
    """
    runtime, kept, clock = make_runtime()
    for _, topic, payload, _, _ in CORPUS:
        clock.advance(timedelta(seconds=10))
        runtime.ingest(Inbound(topic, payload, clock.now(), 1))
        assert runtime.ingest(valid_message(clock.now())) == 1
    assert len(kept.dead) == len(CORPUS)
    assert len(kept.events) == len(CORPUS)
    assert [r.code for r in kept.dead] == [c[3] for c in CORPUS]


def test_the_limits_leave_real_payloads_alone() -> None:
    runtime, kept, clock = make_runtime()
    deep_enough = b'{"occupancy": true, "update": ' + nested(MAX_DEPTH - 2) + b"}"
    padded = b'{"occupancy": false, "pad": "' + b"x" * (MAX_PAYLOAD_BYTES - 100) + b'"}'
    brackets_in_text = b'{"occupancy": true, "note": "' + b"[" * 5000 + b'"}'
    for payload in (deep_enough, padded, brackets_in_text, b'{"occupancy": true, "\\u0000": 1}'):
        assert runtime.ingest(Inbound(BED, payload, clock.now(), 1)) == 1, payload[:60]
    assert runtime.ingest(Inbound(AVAIL, b"online", clock.now(), 1)) == 1
    assert not kept.dead


# --------------------------------------------------------------------------- generated input

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
state_like = st.fixed_dictionaries({}, optional={"occupancy": json_values, "battery": json_values,
                                                 "last_seen": json_values, "contact": json_values})
topics = st.one_of(
    st.sampled_from([BED, AVAIL, MOTION, "zigbee2mqtt/nobody/bed"]),
    st.builds(lambda home, dev: f"zigbee2mqtt/{home}/{dev}", st.text(max_size=12), st.text(max_size=12)),
    st.text(max_size=40),
)
payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), json_values),
    st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), state_like),
)


CODES = ("bad_topic", "unknown_home", "unknown_device", "undecodable", "no_known_field")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, payload=payloads)
def test_any_message_is_applied_or_kept_as_a_dead_letter_never_an_exception(topic: str, payload: bytes) -> None:
    runtime, kept, clock = make_runtime()
    applied = runtime.ingest(Inbound(topic, payload, clock.now(), 1))
    counted = sum(dead_letter_count(runtime, c) for c in CODES)
    assert counted == len(kept.dead) <= 1
    if applied and kept.dead:  # heard as alive, and told once that its profile may be wrong
        assert kept.dead[0].code == "no_known_field"
    clock.advance(timedelta(seconds=1))
    assert runtime.ingest(valid_message(clock.now())) == 1


# --------------------------------------------------------------------------- a flood of dead letters


def garbage(runtime: Runtime, clock: SimClock, topic: str = BED, times: int = 1) -> None:
    for _ in range(times):
        runtime.ingest(Inbound(topic, b"\x00garbage", clock.now(), 1))


def test_a_flood_on_one_topic_is_counted_in_full_but_kept_only_up_to_its_burst() -> None:
    runtime, kept, clock = make_runtime()
    burst = runtime.dead_letter_gate.limits.per_topic_burst
    garbage(runtime, clock, times=1000)
    assert dead_letter_count(runtime, "undecodable") == 1000
    assert len(kept.dead) == len(runtime.dead_letters) == burst
    assert not_kept_count(runtime) == 1000 - burst
    assert runtime.ingest(valid_message(clock.now())) == 1, "a flood must not stop valid messages"


def test_a_flooded_topic_is_kept_again_at_the_refill_rate_and_never_beyond_its_burst() -> None:
    limits = KeepLimits(per_topic_burst=3, per_topic_per_minute=6.0)
    runtime, kept, clock = make_runtime(limits)
    garbage(runtime, clock, times=10)
    assert len(kept.dead) == 3
    clock.advance(timedelta(seconds=9))
    garbage(runtime, clock)
    assert len(kept.dead) == 3, "not yet a whole token back"
    clock.advance(timedelta(seconds=1))
    garbage(runtime, clock, times=5)
    assert len(kept.dead) == 4, "one every ten seconds at six a minute"
    clock.advance(timedelta(hours=1))
    garbage(runtime, clock, times=10)
    assert len(kept.dead) == 4 + 3, "an idle hour gives back the burst, no more"
    assert not_kept_count(runtime) == 10 + 1 + 5 + 10 - 7


def test_a_flood_on_one_topic_does_not_hide_another_topics_dead_letters() -> None:
    runtime, kept, clock = make_runtime(KeepLimits(per_topic_burst=2))
    garbage(runtime, clock, BED, times=50)
    garbage(runtime, clock, MOTION)
    runtime.ingest(Inbound("zigbee2mqtt/nobody/bed", b"{}", clock.now(), 1))
    assert [row.topic for row in kept.dead] == [BED, BED, MOTION, "zigbee2mqtt/nobody/bed"]


def test_a_flood_across_many_topics_is_held_by_the_overall_limit() -> None:
    limits = KeepLimits(per_topic_burst=5, overall_burst=10, overall_per_minute=60.0)
    runtime, kept, clock = make_runtime(limits)
    for n in range(500):
        runtime.ingest(Inbound(f"zigbee2mqtt/{HOME}/device-{n}", b"{}", clock.now(), 1))
    assert len(kept.dead) == 10
    assert dead_letter_count(runtime, "unknown_device") == 500
    assert not_kept_count(runtime, "unknown_device") == 490
    clock.advance(timedelta(seconds=1))
    runtime.ingest(Inbound(f"zigbee2mqtt/{HOME}/device-0", b"{}", clock.now(), 1))
    assert len(kept.dead) == 11


def test_the_topics_remembered_are_bounded_and_the_oldest_forgotten() -> None:
    limits = KeepLimits(per_topic_burst=1, per_topic_per_minute=0.001, topics=3)
    runtime, kept, clock = make_runtime(limits)
    for topic in (BED, MOTION, AVAIL, BED):  # BED is still remembered: its second is not kept
        garbage(runtime, clock, topic)
    assert len(kept.dead) == 3
    garbage(runtime, clock, f"zigbee2mqtt/{HOME}/other")  # a fourth topic: the oldest (MOTION) goes
    garbage(runtime, clock, MOTION)
    assert [row.topic for row in kept.dead][-2:] == [f"zigbee2mqtt/{HOME}/other", MOTION]
