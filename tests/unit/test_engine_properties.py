"""Properties of the engine that must hold for any night, not just the ones we thought of."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.decisions import AlertKind, AlertRaised
from alerts.engine import new_state, step
from alerts.events import EventKind, SensorEvent, Tick
from alerts.homeconfig import HomeConfig, load_home_config
from alerts.nights import NightWindow
from alerts.plan import plan_from_config
from gateway.replay import lifecycle_line, run_replay

HOME = load_home_config(Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml")
HOME_NO_STILL = HomeConfig.model_validate(
    {**HOME.model_dump(by_alias=True), "routine": {
        **HOME.model_dump(by_alias=True)["routine"], "still_while_up": None}}
)
homes = st.sampled_from([HOME, HOME_NO_STILL])
TOPIC = f"zigbee2mqtt/{HOME.home}"
START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # spans the spring-forward night
# The contract bounds these two by the night window; an exit alert may fall just after it.
NIGHT_RULES = {"out_of_bed_too_long", "still_while_up"}

READINGS: list[tuple[str, Any]] = [
    ("bed", {"occupancy": True}), ("bed", {"occupancy": False}),
    ("front-door", {"contact": False}), ("front-door", {"contact": True}),
    ("hall-motion", {"occupancy": True}), ("hall-motion", {"occupancy": False}),
    ("ok-button", {"action": "single"}), ("bed", {"occupancy": False, "battery": 12}),
    ("bed", {"occupancy": True, "battery": 80}), ("hall-motion/availability", "offline"),
    ("hall-motion/availability", "online"),
]

reading = st.sampled_from(READINGS)
gap = st.integers(min_value=0, max_value=3 * 3600)
ack = st.sampled_from(["out_of_bed_too_long", "still_while_up", "not_back_after_exit", "help_requested"])
line_spec = st.one_of(
    st.tuples(gap, reading),
    st.tuples(gap, st.builds(lambda kind: ("ack", kind), ack)),
)
nights = st.lists(line_spec, min_size=1, max_size=40)


def to_lines(spec: list[tuple[int, tuple[str, Any]]]) -> list[str]:
    at, lines = START, []
    for seconds, (what, payload) in spec:
        at += timedelta(seconds=seconds)
        if what == "ack":
            lines.append(json.dumps({"ts": at.isoformat(), "ack": payload, "by": "Sam"}))
        else:
            lines.append(json.dumps({"ts": at.isoformat(), "topic": f"{TOPIC}/{what}", "payload": payload}))
    return lines


def replay(lines: list[str], home: HomeConfig = HOME) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    report = run_replay([home], lines, lambda d: out.append(lifecycle_line(d)))
    assert report.problems == []
    return out


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(nights, homes)
def test_no_night_rule_raises_outside_the_night_window(spec: list[Any], home: HomeConfig) -> None:
    window = NightWindow(HOME.routine.night.from_, HOME.routine.night.to, HOME.zone)
    for line in replay(to_lines(spec), home):
        if line["step"] == "raised" and line["kind"] in NIGHT_RULES:
            assert window.contains(datetime.fromisoformat(line["at"])), line


@PROPERTY
@given(nights, homes)
def test_never_two_open_person_safety_alerts(spec: list[Any], home: HomeConfig) -> None:
    open_alerts: set[str] = set()
    for line in replay(to_lines(spec), home):
        if not AlertKind(line["kind"]).person_safety:
            continue
        if line["step"] == "raised":
            assert not open_alerts, (open_alerts, line)
            open_alerts.add(line["alert"])
        elif line["step"] == "resolved":
            open_alerts.discard(line["alert"])


@PROPERTY
@given(nights, homes, st.data())
def test_duplicating_any_input_line_changes_no_output(
    spec: list[Any], home: HomeConfig, data: st.DataObject
) -> None:
    lines = to_lines(spec)
    index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    duplicated = [*lines[: index + 1], lines[index], *lines[index + 1 :]]
    assert replay(duplicated, home) == replay(lines, home)


@PROPERTY
@given(nights)
def test_replay_is_deterministic(spec: list[Any]) -> None:
    lines = to_lines(spec)
    assert replay(lines) == replay(lines)


@PROPERTY
@given(nights)
def test_output_is_in_time_order_and_every_alert_starts_with_raised(spec: list[Any]) -> None:
    seen: set[str] = set()
    out = replay(to_lines(spec))
    assert [x["at"] for x in out] == sorted(x["at"] for x in out)
    for line in out:
        if line["step"] == "raised":
            assert line["alert"] not in seen
            seen.add(line["alert"])
        else:
            assert line["alert"] in seen, line


@PROPERTY
@given(nights)
def test_away_period_raises_nothing(spec: list[Any]) -> None:
    away = [{"from": "2026-03-28T00:00", "to": "2026-04-30T00:00", "reason": "holiday"}]
    home = HomeConfig.model_validate({**HOME.model_dump(by_alias=True), "away": away})
    assert [x for x in replay(to_lines(spec), home) if x["step"] == "raised"] == []


# --- unknown state never silences not_in_bed_by --------------------------------------

BEDTIME_CHECK = datetime(2026, 1, 12, 1, 0, tzinfo=UTC)  # 01:00 in London in January
EVENING = datetime(2026, 1, 11, 16, 0, tzinfo=UTC)
NOT_BED_READINGS: list[tuple[str, EventKind, bool | int]] = [
    ("hall-motion", EventKind.MOTION, True), ("hall-motion", EventKind.MOTION, False),
    ("front-door", EventKind.DOOR, True), ("front-door", EventKind.DOOR, False),
    ("ok-button", EventKind.BUTTON, True), ("hall-motion", EventKind.AVAILABILITY, False),
    ("hall-motion", EventKind.AVAILABILITY, True), ("hall-motion", EventKind.BATTERY, 10),
    ("bed", EventKind.AVAILABILITY, False), ("bed", EventKind.AVAILABILITY, True),
    ("bed", EventKind.BATTERY, 50),  # the bed is heard, but never says who is in it
]
evening_events = st.lists(
    st.tuples(st.integers(min_value=0, max_value=9 * 3600 - 1), st.sampled_from(NOT_BED_READINGS)),
    max_size=30,
)


@PROPERTY
@given(evening_events)
def test_unknown_bed_never_silences_not_in_bed_by(spec: list[Any]) -> None:
    """Whatever else happens, a bed that never reported is "not in bed" at in_bed_by.

    It is raised as its own alert, or joins the person-safety alert already open.
    """
    state, raised = step(new_state(plan_from_config(HOME)), Tick(), EVENING)  # watching begins
    for offset, (device, kind, value) in sorted(spec, key=lambda item: item[0]):
        at = EVENING + timedelta(seconds=offset)
        state, decisions = step(state, SensorEvent(HOME.home, device, kind, value, at), at)
        raised += decisions
    state, decisions = step(state, Tick(), BEDTIME_CHECK)
    raised += decisions
    assert not any(isinstance(d, AlertRaised) and d.alert.kind is AlertKind.NOT_IN_BED_BY
                   and d.at < BEDTIME_CHECK for d in raised)
    assert state.safety is not None and AlertKind.NOT_IN_BED_BY in state.safety.reasons
    assert "the bed has not reported since" in state.safety.reasons[AlertKind.NOT_IN_BED_BY]
