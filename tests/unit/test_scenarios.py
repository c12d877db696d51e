"""Table-driven scenarios: a night in a home, told in wall-clock times, checked against replay.

Each scenario in `tests/scenarios/*.yaml` says what the sensors reported and
what the carers should see, in the home's own local time ("02:00 bed empty",
"02:45 notified Sam (daughter)"), so a care coordinator can read and check it
without knowing JSON or UTC. This runner turns the inputs into `tecmon replay`
input lines (payloads encoded by the device profiles, exactly as the devices
would send them), runs the replay in-process, and compares every lifecycle
line exactly: step, alert kind, instant and contact. How to read and write a
scenario: `tests/scenarios/README.md`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.decisions import AlertKind, Decision
from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import HomeConfig, parse_home_config
from device_profiles import get_profile
from gateway.replay import lifecycle_line, run_replay
from tests.unit.scenario_clock import (
    ScenarioError,
    WallTime,
    _iso,
    _start_of,
    resolve_time,
    show_time,
    split_when,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios"
EXAMPLE_HOME = ROOT / "simulator" / "data" / "julie.home.yaml"
PREFIX = "zigbee2mqtt"

CONTRACT_KEYS = frozenset({"step", "alert", "home", "kind", "at", "contact", "reason"})
STEPS = ("raised", "asked", "notified", "escalated", "acknowledged", "resolved", "summary")
KINDS = frozenset(str(kind) for kind in AlertKind)
SUMMARY_KIND = "morning_summary"  # a summary's line: step "summary", not about an alert
SAFETY_KINDS = frozenset(str(kind) for kind in AlertKind if kind.person_safety)
SCENARIO_KEYS = frozenset({"title", "why", "date", "home", "inputs", "expect", "until", "rejected"})
REQUIRED_KEYS = ("title", "why", "date", "inputs", "expect")

# What people write after a device name, per kind of device: the canonical value.
WORDS: Mapping[EventKind, Mapping[str, bool]] = {
    EventKind.BED: {"occupied": True, "empty": False},
    EventKind.DOOR: {"open": True, "closed": False},
    EventKind.MOTION: {"motion": True, "no motion": False},
    EventKind.BUTTON: {"pressed": True},
}
AVAILABILITY_WORDS: Mapping[str, bool] = {"online": True, "offline": False}

_CLAUSE = re.compile(
    r",\s*(?:seen at\s+(?P<seen>(?:\d{4}-\d{2}-\d{2}\s+)?\S+)|(?P<late>delivered late))\s*$"
)

_SAYING = re.compile(r'\s+saying\s+"(?P<text>.*)"\s*$')
_BATTERY = re.compile(r"^battery\s+(?P<percent>\d{1,3})\s*%$")


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


# --- inputs -> replay lines --------------------------------------------------------------


@dataclass
class Feed:
    """Turns written inputs into replay JSON lines, keeping the arrival clock."""

    cfg: HomeConfig
    expected: list[Step]
    cursor: datetime
    lines: list[str] = field(default_factory=list)
    first: datetime | None = None

    def add(self, text: str) -> None:
        wall, rest = split_when(text)
        rest, seen, late = _clauses(rest)
        ts = resolve_time(wall, self.cfg.zone, self.cursor, forward=not late)
        if self.first is not None and ts < self.cursor and not late:
            raise ScenarioError(f"{text!r}: goes back in time; add ', delivered late' if it is late")
        self.first = self.first or ts
        self.cursor = max(self.cursor, ts)
        seen_at = resolve_time(seen, self.cfg.zone, ts, forward=False) if seen else None
        self.lines.append(json.dumps(self._line(text, rest, ts, seen_at), ensure_ascii=False))

    def _line(self, text: str, rest: str, ts: datetime, seen_at: datetime | None) -> dict[str, Any]:
        head, _, tail = rest.partition(" ")
        if head in ("ack", "resolve", "company") and seen_at is not None:
            raise ScenarioError(f"{text!r}: 'seen at' is for sensor messages")
        if head == "company":
            on, _, who = tail.partition(" by ")
            if on.strip() not in ("on", "off") or not who.strip():
                raise ScenarioError(f"{text!r}: write 'company on by NAME' or 'company off by NAME'")
            return {"ts": _iso(ts), "company": on.strip() == "on", "by": who.strip()}
        if head == "ack":
            kind, by, _ = self._command(text, tail, ts, needs_outcome=False)
            return {"ts": _iso(ts), "ack": kind, "by": by}
        if head == "resolve":
            kind, by, outcome = self._command(text, tail, ts, needs_outcome=True)
            return {"ts": _iso(ts), "resolve": kind, "by": by, "outcome": outcome}
        topic, payload = self._message(text, head, tail.strip(), seen_at or ts, seen_at is not None)
        return {"ts": _iso(ts), "topic": topic, "payload": payload}

    def _command(self, text: str, tail: str, ts: datetime, needs_outcome: bool) -> tuple[str, str, str]:
        """`ack [kind] [by] NAME` or `resolve [kind] by NAME: OUTCOME`."""
        words = tail.split()
        kind = words.pop(0) if words and words[0] in KINDS else self._open_safety_kind(text, ts)
        if words and words[0] == "by":
            words.pop(0)
        who, outcome = " ".join(words), ""
        if needs_outcome:
            who, colon, outcome = who.partition(": ")
            if not colon or not outcome.strip():
                raise ScenarioError(f"{text!r}: write 'resolve by NAME: what happened'")
        if not who.strip():
            raise ScenarioError(f"{text!r}: say who, e.g. 'ack Sam (daughter)'")
        return kind, who.strip(), outcome.strip()

    def _open_safety_kind(self, text: str, ts: datetime) -> str:
        """The kind of the person-safety alert the expectations say was raised last by `ts`."""
        raised = [s.kind for s in self.expected if s.step == "raised" and s.at <= ts]
        raised = [kind for kind in raised if kind in SAFETY_KINDS]
        if not raised:
            raise ScenarioError(f"{text!r}: no alert is expected to be open; name its kind")
        return raised[-1]

    def _message(
        self, text: str, device_id: str, what: str, at: datetime, seen: bool
    ) -> tuple[str, object]:
        """Topic and payload: literal JSON as written, or encoded by the device's own profile."""
        base, slash, suffix = device_id.partition("/")
        if slash and suffix != "availability":
            raise ScenarioError(f"{text!r}: only '<device>/availability' may follow a device name")
        topic = f"{PREFIX}/{self.cfg.home}/{device_id}"
        if what[:1] in ("{", '"', "["):
            if seen:
                raise ScenarioError(f"{text!r}: put last_seen inside a literal payload")
            try:
                return topic, json.loads(what)
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{text!r}: the payload is not JSON ({exc.msg})") from None
        device = self.cfg.device(base)
        if device is None or slash:
            raise ScenarioError(f"{text!r}: {base!r} is not a device of this home (or use JSON)")
        profile = get_profile(device.profile)
        action = what.strip().lower() if device.kind is EventKind.BUTTON else ""
        if action in profile.button_actions:  # "ok-button double": the button's own word
            event = SensorEvent(self.cfg.home, base, EventKind.BUTTON, True, at, action=action)
            return topic, profile.bind(device.kind, device.options).encode(event)
        kind, value = _reading(text, device.kind, what)
        if kind is EventKind.AVAILABILITY:
            codec = get_profile("zigbee2mqtt-availability").bind(EventKind.AVAILABILITY)
            topic += "/availability"
        else:
            codec = get_profile(device.profile).bind(device.kind, device.options)
        event = SensorEvent(self.cfg.home, base, kind, value, at)
        return topic, codec.encode(event)


