"""Table-driven scenarios: a night in a home, told in wall-clock times, checked against replay.

Each scenario in `tests/scenarios/*.yaml` says what the sensors reported and
what the carers should see, in the home's own local time ("02:00 bed empty",
"02:45 notified Sam (daughter)"), so a care coordinator can read and check it
without knowing JSON or UTC. This runner turns the inputs into `tecmon replay`
input lines (payloads encoded by the device profiles, exactly as the devices
would send them), runs the replay in-process, and compares every lifecycle
line exactly: step, alert kind, instant and contact. The tables are read by
`scenario_tables.py` and their inputs written as replay lines by
`scenario_feed.py`. How to read and write a scenario: `tests/scenarios/README.md`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import pytest

from alerts.decisions import Decision
from alerts.homeconfig import HomeConfig
from gateway.replay import lifecycle_line, run_replay
from tests.unit.scenario_clock import ScenarioError, _start_of, resolve_time, split_when
from tests.unit.scenario_feed import Feed
from tests.unit.scenario_tables import (
    KINDS,
    STEPS,
    SUMMARY_KIND,
    Step,
    Written,
    _text,
    build_home,
    parse_expected,
    written_scenarios,
)

CONTRACT_KEYS = frozenset({"step", "alert", "home", "kind", "at", "contact", "reason"})
SCENARIO_KEYS = frozenset({"title", "why", "date", "home", "inputs", "expect", "until", "rejected"})
REQUIRED_KEYS = ("title", "why", "date", "inputs", "expect")


# --- one scenario, read and run ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    written: Written
    cfg: HomeConfig
    lines: list[str]
    expected: list[Step]
    until: datetime | None
    rejected: int


def read_scenario(written: Written) -> Scenario:
    """Check the scenario's keys, build its home, and turn it into replay lines and expectations."""
    data = written.data
    unknown = sorted(set(data) - SCENARIO_KEYS)
    if unknown:
        raise ScenarioError(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(SCENARIO_KEYS))}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ScenarioError(f"{missing[0]}: required")
    cfg = build_home(data.get("home"), written.test_id)
    inputs, expect = data["inputs"], data["expect"] or []
    if not isinstance(inputs, list) or not inputs or not isinstance(expect, list):
        raise ScenarioError("inputs and expect: expected lists of lines (expect: [] for no alert)")
    day = data["date"] if isinstance(data["date"], date) else date.fromisoformat(str(data["date"]))
    midnight = _start_of(day, cfg.zone)
    first, _ = split_when(_text(inputs[0], "inputs"))
    start = resolve_time(first, cfg.zone, midnight)
    expected = parse_expected(expect, cfg.zone, start)
    feed = Feed(cfg, expected, midnight)
    for line in inputs:
        feed.add(_text(line, "inputs"))
    until = None
    if data.get("until") is not None:
        until_wall, leftover = split_when(_text(data["until"], "until"))
        if leftover:
            raise ScenarioError('until: just a time, e.g. "08:00"')
        until = resolve_time(until_wall, cfg.zone, feed.cursor)
    rejected = data.get("rejected", 0)
    if not isinstance(rejected, int):
        raise ScenarioError("rejected: the number of input lines replay should refuse")
    return Scenario(written, cfg, feed.lines, expected, until, rejected)


def run(scenario: Scenario) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Replay the scenario in-process; the contract's output lines, and any refused input lines."""
    decisions: list[Decision] = []
    report = run_replay([scenario.cfg], scenario.lines, decisions.append, until=scenario.until)
    return [lifecycle_line(d) for d in decisions], report.problems


def actual_step(line: Mapping[str, Any]) -> Step:
    """An output line in the comparison's terms; its whole reason rides along for reports."""
    at = datetime.fromisoformat(line["at"])
    return Step(at, line["step"], line["kind"], line["contact"], line["reason"], line["alert"])


