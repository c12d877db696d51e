"""Personas: their ordinary nights raise nothing with their own homes, for any seed."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from alerts.decisions import Decision
from gateway.cli import main
from gateway.replay import lifecycle_line, run_replay
from simulator.night import Timeline, normal_night, render
from simulator.persona_cmd import persona_lines
from simulator.personas import (
    PersonaError,
    Spread,
    builtin_personas,
    check_against_home,
    get_persona,
    load_persona_file,
    resolve_home,
)

PERSONAS = sorted(builtin_personas())
NIGHTS = (date(2026, 1, 11), date(2026, 3, 28), date(2026, 6, 20), date(2026, 10, 24))


def test_at_least_three_personas_one_of_them_julie() -> None:
    assert len(PERSONAS) >= 3 and "julie" in PERSONAS
    julie = get_persona("julie")
    assert [d["id"] for d in julie.devices] == ["bed", "front-door", "hall-motion", "ok-button"]


@pytest.mark.parametrize("name", PERSONAS)
def test_persona_matches_its_home_and_cannot_cross_a_threshold(name: str) -> None:
    persona = get_persona(name)
    assert check_against_home(persona, persona.home()) == []


@pytest.mark.parametrize("day", NIGHTS, ids=str)
@pytest.mark.parametrize("name", PERSONAS)
def test_ordinary_nights_raise_nothing(name: str, day: date) -> None:
    persona = get_persona(name)
    home = persona.home()
    for seed in range(4):
        timeline = Timeline(home)
        normal_night(timeline, persona, day, random.Random(seed))
        decisions: list[Decision] = []
        report = run_replay([home], render(timeline), decisions.append)
        assert report.problems == []
        assert [lifecycle_line(d) for d in decisions] == []


@pytest.mark.parametrize("name", PERSONAS)
def test_a_fortnight_raises_nothing_and_is_deterministic(name: str) -> None:
    lines = persona_lines(name, 14, seed=3)
    assert lines == persona_lines(name, 14, seed=3)
    decisions: list[Decision] = []
    run_replay([get_persona(name).home()], lines, decisions.append)
    assert decisions == []


def test_the_check_finds_a_habit_that_would_alert() -> None:
    julie = get_persona("julie")
    long_trip = replace(julie.trips[0], duration=Spread(timedelta(minutes=50), timedelta(0)))
    slow = replace(julie, trips=(long_trip,), motion_every=Spread(timedelta(minutes=19), timedelta(0)))
    problems = check_against_home(slow, julie.home())
    assert any("trips.loo" in p for p in problems)
    assert any("motion_every" in p for p in problems)


def test_spread_draws_stay_within_two_spreads() -> None:
    spread = Spread(timedelta(minutes=10), timedelta(minutes=3))
    rng = random.Random(1)
    draws = [spread.draw(rng) for _ in range(500)]
    assert min(draws) >= timedelta(minutes=4) and max(draws) <= timedelta(minutes=16)


def test_a_bad_persona_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\nhome_config: h.yaml\ndevices: []\nbedtime: {mean: '25:00'}\n")
    with pytest.raises(PersonaError, match=r"bedtime\.mean"):
        load_persona_file(bad)
    bad.write_text("name: x\nhome_config: h.yaml\ndevices: []\nbedtime: '22:00'\nsnoring: yes\n")
    with pytest.raises(PersonaError, match="snoring: unknown key"):
        load_persona_file(bad)


def test_resolve_home_by_name_and_by_path() -> None:
    home, persona = resolve_home("maya")
    assert home.home == "maya-flat-7" and persona.name == "maya"
    home, persona = resolve_home(str(get_persona("arthur").home_file))
    assert persona.name == "arthur"


def test_cli_persona_week(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "week.jsonl"
    assert main(["sim", "persona", "arthur", "--nights", "7", "--out", str(out)]) == 0
    assert (tmp_path / "week.expected.jsonl").read_text() == ""
    assert len(out.read_text().splitlines()) > 7 * 100
    assert "events" in capsys.readouterr().err
    assert main(["sim", "persona", "julie", "--check"]) == 0