def _clauses(rest: str) -> tuple[str, WallTime | None, bool]:
    """Strip the trailing ', seen at 02:05' and ', delivered late' clauses."""
    seen: WallTime | None = None
    late = False
    while match := _CLAUSE.search(rest):
        if match["late"]:
            late = True
        else:
            seen, leftover = split_when(match["seen"])
            if leftover:
                raise ScenarioError(f"{rest!r}: 'seen at' takes a time such as 02:05")
        rest = rest[: match.start()].rstrip()
    return rest, seen, late


def _reading(text: str, kind: EventKind, what: str) -> tuple[EventKind, bool | int]:
    """`occupied`, `open`, `motion`, `pressed`, `offline`, `battery 15%` -> canonical reading."""
    words = " ".join(what.lower().split())
    if words in AVAILABILITY_WORDS:
        return EventKind.AVAILABILITY, AVAILABILITY_WORDS[words]
    battery = _BATTERY.match(words)
    if battery:
        return EventKind.BATTERY, int(battery["percent"])
    allowed = WORDS[kind]
    if words not in allowed:
        said = ", ".join([*allowed, *AVAILABILITY_WORDS, "battery N%"])
        raise ScenarioError(f"{text!r}: a {kind} device can be: {said}")
    return kind, allowed[words]


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
