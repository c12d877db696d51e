"""What-if: a home's stored sensor events replayed under the current and a proposed routine.

A coordinator changing a routine with the person wants to see, before saving,
what the change would have done on the nights already recorded. The answer
must be exactly what `tecmon replay` gives over the same events, so this is
the replay machinery itself (`gateway.replay.Replayer`: one simulated clock,
one deadline heap), fed stored canonical events instead of MQTT lines and
never touching the live state. Carer inputs are not replayed: they answered
the alerts that really happened, not the ones a different routine would raise.
Company inputs are: someone was with the person whatever the routine (the
live service keeps the routine's company button action as such an input, not
as a button event), so a night with company on previews as it was, quiet.

Equivalence, stated once: `preview(cfg, rows, until)` gives the `raised`
lines of `tecmon replay --config cfg --events <rows as replay lines> --until
until`, where each row becomes `{"ts": received_at, "topic":
"zigbee2mqtt/<home>/<device>[/availability]", "payload": <the device
profile's encoding of the event>}` (see `replay_lines`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.decisions import AlertRaised, Decision
from alerts.events import EventKind, SensorEvent, SetCompany
from alerts.homeconfig import ConfigError, Escalation, HomeConfig, parse_home_config
from device_profiles import DeviceCodec, get_profile
from gateway.history.nights import Night, night_index
from gateway.replay import Replayer, lifecycle_line
from gateway.store.base import EventRow, InputRow


class EventReplayer(Replayer):
    """`Replayer` over canonical events: `feed_events` is `feed` after the decoding."""

    def feed_events(self, events: Sequence[SensorEvent], received_at: datetime) -> None:
        now = received_at if self.clock is None else max(self.clock, received_at)
        self.advance(now)
        for event in events:
            if event.home in self.states:
                self._step(event.home, event, now)

    def feed_company(self, home: str, inp: SetCompany, at: datetime) -> None:
        """A stored company input, applied at the instant it was recorded."""
        now = at if self.clock is None else max(self.clock, at)
        self.advance(now)
        if home in self.states:
            self._step(home, inp, now)


@dataclass
class _Raised:
    lines: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, decision: Decision) -> None:
        if isinstance(decision, AlertRaised):
            self.lines.append(lifecycle_line(decision))


Stored = Sequence[tuple[SensorEvent | SetCompany, datetime]]
"""Stored events and company inputs as the engine takes them, each with the instant it was applied."""


def company_inputs(inputs: Iterable[InputRow], home: str) -> list[InputRow]:
    """The home's company inputs among stored inputs (acknowledgements and the like are not replayed)."""
    return [row for row in inputs if row.kind == "company" and row.home == home]


def engine_inputs(rows: Iterable[EventRow], company: Sequence[InputRow] = ()) -> Stored:
    """Converted once, replayed under both routines; company inputs after the events of their instant."""
    merged: list[tuple[SensorEvent | SetCompany, datetime]] = [(r.to_event(), r.received_at) for r in rows]
    if company:
        merged += [(SetCompany(row.outcome == "on", row.by), row.at) for row in company]
        merged.sort(key=lambda pair: pair[1])  # stable: the events of an instant stay before its inputs
    return merged


UNHURRIED = Escalation(ack_within=timedelta(days=365), repeat_every=timedelta(days=365))
"""What is raised does not depend on when contacts are called again: the engine raises, joins and
clears alerts by the person's conditions alone. A replay that only wants `raised` lines can leave
out the repeated calls, which on a strict routine were most of its work."""


def raised_lines(cfg: HomeConfig, events: Stored, until: datetime) -> list[dict[str, Any]]:
    """The `raised` replay lines of one home over stored events, timers fired up to `until`."""
    raised = _Raised()
    replayer = EventReplayer([cfg.model_copy(update={"escalation": UNHURRIED})], raised)
    for item, received_at in events:
        if isinstance(item, SetCompany):
            replayer.feed_company(cfg.home, item, received_at)
        else:
            replayer.feed_events((item,), received_at)
    replayer.advance(until)
    return raised.lines


