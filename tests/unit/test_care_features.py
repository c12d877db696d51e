"""Ask-first and company mode: what must hold for any night, the configuration, the `set` payload.

Properties: asking the person first never delays a call for help or an exit
alert, and company mode never delays a call for help: whenever one of those
is raised on its own, its first contact is notified at the same instant.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.homeconfig import ConfigError, HomeConfig, load_home_config, parse_home_config
from device_profiles import get_profile
from gateway.replay import lifecycle_line, run_replay

HOME = load_home_config(Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml")
BASE = HOME.model_dump(by_alias=True, mode="json")
LIGHT = {"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"}


def with_routine(**routine: Any) -> HomeConfig:
    data = {**BASE, "devices": [*BASE["devices"], LIGHT], "routine": {**BASE["routine"], **routine}}
    return parse_home_config(data, "test")


ASKING = with_routine(check_with_me={"within": "2m", "device": "bedside-light"})
BOTH = with_routine(
    check_with_me={"within": "2m", "device": "bedside-light"}, company={"action": "double", "for": "2h"}
)
TOPIC = f"zigbee2mqtt/{HOME.home}"
START = datetime(2026, 1, 11, 21, 0, tzinfo=UTC)
READINGS: list[tuple[str, Any]] = [
    ("bed", {"occupancy": True}), ("bed", {"occupancy": False}),
    ("front-door", {"contact": False}), ("front-door", {"contact": True}),
    ("hall-motion", {"occupancy": True}), ("ok-button", {"action": "single"}),
    ("ok-button", {"action": "double"}), ("bedside-light", {"state": "ON"}),
]
line_spec = st.one_of(
    st.tuples(st.integers(0, 2 * 3600), st.sampled_from(READINGS)),
    st.tuples(st.integers(0, 3600), st.sampled_from([("company", True), ("company", False)])),
)
nights = st.lists(line_spec, min_size=1, max_size=40)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replay(spec: list[Any], home: HomeConfig) -> list[dict[str, Any]]:
    at, lines = START, []
    for seconds, (what, payload) in spec:
        at += timedelta(seconds=seconds)
        if what == "company":
            lines.append(json.dumps({"ts": at.isoformat(), "company": payload, "by": "Sam"}))
        else:
            lines.append(json.dumps({"ts": at.isoformat(), "topic": f"{TOPIC}/{what}", "payload": payload}))
    out: list[dict[str, Any]] = []
    report = run_replay([home], lines, lambda d: out.append(lifecycle_line(d)), until=at + timedelta(hours=3))
    assert report.problems == []
    return out


def first_steps(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_alert.setdefault(line["alert"], []).append(line)
    return by_alert


@PROPERTY
@given(nights, st.sampled_from([ASKING, BOTH]))
def test_help_and_exits_are_never_delayed(spec: list[Any], home: HomeConfig) -> None:
    """Raised as help or an exit: the next step is the first call, at the same instant."""
    for steps in first_steps(replay(spec, home)).values():
        raised = steps[0]
        if raised["kind"] in ("help_requested", "not_back_after_exit"):
            assert steps[1]["step"] == "notified", steps
            assert steps[1]["at"] == raised["at"], steps


@PROPERTY
@given(nights)
def test_asked_alerts_wait_exactly_within_before_the_first_call(spec: list[Any]) -> None:
    """An asked alert calls nobody before raised + within, unless an exit joins it."""
    for steps in first_steps(replay(spec, ASKING)).values():
        if len(steps) > 1 and steps[1]["step"] == "asked":
            assert steps[1]["contact"] is None and set(steps[1]) == set(steps[0])
            called = [s for s in steps if s["step"] == "notified"]
            raised = datetime.fromisoformat(steps[0]["at"])
            for call in called:
                assert datetime.fromisoformat(call["at"]) - raised <= timedelta(minutes=2)


@PROPERTY
@given(nights)
def test_company_mode_never_delays_help(spec: list[Any]) -> None:
    lines = replay(spec, BOTH)
    for steps in first_steps(lines).values():
        if steps[0]["kind"] == "help_requested":
            assert steps[1]["step"] == "notified" and steps[1]["at"] == steps[0]["at"]
    presses = sum(1 for _, (what, payload) in spec if payload == {"action": "single"})
    assert presses or not any(line["kind"] == "help_requested" for line in lines)


def test_the_published_ask_decodes_as_the_light_set_payload() -> None:
    """What tecmon publishes is the profile's `set` payload, which the light reads as "on"."""
    profile = get_profile("z2m-light")
    payload = profile.ask_payload()
    assert payload == {"state": "ON", "effect": "blink"}
    wire = json.dumps(payload).encode()
    assert json.loads(wire) == {"state": "ON", "effect": "blink"}
    events = profile.bind("light").decode(
        wire, home="h", device="bedside-light", received_at=START, source="h/bedside-light/set"
    )
    assert [(e.kind.value, e.value) for e in events] == [("light", True)]


