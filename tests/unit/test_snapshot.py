"""Engine snapshots: state -> snapshot -> state is the same state, and decides the same.

For any sequence of inputs cut anywhere, an engine restored from a snapshot
taken at the cut and fed the rest decides exactly what an engine that never
stopped decides, and ends in the same state.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts import snapshot
from alerts.engine import new_state, step
from alerts.events import (
    Acknowledge,
    DeliveryFailed,
    EngineInput,
    EventKind,
    ResolveAlert,
    SensorEvent,
    SetCompany,
    Tick,
)
from alerts.homeconfig import HomeConfig, load_home_config
from alerts.plan import plan_from_config
from alerts.state import HomeState

JULIE = load_home_config(Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml")
_DATA = JULIE.model_dump(mode="json", by_alias=True)
CARING = HomeConfig.model_validate({
    **_DATA,
    "devices": [*_DATA["devices"],
                {"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"}],
    "routine": {**_DATA["routine"], "check_with_me": {"within": "2m", "device": "bedside-light"},
                "company": {"action": "double", "for": "2h"}},
    "contacts": [{**_DATA["contacts"][0], "morning_summary": "08:30"}, _DATA["contacts"][1]],
})
PLANS = [plan_from_config(JULIE), plan_from_config(CARING)]
HOME = JULIE.home
START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # spans the spring-forward night

READINGS: list[tuple[str, EventKind, bool | int, str | None]] = [
    ("bed", EventKind.BED, True, None), ("bed", EventKind.BED, False, None),
    ("front-door", EventKind.DOOR, True, None), ("front-door", EventKind.DOOR, False, None),
    ("hall-motion", EventKind.MOTION, True, None), ("hall-motion", EventKind.MOTION, False, None),
    ("ok-button", EventKind.BUTTON, True, "single"), ("ok-button", EventKind.BUTTON, True, "double"),
    ("bed", EventKind.BATTERY, 12, None), ("bed", EventKind.BATTERY, 80, None),
    ("hall-motion", EventKind.AVAILABILITY, False, None), ("hall-motion", EventKind.AVAILABILITY, True, None),
]
KINDS = ["out_of_bed_too_long", "still_while_up", "not_back_after_exit", "help_requested", "not_in_bed_by"]
CARER_INPUTS: list[EngineInput] = [
    *(Acknowledge(kind, "Sam") for kind in KINDS), ResolveAlert("out_of_bed_too_long", "Sam", "tea"),
    DeliveryFailed("out_of_bed_too_long", "Sam (daughter)"), SetCompany(True, "Sam"), SetCompany(False, "Sam"),
    Tick(),
]

what = st.one_of(st.sampled_from(READINGS), st.sampled_from(CARER_INPUTS))
inputs_spec = st.lists(st.tuples(st.integers(0, 3 * 3600), st.integers(-120, 0), what), min_size=1,
                       max_size=40)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def to_inputs(spec: list[tuple[int, int, Any]]) -> list[tuple[EngineInput, datetime]]:
    """(input, now) pairs; a reading's own time may lag the moment it arrives (a late message)."""
    now, out = START, list[tuple[EngineInput, datetime]]()
    for gap, lag, item in spec:
        now += timedelta(seconds=gap)
        if isinstance(item, tuple):
            device, kind, value, action = item
            out.append((SensorEvent(HOME, device, kind, value, now + timedelta(seconds=lag), "", action), now))
        else:
            out.append((item, now))
    return out


def comparable(state: HomeState) -> HomeState:
    return replace(state, rules=None)


def run(state: HomeState, inputs: list[tuple[EngineInput, datetime]]) -> list[Any]:
    decided: list[Any] = []
    for inp, now in inputs:
        _, out = step(state, inp, now)
        decided += out
    return decided


@PROPERTY
@given(inputs_spec, st.sampled_from(PLANS), st.data())
def test_a_restored_snapshot_is_the_same_state_and_decides_the_same(
    spec: list[Any], plan: Any, data: st.DataObject
) -> None:
    inputs = to_inputs(spec)
    cut = data.draw(st.integers(0, len(inputs)), label="cut")
    never_stopped = new_state(plan)
    run(never_stopped, inputs[:cut])
    text = snapshot.dumps(never_stopped)
    restored = snapshot.loads(text, plan)
    assert comparable(restored) == comparable(never_stopped)
    assert snapshot.dumps(restored) == text
    until = (inputs[-1][1] if inputs else START) + timedelta(hours=30)  # let every timer run out
    rest = [*inputs[cut:], (Tick(), until)]
    assert run(restored, rest) == run(never_stopped, rest)
    assert comparable(restored) == comparable(never_stopped)


def test_every_state_field_is_kept_or_deliberately_left_out() -> None:
    assert {f.name for f in fields(HomeState)} == snapshot.covered_fields()


def test_a_fresh_state_round_trips() -> None:
    state = new_state(PLANS[0])
    assert comparable(snapshot.loads(snapshot.dumps(state), PLANS[0])) == comparable(state)


@pytest.mark.parametrize("text", ["not json", "[]", "{}", json.dumps({"clock": 5})])
def test_what_is_not_a_snapshot_is_refused(text: str) -> None:
    with pytest.raises(snapshot.SnapshotError):
        snapshot.loads(text, PLANS[0])


def test_the_layout_names_the_format() -> None:
    assert snapshot.LAYOUT.startswith(f"{snapshot.FORMAT}-")
