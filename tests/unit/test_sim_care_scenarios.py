"""Ask first and company mode in the simulator: the ground truth says what the contract says.

Arthur's bundled home asks him first (`check_with_me: {within: 3m}`) and has
company mode (`{action: double, for: 2h}`). The scenarios' lines against the
engine are checked with every other scenario in `test_sim_scenarios`; here
the ground truth itself is read, so a wrong oracle cannot agree with a wrong
engine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from simulator import groundtruth as gt
from simulator.personas import get_persona
from simulator.scenarios import Generated, generate

ARTHUR = get_persona("arthur")
HOME = ARTHUR.home()
T = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def made(name: str, seed: int) -> Generated:
    return generate(name, HOME, ARTHUR, seed)


def steps(lines: list[gt.Expected]) -> list[tuple[str, str | None]]:
    return [(e.step, e.contact) for e in lines]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_press_in_time_calls_nobody_and_closes_by_arthur(seed: int) -> None:
    night = made("ask-first-ok", seed)
    assert steps(night.expected) == [("raised", None), ("asked", None), ("resolved", "Arthur")]
    raised, _, resolved = night.expected
    assert raised.at < resolved.at < raised.at + 3 * M, "pressed inside the 3 minutes"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_answer_calls_from_raised_plus_within_in_order(seed: int) -> None:
    night = made("ask-first-no-answer", seed)
    raised = night.expected[0]
    called = [(e.contact, e.at - raised.at) for e in night.expected if e.step in ("notified", "escalated")]
    assert called[:3] == [("Priya (niece)", 3 * M), ("Tom (neighbour)", 11 * M), ("Night responder", 19 * M)]
    assert night.expected[-1].step == "resolved" and night.expected[-1].contact is None


@pytest.mark.parametrize(("name", "company"), [("company-button", "double"), ("company-carer", "input")])
def test_company_keeps_out_of_bed_quiet_but_not_a_call_for_help(name: str, company: str) -> None:
    night = made(name, 5)
    assert {e.kind for e in night.expected} == {"help_requested"}
    assert steps(night.expected) == [("raised", None), ("notified", "Priya (niece)"),
                                     ("acknowledged", "Priya (niece)"), ("resolved", "Priya (niece)")]
    lines = [json.loads(line) for line in night.lines]
    if company == "double":
        said = [line["ts"] for line in lines if _payload(line).get("action") == "double"]
    else:
        said = [line["ts"] for line in lines if "company" in line]
        assert [line["company"] for line in lines if "company" in line] == [True, False]
    assert len(said) == 2, "company started when the visitor came and ended when they left"
    bed = [(line["ts"], _payload(line)["occupancy"]) for line in lines
           if line.get("topic", "").endswith("/bed") and "occupancy" in _payload(line) and said[0] < line["ts"] < said[1]]
    left, back = (datetime.fromisoformat(ts) for ts, occupied in bed if occupied is False), \
        (datetime.fromisoformat(ts) for ts, occupied in bed if occupied is True)
    assert next(back) - next(left) > 40 * M, "up longer than the 40 minutes that would have called Priya"


def _payload(line: dict[str, Any]) -> dict[str, Any]:
    payload = line.get("payload")
    return payload if isinstance(payload, dict) else {}


def test_company_ending_while_up_counts_the_out_of_bed_time_from_its_end() -> None:
    night = made("company-ends-up", 2)
    lines = [json.loads(line) for line in night.lines]
    presses = [line["ts"] for line in lines if _payload(line).get("action") == "double"]
    ended = datetime.fromisoformat(presses[-1])
    raised = night.expected[0]
    assert (raised.step, raised.kind, raised.at) == ("raised", "out_of_bed_too_long", ended + 40 * M)
    assert [e.step for e in night.expected[:3]] == ["raised", "asked", "notified"]


def test_ground_truth_asks_first_and_an_exit_that_joins_calls_at_once() -> None:
    conds = [gt.Condition("out_of_bed_too_long", T), gt.Condition("not_back_after_exit", T + M)]
    lines = gt.safety_lines(HOME, conds, [], T + 2 * M)
    assert [(e.step, int((e.at - T) / M), e.contact) for e in lines] == [
        ("raised", 0, None), ("asked", 0, None), ("notified", 1, "Priya (niece)")]


def test_ground_truth_drops_what_starts_in_company_but_never_help() -> None:
    conds = [gt.Condition("out_of_bed_too_long", T + 10 * M), gt.Condition("not_in_bed_by", T + 2 * 60 * M)]
    actions = [gt.Action(T + 30 * M, "press", "Arthur")]
    lines = gt.safety_lines(HOME, conds, actions, T + 2 * 60 * M + 5 * M, company=[(T, T + 2 * 60 * M)])
    assert [(e.step, e.kind) for e in lines][:2] == [("raised", "help_requested"), ("notified", "help_requested")]
    assert "out_of_bed_too_long" not in {e.kind for e in lines}
    assert any(e.kind == "help_requested" and "not_in_bed_by" in e.reasons for e in lines), \
        "company is over at exactly start + for: the bedtime check at that instant joins"


@pytest.mark.parametrize("name", ["ask-first-ok", "ask-first-no-answer", "company-button", "company-carer",
                                  "company-ends-up"])
def test_tecmon_replay_of_the_written_night_gives_its_ground_truth(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    night = tmp_path / "night.jsonl"
    assert main(["sim", "scenario", name, "--home", "arthur", "--seed", "4", "--out", str(night)]) == 0
    capsys.readouterr()
    assert main(["replay", "--config", str(ARTHUR.home_file), "--events", str(night)]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [json.loads(line) for line in (tmp_path / "night.expected.jsonl").read_text().splitlines()]
    fields = ("step", "alert", "home", "kind", "at", "contact")
    assert got and [{f: g[f] for f in fields} for g in got] == [{f: e[f] for f in fields} for e in expected]
