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


@pytest.mark.parametrize(("field", "value", "message"), BAD_CONFIGS, ids=[b[0] + "=" + repr(b[1]) for b in BAD_CONFIGS])
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
