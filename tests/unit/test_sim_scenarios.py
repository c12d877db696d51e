"""Every built-in scenario against the engine: the replayed alerts equal the ground truth.

The ground truth is written by the scenario generator from the contract alone;
here it meets `gateway.replay.run_replay`, for several seeds and every persona.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.decisions import Decision
from alerts.homeconfig import HomeConfig, parse_home_config
from device_profiles import get_profile
from gateway.cli import main
from gateway.replay import lifecycle_line, run_replay
from simulator.groundtruth import Expected
from simulator.personas import builtin_personas, get_persona
from simulator.scenarios import Generated, ScenarioError, all_scenarios, generate

SCENARIOS = sorted(all_scenarios())
SEEDS = (0, 1, 2)
CARE = ("ask-first", "company")  # scenarios of routine.check_with_me and routine.company
Key = tuple[str, str, str, str, str | None]


def home_for(name: str, persona: str) -> HomeConfig:
    """The persona's home; for a care scenario, with a bedside light and both care keys if it lacks them.

    Arthur's bundled home has them, so every scenario runs there with ask-first on.
    """
    chosen = get_persona(persona)
    data = yaml.safe_load(chosen.home_file.read_text())
    routine = data["routine"]
    if name.startswith(CARE) and "check_with_me" not in routine:
        data["devices"].append({"id": "bedside-light", "profile": "z2m-light", "kind": "light"})
        routine["check_with_me"] = {"within": "2m", "device": "bedside-light"}
        buttons = [d["profile"] for d in data["devices"] if d["kind"] == "button"]
        if any("double" in get_profile(profile).button_actions for profile in buttons):
            routine["company"] = {"action": "double", "for": "2h"}
    return parse_home_config(data, source=str(chosen.home_file))


def replay(made: Generated, persona: str = "julie", name: str = "") -> list[dict[str, Any]]:
    home = home_for(name, persona)
    decisions: list[Decision] = []
    report = run_replay([home], made.lines, decisions.append)
    assert report.problems == []
    return [lifecycle_line(d) for d in decisions]


def key(line: dict[str, Any]) -> Key:
    return (line["step"], line["home"], line["kind"], line["at"], line["contact"])


def expected_keys(made: Generated) -> list[Key]:
    return [key(e.line()) for e in made.expected]


def test_there_are_at_least_twelve_scenarios() -> None:
    assert len(SCENARIOS) >= 12


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_julie_scenario_matches_ground_truth(name: str, seed: int) -> None:
    made = generate(name, home_for(name, "julie"), get_persona("julie"), seed)
    got = replay(made, "julie", name)
    assert [key(line) for line in got] == expected_keys(made)
    _same_alert_grouping(got, made.expected)


@pytest.mark.parametrize("persona", ["arthur", "maya"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_other_personas_scenario_matches_ground_truth(name: str, persona: str) -> None:
    home = home_for(name, persona)
    if name.startswith("company") and home.routine.company is None:  # Maya's button has one action
        with pytest.raises(ScenarioError, match=r"routine\.company"):
            generate(name, home, get_persona(persona), seed=7)
        return
    made = generate(name, home, get_persona(persona), seed=7)
    assert [key(line) for line in replay(made, persona, name)] == expected_keys(made)


def _same_alert_grouping(got: list[dict[str, Any]], expected: list[Expected]) -> None:
    """Lines of one expected alert belong to one engine alert, and the other way round."""
    pairs = {(line["alert"], e.alert) for line, e in zip(got, expected, strict=True)}
    assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})


def test_fall_says_out_of_bed_joins_the_stillness_alert() -> None:
    made = generate("fall", get_persona("julie").home(), get_persona("julie"), seed=1)
    raised = [e for e in made.expected if e.step == "raised"]
    assert [e.kind for e in raised] == ["still_while_up"]
    joined = [e for e in made.expected if "out_of_bed_too_long" in e.reasons]
    assert joined, "the out-of-bed condition must join the open alert"
    got = {line["at"]: line for line in replay(made)}
    for e in joined:
        assert "out of bed" in got[e.line()["at"]]["reason"]


def test_no_scenario_line_is_a_bad_line() -> None:
    for name in SCENARIOS:
        made = generate(name, home_for(name, "julie"), get_persona("julie"), seed=3)
        assert all(json.loads(line)["ts"] for line in made.lines)


def test_same_seed_same_output_other_seed_other_output() -> None:
    julie = get_persona("julie")
    first = generate("wandering-back", julie.home(), julie, seed=5)
    again = generate("wandering-back", julie.home(), julie, seed=5)
    other = generate("wandering-back", julie.home(), julie, seed=6)
    assert first.lines == again.lines and first.expected == again.expected
    assert first.lines != other.lines


def test_dst_scenarios_are_on_the_change_nights() -> None:
    julie = get_persona("julie")
    spring = generate("dst-spring", julie.home(), julie)
    autumn = generate("dst-autumn", julie.home(), julie)
    assert spring.expected[0].at.date().isoformat() == "2026-03-29"
    assert autumn.expected[0].at.date().isoformat() == "2026-10-25"
    assert all(e.reasons == ("still_while_up",) for e in spring.expected + autumn.expected)


def test_cli_scenario_then_replay_gives_the_ground_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    night = tmp_path / "night.jsonl"
    assert main(["sim", "scenario", "fall", "--home", "julie", "--out", str(night)]) == 0
    capsys.readouterr()
    config = str(builtin_personas()["julie"].home_file)
    assert main(["replay", "--config", config, "--events", str(night)]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    text = (tmp_path / "night.expected.jsonl").read_text().splitlines()
    expected = [json.loads(line) for line in text]
    fields = ("step", "alert", "home", "kind", "at", "contact")
    assert got and [{f: g[f] for f in fields} for g in got] == [
        {f: e[f] for f in fields} for e in expected
    ]


def test_cli_lists_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "scenario", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(SCENARIOS)


def test_cli_accepts_a_home_yaml_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(builtin_personas()["arthur"].home_file)
    out = tmp_path / "a.jsonl"
    assert main(["sim", "scenario", "help-button", "--home", config, "--out", str(out),
                 "--seed", "4", "--date", "2026-02-03"]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["topic"].startswith("zigbee2mqtt/arthur-3-mill-lane/")
    assert first["ts"].startswith("2026-02-03")


def test_cli_refuses_a_scenario_the_home_cannot_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "no-exit.yaml"
    text = builtin_personas()["julie"].home_file.read_text()
    text = text.replace(", exit: true", "").replace("  exit_door: {alert_if_not_back_within: 15m}\n", "")
    home.write_text(text)
    assert main(["sim", "scenario", "wandering", "--home", str(home)]) == 2
    assert "exit" in capsys.readouterr().err