def test_a_lights_own_state_is_only_alive() -> None:
    codec = get_profile("z2m-light").bind("light")
    for state in ({"state": "OFF", "brightness": 3}, {"state": "ON", "color": {"x": 1}}):
        events = codec.decode(state, home="h", device="l", received_at=START)
        assert [e.kind.value for e in events] == ["light"]
    assert codec.decode({"linkquality": 80}, home="h", device="l", received_at=START) == []
    assert codec.decode({"state": "TOGGLE"}, home="h", device="l", received_at=START) == []


def test_button_actions_decode_with_their_word() -> None:
    codec = get_profile("aqara-wxkg11lm").bind("button")
    [event] = codec.decode({"action": "double"}, home="h", device="b", received_at=START)
    assert (event.value, event.action) == (True, "double")


@pytest.mark.parametrize(
    ("routine", "devices", "field", "words"),
    [
        ({"check_with_me": {"within": "2m", "device": "lamp"}}, [], "routine.check_with_me.device",
         "no device 'lamp'"),
        ({"check_with_me": {"within": "2m", "device": "bed"}}, [], "routine.check_with_me.device",
         "cannot be asked"),
        ({"check_with_me": {"within": "0m", "device": "bedside-light"}}, [LIGHT],
         "routine.check_with_me.within", "longer than 0m"),
        ({"check_with_me": {"within": "2m"}}, [LIGHT], "routine.check_with_me.device", "required"),
        ({"company": {"action": "wiggle", "for": "2h"}}, [], "routine.company.action", "no button"),
        ({"company": {"action": "double", "for": "soon"}}, [], "routine.company.for", "duration"),
        ({"company": {"action": "double", "for": "2h", "colour": 1}}, [], "routine.company.colour",
         "unknown key"),
    ],
)
def test_configuration_names_the_field(
    routine: dict[str, Any], devices: list[Any], field: str, words: str
) -> None:
    data = {**BASE, "devices": [*BASE["devices"], *devices], "routine": {**BASE["routine"], **routine}}
    with pytest.raises(ConfigError) as caught:
        parse_home_config(data, "test")
    assert any(p.startswith(f"{field}: ") and words in p for p in caught.value.problems), caught.value


def test_company_needs_a_button() -> None:
    devices = [d for d in BASE["devices"] if d["kind"] != "button"]
    data = {**BASE, "devices": devices, "routine": {**BASE["routine"], "company": {"action": "double", "for": "2h"}}}
    with pytest.raises(ConfigError) as caught:
        parse_home_config(data, "test")
    assert "routine.company: needs a button device" in caught.value.problems


def test_the_keys_round_trip_through_json() -> None:
    again = HomeConfig.model_validate_json(BOTH.model_dump_json(by_alias=True))
    assert again.routine.company is not None and again.routine.company.for_ == timedelta(hours=2)
    assert again.routine.check_with_me is not None
