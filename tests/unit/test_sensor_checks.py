"""Stuck or silent sensors: the configuration keys, the plan, and the engine's notices.

The scenario tables (tests/scenarios/stuck_or_silent.yaml) tell the main
stories at and just under each threshold; these tests cover what a story
cannot show well: several beds, stale and repeated readings, a changed
routine, who is told, and the configuration's own checks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.decisions import AlertKind, AlertRaised, AlertResolved, Decision, SendAlert
from alerts.engine import new_state, step, with_plan
from alerts.events import EventKind, SensorEvent, Tick
from alerts.homeconfig import ConfigError, parse_home_config
from alerts.messages import alert_message
from alerts.plan import MOVEMENT_EXPECTED_EVERY, HomePlan, plan_from_config
from alerts.state import HomeState

HOME_FILE = Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml"
HOME = "julie-12-oak-road"
T0 = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)  # a Sunday evening; London is on UTC in January
H = timedelta(hours=1)


def config(**routine: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HOME_FILE.read_text(encoding="utf-8"))
    quiet = {"up_by": None, "in_bed_by": None, "out_of_bed": None, "still_while_up": None}
    data["routine"].update({**quiet, **routine})  # only the notices under test
    for device in data["devices"]:
        device["heartbeat"] = "0m"  # this file's stories leave the hourly reports out
    return data


def plan_of(data: dict[str, Any]) -> HomePlan:
    return plan_from_config(parse_home_config(data))


class Home:
    """One home's engine state, fed readings in time order; collects every decision."""

    def __init__(self, plan: HomePlan) -> None:
        self.state: HomeState = new_state(plan)
        self.out: list[Decision] = []

    def read(self, device: str, kind: EventKind, value: bool | int, at: datetime,
             delivered: datetime | None = None) -> None:
        event = SensorEvent(HOME, device, kind, value, at, "test")
        self.state, decisions = step(self.state, event, delivered or at)
        self.out += decisions

    def tick(self, at: datetime) -> None:
        self.state, decisions = step(self.state, Tick(), at)
        self.out += decisions

    def raised(self, *kinds: AlertKind) -> list[tuple[str, str | None, datetime]]:
        return [(d.alert.kind, d.alert.device, d.at) for d in self.out
                if isinstance(d, AlertRaised) and (not kinds or d.alert.kind in kinds)]

    def resolved(self, *kinds: AlertKind) -> list[tuple[str, str | None, datetime]]:
        return [(d.alert.kind, d.alert.device, d.at) for d in self.out
                if isinstance(d, AlertResolved) and (not kinds or d.alert.kind in kinds)]


BED, MOTION, DOOR = EventKind.BED, EventKind.MOTION, EventKind.DOOR
STUCK, SILENT = AlertKind.BED_OCCUPIED_TOO_LONG, AlertKind.MOTION_SILENT


# --- configuration and plan -------------------------------------------------------------------


def test_the_default_limit_is_16_hours_and_a_routine_can_change_it() -> None:
    assert plan_of(config()).bed_occupied_max == 16 * H
    assert plan_of(config(bed_occupied_max="12h")).bed_occupied_max == 12 * H


@pytest.mark.parametrize("value", ["30m", "0m"])
def test_a_limit_under_an_hour_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_home_config(config(bed_occupied_max=value))
    assert any(p.startswith("routine.bed_occupied_max: must be at least 1h") for p in caught.value.problems)


def test_heartbeats_come_from_the_profile_unless_the_device_says_otherwise() -> None:
    data = yaml.safe_load(HOME_FILE.read_text(encoding="utf-8"))
    data["devices"][1]["heartbeat"] = "4h"  # front-door
    data["devices"][3]["heartbeat"] = "0m"  # ok-button: sends none
    devices = plan_of(data).devices
    assert devices["hall-motion"].heartbeat == 2 * H  # the Aqara model's default
    assert devices["front-door"].heartbeat == 4 * H
    assert devices["ok-button"].heartbeat is None
    assert devices["bed"].heartbeat is None  # the strap's profile has none
    assert set(plan_of(data).heartbeat_devices) == {"hall-motion", "front-door"}


