"""Scenario tables as written: the files, the example home each one changes, and the expected lifecycle lines.

An expected line reads `TIME STEP [KIND] [to|by] [CONTACT] [saying "..."]`, its
time counted on from the line before; a line without a kind belongs to the
alert raised last that is still open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import yaml

from alerts.decisions import AlertKind
from alerts.homeconfig import HomeConfig, parse_home_config
from tests.unit.scenario_clock import ScenarioError, resolve_time, show_time, split_when

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios"
EXAMPLE_HOME = ROOT / "simulator" / "data" / "julie.home.yaml"

STEPS = ("raised", "asked", "notified", "escalated", "acknowledged", "resolved", "summary")
KINDS = frozenset(str(kind) for kind in AlertKind)
SUMMARY_KIND = "morning_summary"  # a summary's line: step "summary", not about an alert

_SAYING = re.compile(r'\s+saying\s+"(?P<text>.*)"\s*$')


# --- scenarios as written --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """One scenario as found in a file, before it is read."""

    file: str
    title: str
    data: Mapping[str, Any]

    @property
    def test_id(self) -> str:
        return f"{self.file}/{self.title}"


def written_scenarios() -> list[Written]:
    """Every scenario in every file, in file order; each file holds a list of them."""
    found: list[Written] = []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(entries, list):
            raise ScenarioError(f"{path.name}: expected a list of scenarios")
        for number, entry in enumerate(entries, start=1):
            title = entry.get("title") if isinstance(entry, dict) else None
            if not isinstance(title, str) or not title.strip():
                raise ScenarioError(f"{path.name}: scenario {number} has no title")
            found.append(Written(path.stem, title.strip(), entry))
    return found


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides on top of the example home: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_home(overrides: object, source: str) -> HomeConfig:
    """The example home, with the scenario's routine/escalation/away changes merged on top."""
    base = yaml.safe_load(EXAMPLE_HOME.read_text(encoding="utf-8"))
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ScenarioError("home: expected changes to the example home, e.g. {routine: {...}}")
    devices = overrides.get("devices")
    if isinstance(devices, Mapping):  # {hall-motion: {heartbeat: 0m}}: changes to devices by id
        overrides = {**overrides, "devices": _devices_changed(base["devices"], devices)}
    return parse_home_config(_merge(base, overrides), source)


def _devices_changed(devices: list[dict[str, Any]], changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The example home's devices with some of their keys changed; a list replaces them all."""
    unknown = sorted(set(changes) - {d["id"] for d in devices})
    if unknown:
        raise ScenarioError(f"home.devices: the example home has no device {unknown[0]!r}")
    return [_merge(d, changes.get(d["id"]) or {}) for d in devices]


# --- expected lifecycle lines ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One lifecycle line, expected or actual, in the terms the comparison uses."""

    at: datetime
    step: str
    kind: str
    contact: str | None
    saying: str | None = None  # expected: a piece of the reason; actual: the whole reason
    alert: str = ""  # expected: the line its alert was raised on; actual: the alert id

    def key(self) -> tuple[str, str, datetime, str | None]:
        return (self.step, self.kind, self.at, self.contact)

    def show(self, zone: tzinfo) -> str:
        who = f" {self.contact}" if self.contact else ""
        return f"{show_time(self.at, zone)}  {self.step} {self.kind}{who}"


def parse_expected(lines: list[str], zone: tzinfo, start: datetime) -> list[Step]:
    """Expected lines, each time counted on from the line before (the first from the first input).

    A line without an alert kind belongs to the most recently raised alert that
    the lines above have not resolved yet; one with a kind, to the latest open
    alert of that kind.
    """
    steps: list[Step] = []
    open_alerts: list[tuple[str, str]] = []  # (kind, the expected line that raised it)
    ref = start
    for line in lines:
        wall, rest = split_when(_text(line, "expect"))
        ref = resolve_time(wall, zone, ref)
        step = _parse_step(line, rest, open_alerts, ref, len(steps) + 1)
        if step.step == "raised":
            open_alerts.append((step.kind, step.alert))
        elif step.step == "resolved":
            open_alerts.remove((step.kind, step.alert))
        steps.append(step)
    return steps


def _parse_step(
    line: str, rest: str, open_alerts: list[tuple[str, str]], at: datetime, number: int
) -> Step:
    """`STEP [KIND] [to|by] [CONTACT] [saying "..."]`, its alert found among the open ones."""
    saying = None
    said = _SAYING.search(" " + rest)
    if said:
        saying = said["text"]
        rest = (" " + rest)[: said.start()].strip()
    words = rest.split()
    if not words or words[0] not in STEPS:
        raise ScenarioError(f"{line!r}: after the time, expected one of {', '.join(STEPS)}")
    name, words = words[0], words[1:]
    kind = None
    if words and words[0] in KINDS:
        kind, words = words[0], words[1:]
    if words and words[0] in ("to", "by"):
        words = words[1:]
    contact = " ".join(words) or None
    if name == "raised" and (kind is None or contact):
        raise ScenarioError(f"{line!r}: write 'raised <kind>', e.g. raised out_of_bed_too_long")
    if name in ("notified", "escalated", "acknowledged", "summary") and not contact:
        raise ScenarioError(f"{line!r}: {name} needs the contact's name")
    if name == "summary":
        return Step(at, name, SUMMARY_KIND, contact, saying, f"expected line {number}")
    if name == "raised":
        assert kind is not None
        return Step(at, name, kind, contact, saying, f"expected line {number}")
    candidates = [a for a in open_alerts if kind is None or a[0] == kind]
    if not candidates:
        raise ScenarioError(f"{line!r}: no such alert is open above this line")
    kind, alert = candidates[-1]
    return Step(at, name, kind, contact, saying, alert)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(
            f"{where}: {value!r} is not text; write times in quotes (YAML reads 22:40 as a "
            'number), e.g. "02:00 bed empty"'
        )
    return value
