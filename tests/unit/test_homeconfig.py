"""Home configuration: the contract shape, and errors that name the field."""

from __future__ import annotations

import copy
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.durations import describe_duration, format_duration, parse_clock, parse_duration
from alerts.homeconfig import ConfigError, load_home_config, parse_home_config
from gateway.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def test_the_contract_example_is_valid() -> None:
    cfg = load_home_config(EXAMPLE)
    assert cfg.home == "julie-12-oak-road"
    assert cfg.routine.out_of_bed is not None
    assert cfg.routine.out_of_bed.alert_after == timedelta(minutes=45)
    assert cfg.routine.night.from_ == time(22, 0)
    assert cfg.routine.device_offline_after == timedelta(minutes=10)
    assert [c.name for c in cfg.contacts] == ["Sam (daughter)", "Night responder"]
    assert cfg.device("front-door") is not None and cfg.device("front-door").exit  # type: ignore[union-attr]


def test_defaults_fill_what_the_contract_calls_optional() -> None:
    data = example()
    del data["escalation"], data["away"], data["routine"]["device_offline_after"]
    cfg = parse_home_config(data)
    assert cfg.escalation.ack_within == timedelta(minutes=10)
    assert cfg.escalation.repeat_every == timedelta(minutes=5)
    assert cfg.routine.device_offline_after == timedelta(minutes=10)


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value


DELETE = object()

# (field to change, new value, the message the coordinator sees)
BAD_CONFIGS: list[tuple[str, Any, str]] = [
    ("routine.out_of_bed.alert_after", "45", "routine.out_of_bed.alert_after: expected a duration like 45m"),
    ("routine.out_of_bed.alert_after", "forty", "routine.out_of_bed.alert_after: expected a duration"),
    ("routine.out_of_bed.alert_after", "0m", "routine.out_of_bed.alert_after: must be longer than 0m"),
    ("routine.exit_door.alert_if_not_back_within", "1x", "routine.exit_door.alert_if_not_back_within: expected a duration"),
    ("routine.night.from", "25:00", "routine.night.from: expected a local time like 22:00"),
    ("routine.night.to", "7.30", "routine.night.to: expected a local time like 22:00"),
    ("routine.night.to", "22:00", "routine.night: the night must not start and end at the same time"),
    ("routine.in_bed_by", "1am", "routine.in_bed_by: expected a local time"),
    ("timezone", "Europe/Lundun", "timezone: unknown IANA time zone 'Europe/Lundun'"),
    ("devices.0.profile", "acme-bed", "devices[0].profile: unknown profile 'acme-bed'"),
    ("devices.0.kind", "fridge", "devices[0].kind: Input should be"),
    ("devices.2.exit", True, "devices[2].exit: only a door can be an exit"),
    ("devices.1.id", "bed", "devices: device id 'bed' is used twice"),
    ("devices.1.id", "front/door", "devices[1].id: String should match pattern"),
    ("routine.out_of_bed.alert_afer", "45m", "routine.out_of_bed.alert_afer: unknown key"),
    ("routine.snooze", "5m", "routine.snooze: unknown key"),
    ("person.name", DELETE, "person.name: required"),
    ("contacts.0.notify", [], "contacts[0].notify: List should have at least 1 item"),
    ("escalation.repeat_every", "0m", "escalation.repeat_every: must be longer than 0m"),
    ("away.0.to", "2026-12-20T10:00", "away[0].to: must be after away[0].from"),
    ("away.0.from", "Christmas", "away[0].from: expected a local date and time"),
    ("devices.1.exit", False, "routine.exit_door: needs a door device with exit: true"),
    ("home", "julie/12", "home: String should match pattern"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_CONFIGS, ids=[b[0] + "=" + ("(deleted)" if b[1] is DELETE else repr(b[1])) for b in BAD_CONFIGS])
def test_bad_configs_name_the_field(field: str, value: Any, message: str) -> None:
    data = copy.deepcopy(example())
    _set(data, field, value)
    with pytest.raises(ConfigError) as caught:
        parse_home_config(data, "julie.yaml")
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_a_rule_without_its_sensor_is_refused() -> None:
    data = example()
    data["devices"] = [d for d in data["devices"] if d["kind"] != "bed"]
    with pytest.raises(ConfigError) as caught:
        parse_home_config(data)
    assert "routine.out_of_bed: needs a bed device" in caught.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("45m", 2700), ("1h30m", 5400), ("0m", 0), ("2h", 7200), ("1h0m30s", 3630)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["45", "", "m", "1.5h", "-5m", "45 m", "5min"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration like 45m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "words"),
    [(timedelta(minutes=45), "45 minutes"), (timedelta(minutes=1), "1 minute"),
     (timedelta(seconds=90), "90 seconds"), (timedelta(hours=1, minutes=30), "1 hour 30 minutes"),
     (timedelta(hours=2), "2 hours")],
)
def test_durations_in_plain_words(delta: timedelta, words: str) -> None:
    assert describe_duration(delta) == words