def test_movement_is_expected_of_motion_sensors_only_and_can_be_changed_or_switched_off() -> None:
    data = config()
    assert plan_of(data).devices["hall-motion"].expect_movement == MOVEMENT_EXPECTED_EVERY == 24 * H
    assert plan_of(data).devices["bed"].expect_movement is None
    data["devices"][2]["expect_movement_every"] = "36h"
    assert plan_of(data).devices["hall-motion"].expect_movement == 36 * H
    data["devices"][2]["expect_movement_every"] = "0m"
    assert plan_of(data).devices["hall-motion"].expect_movement is None


def test_expect_movement_every_on_a_door_is_refused() -> None:
    data = config()
    data["devices"][1]["expect_movement_every"] = "24h"
    with pytest.raises(ConfigError, match=r"devices\[1\]\.expect_movement_every: only for a motion sensor"):
        parse_home_config(data)


# --- bed occupied too long ---------------------------------------------------------------------


def test_repeats_of_occupied_do_not_restart_the_spell_and_a_stale_empty_does_not_end_it() -> None:
    home = Home(plan_of(config()))
    home.read("bed", BED, True, T0)
    home.read("bed", BED, True, T0 + 5 * H)  # Zigbee2MQTT repeating the state
    home.read("bed", BED, False, T0 - H, delivered=T0 + 6 * H)  # an old "empty", delivered late
    home.tick(T0 + 16 * H - timedelta(seconds=1))
    assert home.raised() == []
    home.tick(T0 + 16 * H)
    assert home.raised() == [(STUCK, "bed", T0 + 16 * H)]


def test_one_notice_per_spell_and_a_new_spell_can_raise_again() -> None:
    home = Home(plan_of(config()))
    home.read("bed", BED, True, T0)
    home.tick(T0 + 20 * H)
    home.read("bed", BED, False, T0 + 21 * H)
    home.read("bed", BED, True, T0 + 22 * H)
    home.tick(T0 + 38 * H)
    assert home.raised(STUCK) == [(STUCK, "bed", T0 + 16 * H), (STUCK, "bed", T0 + 38 * H)]
    assert home.resolved(STUCK) == [(STUCK, "bed", T0 + 21 * H)]


def test_each_bed_sensor_has_its_own_spell() -> None:
    data = config()
    data["devices"].append({"id": "radar", "profile": "tuya-ts0601-presence", "kind": "bed", "room": "bedroom"})
    home = Home(plan_of(data))
    home.read("bed", BED, True, T0)
    home.read("radar", BED, True, T0 + H)
    home.read("radar", BED, False, T0 + 2 * H)  # the radar sees her get up; the strap does not
    home.tick(T0 + 20 * H)
    assert home.raised(STUCK) == [(STUCK, "bed", T0 + 16 * H)]


def test_the_notice_goes_to_the_service_desk_with_both_possibilities() -> None:
    home = Home(plan_of(config()))
    home.read("bed", BED, True, T0)
    home.tick(T0 + 16 * H)
    calls = [d for d in home.out if isinstance(d, SendAlert)]
    assert [c.contact.name for c in calls] == ["Tecmon service desk"]
    assert calls[0].reason.startswith(
        "The bed has said occupied for 16 hours: a stuck sensor, or Julie unwell in bed."
    )
    assert "since Sun 22:00" in calls[0].reason
    message = alert_message(calls[0], home.state.plan)
    assert message.title == "Julie's home: bed says occupied for too long"
    assert message.urgency == "low"


def test_a_changed_routine_retimes_the_notice() -> None:
    home = Home(plan_of(config()))
    home.read("bed", BED, True, T0)
    home.state = with_plan(home.state, plan_of(config(bed_occupied_max="10h")))
    home.tick(T0 + 11 * H)
    assert home.raised() == [(STUCK, "bed", T0 + 10 * H)]