def contract_problems(lines: list[dict[str, Any]], home: str) -> Iterator[str]:
    """Every output line has exactly the contract's keys, a known step and kind, and UTC time."""
    for number, line in enumerate(lines, start=1):
        if set(line) != CONTRACT_KEYS:
            yield f"line {number}: keys {sorted(line)} are not {sorted(CONTRACT_KEYS)}"
            continue
        at = line["at"]
        parsed = datetime.fromisoformat(at) if isinstance(at, str) else None
        if parsed is None or parsed.utcoffset() != timedelta(0) or not at.endswith("+00:00"):
            yield f"line {number}: 'at' {at!r} is not UTC ISO-8601"
        kinds = {SUMMARY_KIND} if line["step"] == "summary" else KINDS
        if line["step"] not in STEPS or line["kind"] not in kinds or line["home"] != home:
            yield f"line {number}: step/kind/home not as the contract says: {line}"
        if not isinstance(line["alert"], str) or not line["alert"]:
            yield f"line {number}: no alert id"
        if line["step"] in ("notified", "escalated") and not line["contact"]:
            yield f"line {number}: {line['step']} without a contact"


def differences(expected: list[Step], actual: list[Step], zone: tzinfo) -> list[str]:
    """Where the timelines part, as plain sentences (empty when they agree)."""
    if [s.key() for s in expected] != [s.key() for s in actual]:
        for number, (want, got) in enumerate(zip(expected, actual, strict=False), start=1):
            if want.key() != got.key():
                return [f"line {number}: expected {want.show(zone)!r}, got {got.show(zone)!r}"]
        shorter = min(len(expected), len(actual))
        if len(actual) > shorter:
            return [f"line {shorter + 1}: unexpected {actual[shorter].show(zone)!r}"]
        return [f"line {shorter + 1}: missing {expected[shorter].show(zone)!r}"]
    found = [
        f"line {number}: the reason does not say {want.saying!r}"
        for number, (want, got) in enumerate(zip(expected, actual, strict=True), start=1)
        if want.saying is not None and want.saying not in (got.saying or "")
    ]
    return found + same_alerts(expected, actual)


def same_alerts(expected: list[Step], actual: list[Step]) -> list[str]:
    """Lines of one expected alert share one alert id, and different alerts have different ids."""
    ids: dict[str, str] = {}
    owners: dict[str, str] = {}
    for number, (want, got) in enumerate(zip(expected, actual, strict=True), start=1):
        if ids.setdefault(want.alert, got.alert) != got.alert:
            return [f"line {number}: should be about the alert raised on {want.alert}, "
                    "but it is about another one"]
        if owners.setdefault(got.alert, want.alert) != want.alert:
            return [f"line {number}: a new alert was expected, but this continues the one "
                    f"raised on {owners[got.alert]}"]
    return []


def report(scenario: Scenario, expected: list[Step], actual: list[Step], problems: list[str]) -> str:
    """Expected and actual side by side as readable lines, with the actual reasons."""
    zone = scenario.cfg.zone
    out = [f"Scenario {scenario.written.test_id}", *problems, "", "expected:"]
    out += [f"  {s.show(zone)}" + (f'  saying "{s.saying}"' if s.saying else "") for s in expected]
    out += ["  (no alert at all)"] if not expected else []
    out += ["", "actual:"]
    for step in actual:
        out += [f"  {step.show(zone)}", f"      {step.saying}"]
    out += ["  (no alert at all)"] if not actual else []
    out += ["", "replay input:", *(f"  {line}" for line in scenario.lines)]
    return "\n".join(out)


ALL = written_scenarios()


def test_scenarios_are_present_and_titled_once() -> None:
    """A test id names one scenario, so a failure report points at exactly one story."""
    titles = [w.test_id for w in ALL]
    assert len(ALL) >= 30, f"only {len(ALL)} scenarios"
    assert len(titles) == len(set(titles)), "two scenarios share a file and title"


@pytest.mark.parametrize("written", ALL, ids=[w.test_id for w in ALL])
def test_scenario(written: Written) -> None:
    """The replay's lifecycle lines are exactly the scenario's expected ones."""
    scenario = read_scenario(written)
    lines, refused = run(scenario)
    problems = list(contract_problems(lines, scenario.cfg.home))
    if len(refused) != scenario.rejected:
        problems.append(f"replay refused {len(refused)} input lines, expected {scenario.rejected}: "
                        f"{refused}")
    actual = [actual_step(line) for line in lines if set(line) == CONTRACT_KEYS]
    problems += differences(scenario.expected, actual, scenario.cfg.zone)
    assert not problems, report(scenario, scenario.expected, actual, problems)
