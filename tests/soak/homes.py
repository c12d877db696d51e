"""The soak's homes: a persona's home under a new id, one scenario night each, and its ground truth.

The expected alerts come from the simulator's ground truth (`simulator.groundtruth`),
never from the engine. The engine (through `tecmon replay`) only screens out
nights that are fragile under time compression: the run publishes at hundreds
of simulated seconds per real second, so a message arriving a few hundred
real milliseconds late is minutes late in simulated time. A night whose
alerts would change if its messages were that late (an input minutes from a
deadline) is redrawn with another seed, so every night kept has one right
answer however busy the machine is.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.homeconfig import HomeConfig, parse_home_config
from gateway.replay import lifecycle_line, run_replay
from simulator.groundtruth import Expected
from simulator.personas import resolve_home
from simulator.scenarios import ScenarioError, generate

PERSONAS = ("julie", "arthur", "maya")
SCENARIOS = (
    "normal", "fall", "wandering", "wandering-back", "exit-back-in-time", "restless", "not-to-bed",
    "sensor-offline", "low-battery", "im-ok", "duplicates", "out-of-order",
)
"""Every scenario of the shared night (2026-01-11) whose inputs are all MQTT: the ones where a
carer acknowledges through the app, and the daylight-saving nights (other dates), are covered
by their own tests."""
REPEAT_EVERY = "30m"  # fewer repeat calls than the personas' own, so the sink measures alerts, not load
TRIES = 12
RAISE_SLACK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Night:
    config: HomeConfig
    scenario: str
    seed: int
    lines: list[str]
    expected: list[Expected]  # ground truth up to `end`
    end: datetime  # the night's end or the run's cut-off: alerts after it are not compared
    redrawn: int  # draws refused as fragile before this one
    robust: bool = True  # False: no robust draw found; reported, not held to ground truth

    @property
    def raised(self) -> list[Expected]:
        return [e for e in self.expected if e.step == "raised"]

    @property
    def called(self) -> set[str]:
        """The alerts someone is called about before `end` (a low battery at night waits for the day)."""
        return {e.alert for e in self.expected if e.step in ("notified", "escalated")}


def soak_home(index: int, persona: str, sink: str) -> HomeConfig:
    """The persona's home as home `soak-NNNN`, every contact's phone at the sink."""
    base, _ = resolve_home(persona)
    data: dict[str, Any] = base.model_dump(mode="json", by_alias=True)
    name = f"soak-{index:04d}"
    data["home"] = name
    for n, contact in enumerate(data["contacts"]):
        contact["notify"] = [f"{sink}/{name}/c{n}"]
    for n, contact in enumerate(data.get("service_contacts") or []):
        contact["notify"] = [f"{sink}/{name}/s{n}"]
    data["escalation"] = {**data.get("escalation", {}), "repeat_every": REPEAT_EVERY}
    data["away"] = []
    return parse_home_config(data, f"soak home {name}")


def raised_by_replay(config: HomeConfig, lines: Sequence[str], until: datetime) -> list[tuple[str, datetime]]:
    out: list[tuple[str, datetime]] = []

    def emit(decision: Any) -> None:
        line = lifecycle_line(decision)
        if line["step"] == "raised":
            out.append((line["kind"], datetime.fromisoformat(line["at"])))

    run_replay([config], lines, emit, until=until)
    return out


def delayed(lines: Sequence[str], rng: random.Random, most: timedelta) -> list[str]:
    """The same messages, each up to `most` late, still in order (one connection keeps order)."""
    out, last = [], None
    for text in lines:
        obj = json.loads(text)
        at = datetime.fromisoformat(obj["ts"]) + most * rng.random()
        at = at if last is None or at >= last else last
        last = at
        out.append(json.dumps({**obj, "ts": at.isoformat()}))
    return out


def same_alerts(a: list[tuple[str, datetime]], b: list[tuple[str, datetime]], slack: timedelta) -> bool:
    return len(a) == len(b) and all(
        ka == kb and abs(ta - tb) <= slack for (ka, ta), (kb, tb) in zip(a, b, strict=True)
    )


HOLD = timedelta(minutes=5)


def held_until(lines: Sequence[str], start: datetime) -> list[str]:
    """The lines as a run that begins at `start` (after the evening) sends them.

    Of the evening only each device's latest reading of each kind is kept
    (its last bed state, last battery level, ...), sent in the minutes just
    before `start`, one a second in the original order, as a bridge that was
    just restarted reports its devices. The rest of the night is unchanged.
    """
    before = [json.loads(t) for t in lines if datetime.fromisoformat(json.loads(t)["ts"]) < start]
    latest: dict[tuple[str, tuple[str, ...]], int] = {}
    for n, obj in enumerate(before):
        payload = obj["payload"]
        fields = tuple(sorted(payload)) if isinstance(payload, dict) else (str(payload),)
        latest[(obj["topic"], fields)] = n
    out = []
    for k, n in enumerate(sorted(latest.values())):
        obj = before[n]
        at = (start - HOLD + timedelta(seconds=k)).isoformat()
        if isinstance(obj["payload"], dict) and "last_seen" in obj["payload"]:
            obj["payload"] = {**obj["payload"], "last_seen": at}
        out.append(json.dumps({**obj, "ts": at}))
    return out + [t for t in lines if datetime.fromisoformat(json.loads(t)["ts"]) >= start]


def robust(config: HomeConfig, lines: list[str], expected: list[Expected], cut: datetime,
           lag: timedelta, rng: random.Random) -> bool:
    """Ground truth and replay agree, and still agree with every message up to `lag` late.

    `lines` are the ones the run sends (see `held_until`).
    """
    truth = [(e.kind, e.at) for e in expected if e.step == "raised"]
    if not same_alerts(raised_by_replay(config, lines, cut), truth, RAISE_SLACK):
        return False
    for most in (lag, lag / 3):
        late = raised_by_replay(config, delayed(lines, rng, most), cut + most)
        if not same_alerts(late, truth, most + RAISE_SLACK):
            return False
    return True


def night_for(index: int, sink: str, cut: datetime, lag: timedelta, seed: int,
              start: datetime | None = None) -> Night:
    """Home `index`'s night: a persona and scenario by turns, redrawn until robust."""
    persona = PERSONAS[index % len(PERSONAS)]
    scenario = SCENARIOS[(index // len(PERSONAS)) % len(SCENARIOS)]
    config = soak_home(index, persona, sink)
    _, habits = resolve_home(persona)
    rng = random.Random(f"soak:{seed}:{index}")
    night: Night | None = None
    for attempt in range(2 * TRIES):
        name = scenario if attempt < TRIES else "normal"  # then an ordinary night instead
        try:
            made = generate(name, config, habits, seed=seed * 1000 + index * 37 + attempt)
        except ScenarioError:
            continue
        end = min(made.end, cut)
        lines = [text for text in made.lines if _ts(text) <= end]
        lines = held_until(lines, start) if start is not None and start > _ts(lines[0]) else lines
        expected = [e for e in made.expected if e.at <= end]
        night = Night(config, name, seed * 1000 + index * 37 + attempt, lines, expected, end, attempt)
        if robust(config, lines, expected, end, lag, rng):
            return night
    assert night is not None, f"no night could be made for {config.home}"
    return Night(night.config, night.scenario, night.seed, night.lines, night.expected, night.end,
                 night.redrawn, robust=False)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(json.loads(text)["ts"])


def origin_of(nights: Sequence[Night]) -> datetime:
    return min(_ts(n.lines[0]) for n in nights if n.lines)