def test_nothing_during_an_away_period() -> None:
    data = config()
    data["away"] = [{"from": "2026-01-12T10:00", "to": "2026-01-13T10:00", "reason": "at Sam's"}]
    home = Home(plan_of(data))
    home.read("bed", BED, True, T0)
    home.tick(T0 + 30 * H)
    assert home.raised() == []


# --- a motion sensor silent while the person is up ---------------------------------------------


def test_no_motion_and_battery_reports_are_not_detections() -> None:
    home = Home(plan_of(config()))
    home.read("hall-motion", MOTION, True, T0)
    home.read("bed", BED, True, T0 + H)
    home.read("bed", BED, False, T0 + 9 * H)
    home.read("hall-motion", MOTION, False, T0 + 10 * H)
    home.read("hall-motion", EventKind.BATTERY, 90, T0 + 11 * H)
    home.tick(T0 + 25 * H)
    assert home.raised() == [(SILENT, "hall-motion", T0 + 24 * H)]


def test_a_first_bed_reading_is_not_a_sign_of_being_up() -> None:
    """Start-up: the bed's first word says where she is, not that she moved."""
    home = Home(plan_of(config()))
    home.read("hall-motion", MOTION, True, T0)
    home.read("bed", BED, False, T0 + H)
    home.tick(T0 + 30 * H)
    assert home.raised() == []


def test_another_motion_sensor_is_a_sign_and_each_sensor_is_judged_alone() -> None:
    data = config()
    data["devices"].append({"id": "kitchen-motion", "profile": "aqara-rtcgq11lm", "kind": "motion",
                            "room": "kitchen", "heartbeat": "0m"})
    home = Home(plan_of(data))
    home.read("hall-motion", MOTION, True, T0)
    for hours in (2, 10, 20, 30):
        home.read("kitchen-motion", MOTION, True, T0 + hours * H)
    assert home.raised() == [(SILENT, "hall-motion", T0 + 24 * H)]
    home.read("hall-motion", MOTION, True, T0 + 31 * H)
    assert home.resolved() == [(SILENT, "hall-motion", T0 + 31 * H)]


def test_a_sensor_that_never_detected_is_timed_from_the_start_of_watching() -> None:
    home = Home(plan_of(config()))
    home.read("bed", BED, True, T0)
    home.read("bed", BED, False, T0 + 9 * H)
    home.tick(T0 + 25 * H)
    raised = [d for d in home.out if isinstance(d, AlertRaised)]
    assert [(d.alert.kind, d.at) for d in raised] == [(SILENT, T0 + 24 * H)]
    assert "nothing since Sun 22:00" in raised[0].reason
    assert "the bed (bedroom) at 07:00" in raised[0].reason


def test_a_sensor_not_expected_to_see_movement_is_never_a_notice() -> None:
    data = config()
    data["devices"][2]["expect_movement_every"] = "0m"
    home = Home(plan_of(data))
    home.read("hall-motion", MOTION, True, T0)
    home.read("bed", BED, True, T0 + H)
    home.read("bed", BED, False, T0 + 9 * H)
    home.tick(T0 + 100 * H)
    assert home.raised() == []


def test_an_exit_door_is_not_a_sign_of_someone_inside() -> None:
    home = Home(plan_of(config(exit_door=None)))
    home.read("hall-motion", MOTION, True, T0)
    home.read("front-door", DOOR, True, T0 + 10 * H)
    home.read("front-door", DOOR, False, T0 + 10 * H + timedelta(minutes=1))
    home.tick(T0 + 30 * H)
    assert home.raised() == []


def test_a_removed_sensor_is_forgotten() -> None:
    home = Home(plan_of(config()))
    home.read("hall-motion", MOTION, True, T0)
    home.read("bed", BED, True, T0 + H)
    home.read("bed", BED, False, T0 + 9 * H)
    data = config()
    data["devices"] = [d for d in data["devices"] if d["id"] != "hall-motion"]
    home.state = with_plan(home.state, plan_of(data))
    home.tick(T0 + 30 * H)
    assert home.raised() == []