def test_clock_times() -> None:
    assert parse_clock("07:30") == time(7, 30)
    assert parse_clock("7:30") == time(7, 30)
    with pytest.raises(ValueError):
        parse_clock("24:00")


def test_check_config_explains_and_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "Night: 22:00 to 07:30" in out
    assert "out of bed for 45 minutes" in out
    assert "tecmon-julie" not in out and "ntfy://…" in out


def test_check_config_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = example()
    data["routine"]["out_of_bed"]["alert_after"] = "45"
    data["timezone"] = "Mars/Olympus"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["check-config", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "NOT OK" in out
    assert "routine.out_of_bed.alert_after: expected a duration like 45m" in out
    assert "timezone: unknown IANA time zone" in out


# --- somebody must be called ---------------------------------------------------------

NOBODY = "contacts: nobody would be called: add a contact (or service_contacts)"


def _nobody() -> dict[str, Any]:
    data = example()
    data["contacts"], data["service_contacts"] = [], []
    return data


def test_a_home_that_would_call_nobody_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_home_config(_nobody())
    assert caught.value.problems == [NOBODY]
    data = _nobody()
    del data["contacts"], data["service_contacts"]
    with pytest.raises(ConfigError, match="nobody would be called"):
        parse_home_config(data)


def test_either_list_is_enough() -> None:
    only_service = {**_nobody(), "service_contacts": example()["service_contacts"]}
    assert parse_home_config(only_service).contacts == []
    only_family = {**_nobody(), "contacts": example()["contacts"]}
    assert parse_home_config(only_family).service_contacts == []


def test_service_settings_with_service_contacts_let_such_a_home_in() -> None:
    """The live service with settings-level service contacts still loads it."""
    cfg = parse_home_config(_nobody(), service_fallback=True)
    assert cfg.contacts == [] and cfg.service_contacts == []


def test_check_config_refuses_it_unless_the_settings_supply_service_contacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home.yaml"
    home.write_text(yaml.safe_dump(_nobody()))
    assert main(["check-config", str(home)]) == 2
    assert NOBODY in capsys.readouterr().out
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"homes": [str(tmp_path)]}))
    assert main(["check-config", "--settings", str(bare), str(home)]) == 2
    capsys.readouterr()
    desk = tmp_path / "tecmon.yaml"
    desk.write_text(yaml.safe_dump({"service_contacts": example()["service_contacts"]}))
    assert main(["check-config", "--settings", str(desk), str(home)]) == 0
    assert "OK" in capsys.readouterr().out


def test_the_home_watcher_follows_the_settings(tmp_path: Path) -> None:
    from gateway.homes import HomeWatcher

    (tmp_path / "home.yaml").write_text(yaml.safe_dump(_nobody()))
    seen: list[str] = []
    _, refused = HomeWatcher([tmp_path]).scan(lambda cfg: seen.append(cfg.home))
    assert seen == [] and NOBODY in refused[0].problems
    _, refused = HomeWatcher([tmp_path], service_fallback=True).scan(lambda cfg: seen.append(cfg.home))
    assert seen == ["julie-12-oak-road"] and refused == []


def test_with_only_service_contacts_person_safety_alerts_go_to_them() -> None:
    """Never to nobody: the service desk is called about Julie when she names no one."""
    from datetime import UTC, datetime

    from alerts.decisions import SendAlert
    from alerts.engine import new_state, step
    from alerts.events import EventKind, SensorEvent
    from alerts.plan import plan_from_config

    cfg = parse_home_config({**_nobody(), "service_contacts": example()["service_contacts"]})
    at = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    press = SensorEvent(cfg.home, "ok-button", EventKind.BUTTON, True, at)
    _, out = step(new_state(plan_from_config(cfg)), press, at)
    assert [d.contact.name for d in out if isinstance(d, SendAlert)] == ["Tecmon service desk"]


def test_a_contact_may_ask_for_a_morning_summary_at_a_local_time() -> None:
    from alerts.plan import plan_from_config

    data = example()
    data["contacts"][0]["morning_summary"] = "08:30"
    cfg = parse_home_config(data)
    assert cfg.contacts[0].morning_summary == time(8, 30) and cfg.contacts[1].morning_summary is None
    assert [c.name for c in plan_from_config(cfg).summaries] == ["Sam (daughter)"]
    assert cfg.model_dump(mode="json")["contacts"][0]["morning_summary"] == "08:30"
    data["contacts"][0]["morning_summary"] = "8.30am"
    with pytest.raises(ConfigError, match=r"contacts\[0\]\.morning_summary"):
        parse_home_config(data)
