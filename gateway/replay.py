"""`tecmon replay`: the engine at simulated time over recorded MQTT messages.

Input is JSON lines in arrival order: `{"ts", "topic", "payload"}` for a
message, `{"ts", "ack": <kind or id>, "by"}` for an acknowledgement and
`{"ts", "resolve": <kind or id>, "by", "outcome"}` for a carer closing an
alert and `{"ts", "company": true|false, "by"}` for company mode starting or
ending. Output is one JSON line per alert lifecycle step, in time order. A line
whose `ts` is earlier than one before it is a late delivery: it is applied at
the latest time seen so far, with its own time as the event time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alerts.decisions import Decision, SendAlert, SendSummary
from alerts.engine import new_state, next_deadline, step
from alerts.events import Acknowledge, EngineInput, ResolveAlert, SetCompany, Tick
from alerts.homeconfig import HomeConfig
from alerts.plan import plan_from_config
from alerts.state import HomeState
from gateway.decoding import DeadLetter, MessageDecoder
from gateway.scheduler import DeadlineHeap

Emit = Callable[[Decision], None]


class BadLine(ValueError):
    """An input line that cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class InputLine:
    ts: datetime
    topic: str | None = None
    payload: Any = None
    command: Acknowledge | ResolveAlert | SetCompany | None = None
    home: str | None = None


def parse_timestamp(value: object, name: str = "ts") -> datetime:
    if not isinstance(value, str):
        raise BadLine(f"{name}: expected an ISO-8601 time with offset, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadLine(f"{name}: not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise BadLine(f"{name}: needs a time zone offset, e.g. {value}+00:00")
    return moment.astimezone(UTC)


def _text(obj: dict[str, Any], key: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str) or not value:
        raise BadLine(f"{key}: required (a non-empty string)")
    return value


def _company(obj: dict[str, Any]) -> SetCompany:
    """`{"ts", "company": true|false, "by"}`: someone is with the person, or has left."""
    on = obj["company"]
    if not isinstance(on, bool):
        raise BadLine("company: expected true (someone is with her) or false")
    return SetCompany(on, _text(obj, "by"))


def parse_line(text: str) -> InputLine:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise BadLine("expected a JSON object")
    ts = parse_timestamp(obj.get("ts"))
    home = obj.get("home") if isinstance(obj.get("home"), str) else None
    if "ack" in obj:
        return InputLine(ts, command=Acknowledge(_text(obj, "ack"), _text(obj, "by")), home=home)
    if "resolve" in obj:
        outcome = obj.get("outcome", "")
        if not isinstance(outcome, str):
            raise BadLine("outcome: expected text such as 'false alarm: making tea'")
        command = ResolveAlert(_text(obj, "resolve"), _text(obj, "by"), outcome)
        return InputLine(ts, command=command, home=home)
    if "company" in obj:
        return InputLine(ts, command=_company(obj), home=home)
    if "payload" not in obj:
        raise BadLine("payload: required")
    return InputLine(ts, topic=_text(obj, "topic"), payload=obj["payload"])


def lifecycle_line(decision: Decision) -> dict[str, Any]:
    """The contract's output line for one lifecycle step (or a morning summary, step `summary`)."""
    if isinstance(decision, SendSummary):
        return {
            "step": decision.step, "alert": decision.id, "home": decision.home,
            "kind": "morning_summary", "at": decision.at.astimezone(UTC).isoformat(),
            "contact": decision.contact.name, "reason": decision.text,
        }
    contact: str | None = None
    if isinstance(decision, SendAlert):
        contact = decision.contact.name
    elif decision.step in ("acknowledged", "resolved"):
        contact = getattr(decision, "by", None)
    return {
        "step": decision.step,
        "alert": decision.alert.id,
        "home": decision.alert.home,
        "kind": str(decision.alert.kind),
        "at": decision.at.astimezone(UTC).isoformat(),
        "contact": contact,
        "reason": decision.reason,
    }


@dataclass
class Replayer:
    """Many homes, one simulated clock, one deadline heap."""

    homes: Sequence[HomeConfig]
    emit: Emit
    prefix: str = "zigbee2mqtt"
    clock: datetime | None = None
    states: dict[str, HomeState] = field(default_factory=dict)
    heap: DeadlineHeap = field(default_factory=DeadlineHeap)

    def __post_init__(self) -> None:
        self.decoder = MessageDecoder(self.homes, self.prefix)
        self.states = {h.home: new_state(plan_from_config(h)) for h in self.homes}

    def advance(self, until: datetime) -> None:
        """Fire every home's deadlines up to `until`, in time order across homes."""
        if self.clock is None:
            self._start(until)
        if self.heap.maybe_due(until):
            for deadline, home in self.heap.pop_due(until):
                self._step(home, Tick(), deadline)
        assert self.clock is not None
        self.clock = max(self.clock, until)

    def feed(self, line: InputLine) -> None:
        """Apply one input line; raises `DeadLetter` for a message no home can use."""
        now = line.ts if self.clock is None else max(self.clock, line.ts)
        if line.command is not None:
            self.advance(now)
            targets = [line.home] if line.home else list(self.states)
            for home in targets:
                if home in self.states:
                    self._step(home, line.command, now)
            return
        assert line.topic is not None
        events = self.decoder.decode(line.topic, line.payload, line.ts)
        self.advance(now)
        for event in events:
            self._step(event.home, event, now)

    def _start(self, at: datetime) -> None:
        self.clock = at
        for home in self.states:
            self._step(home, Tick(), at)

    def _step(self, home: str, inp: EngineInput, now: datetime) -> None:
        state, decisions = step(self.states[home], inp, now)
        for decision in decisions:
            self.emit(decision)
        self.heap.schedule(home, next_deadline(state))


@dataclass
class ReplayReport:
    lines_read: int = 0
    events_applied: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def run_replay(
    homes: Sequence[HomeConfig],
    lines: Iterable[str],
    emit: Emit,
    until: datetime | None = None,
    prefix: str = "zigbee2mqtt",
) -> ReplayReport:
    """Replay input lines; bad ones are reported with their 1-based number and skipped."""
    replayer = Replayer(homes, emit, prefix)
    report = ReplayReport()
    last: datetime | None = None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        report.lines_read += 1
        try:
            line = parse_line(text)
            if until is not None and line.ts > until:
                continue
            replayer.feed(line)
            report.events_applied += 1
            last = line.ts if last is None else max(last, line.ts)
        except (BadLine, DeadLetter) as exc:
            report.problems.append((number, str(exc)))
    end = until or last
    if end is not None:
        replayer.advance(end)
    return report