def by_night(nights: Sequence[Night], lines: Iterable[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Raised lines as the contract's `{kind, at, reason}`, grouped per night (others dropped)."""
    out: list[list[dict[str, Any]]] = [[] for _ in nights]
    for line in lines:
        index = night_index(nights, datetime.fromisoformat(line["at"]))
        if index is not None:
            out[index].append({"kind": line["kind"], "at": line["at"], "reason": line["reason"]})
    return out


class CurrentLines:
    """The current routine's answer over the same stored events does not change while a
    coordinator tries one proposal after another: the last few are kept, so each preview
    replays only the proposal. A new event, a new routine or a later `until` is a new key."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()  # previews run on worker threads

    def get(self, cfg: HomeConfig, rows: Sequence[EventRow], until: datetime,
            compute: Callable[[], list[dict[str, Any]]],
            company: Sequence[InputRow] = ()) -> list[dict[str, Any]]:
        key = (cfg.model_dump_json(), until, len(rows), rows[0] if rows else None, rows[-1] if rows else None,
               tuple(company))
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        lines = compute()
        with self._lock:
            self._kept[key] = lines
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return lines


CURRENT = CurrentLines()


def preview(current: HomeConfig, proposed: HomeConfig, nights: Sequence[Night],
            rows: Sequence[EventRow], until: datetime, cache: CurrentLines = CURRENT,
            company: Sequence[InputRow] = ()) -> dict[str, Any]:
    """The contract's answer: per night what each routine would have raised, and the totals.

    `company`: the home's stored company inputs over the same span (see `company_inputs`).
    """
    events = engine_inputs(rows, company)
    now = by_night(nights, cache.get(current, rows, until, lambda: raised_lines(current, events, until),
                                     company))
    then = by_night(nights, raised_lines(proposed, events, until))
    return {"nights": [{"date": n.day.isoformat(), "current": a, "proposed": b}
                       for n, a, b in zip(nights, now, then, strict=True)],
            "totals": {"current": sum(map(len, now)), "proposed": sum(map(len, then))}}


def proposed_config(current: HomeConfig, routine: object = None, config: object = None) -> HomeConfig:
    """The configuration to try: the current one with `routine` replaced, or a whole `config`.

    Problems are worded as `tecmon check-config` words them, with routine
    fields under `routine.`; a whole configuration must keep the home's id.
    """
    if (routine is None) == (config is None):
        raise ConfigError("preview", ["routine: give either routine or config, not both or neither"])
    if config is None:
        data = current.model_dump(mode="json", by_alias=True)
        data["routine"] = routine
        return parse_home_config(data, "routine")
    # the current home carries the settings' service contacts, if they supply them
    cfg = parse_home_config(config, "config", service_fallback=bool(current.service_contacts))
    if cfg.home != current.home:
        raise ConfigError("config", [f"home: must stay {current.home!r} (a preview is of this home)"])
    return cfg


# --- the same events as `tecmon replay` input lines -----------------------------------------


def replay_lines(cfg: HomeConfig, rows: Iterable[EventRow], prefix: str = "zigbee2mqtt",
                 company: Sequence[InputRow] = ()) -> Iterable[str]:
    """Stored events as replay input: the payload each device's profile encodes for the event.

    Company inputs become `{"ts", "company", "by"}` lines, in the order `engine_inputs` applies them.
    """
    codecs: dict[str, DeviceCodec] = {d.id: get_profile(d.profile).bind(d.kind, d.options)
                                      for d in cfg.devices}
    availability = get_profile("zigbee2mqtt-availability").bind(EventKind.AVAILABILITY)
    items: list[tuple[datetime, EventRow | InputRow]] = [(row.received_at, row) for row in rows]
    items = sorted(items + [(row.at, row) for row in company], key=lambda pair: pair[0]) if company else items
    for _, row in items:
        if isinstance(row, InputRow):
            yield json.dumps({"ts": row.at.isoformat(), "company": row.outcome == "on", "by": row.by})
            continue
        event = row.to_event()
        topic = f"{prefix}/{row.home}/{row.device}"
        if event.kind is EventKind.AVAILABILITY:
            topic, payload = f"{topic}/availability", availability.encode(event)
        else:
            payload = codecs[row.device].encode(event)
        yield json.dumps({"ts": row.received_at.isoformat(), "topic": topic, "payload": payload})
