"""A scenario's inputs as `tecmon replay` input lines, payloads encoded by each device's own profile.

Besides sensor readings ("02:00 bed empty", "02:10 hall-motion offline",
"03:00 bed battery 15%") an input can be a carer's ack or resolve, or company
arriving and leaving; a reading may add ", seen at 02:05" (the device's own
time) or ", delivered late" (it arrives after lines with later times).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.decisions import AlertKind
from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import HomeConfig
from device_profiles import get_profile
from tests.unit.scenario_clock import ScenarioError, WallTime, _iso, resolve_time, split_when
from tests.unit.scenario_tables import KINDS, Step

PREFIX = "zigbee2mqtt"
SAFETY_KINDS = frozenset(str(kind) for kind in AlertKind if kind.person_safety)

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

_BATTERY = re.compile(r"^battery\s+(?P<percent>\d{1,3})\s*%$")


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
