"""The live runtime: every home's engine state, driven by messages and one timer loop.

The safety path is synchronous and in memory: a message is decoded, stepped
through the engine and its decisions queued, before anything else happens.
Sending notifications and storing history happen off this path, from the
outbox. All deadlines live in one heap; the timer loop sleeps until the
earliest one (or until a new, earlier one appears) instead of keeping a timer
per alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from alerts import care
from alerts.decisions import AlertRaised, Decision
from alerts.engine import new_state, next_deadline, step, with_plan
from alerts.events import (
    Acknowledge,
    DeliveryFailed,
    EngineInput,
    EventKind,
    ResolveAlert,
    SensorEvent,
    SetCompany,
    Tick,
)
from alerts.homeconfig import Contact, HomeConfig
from alerts.lifecycle import home_of
from alerts.plan import HomePlan
from alerts.state import HomeState
from gateway.clock import Clock
from gateway.compile_cache import CompileCache
from gateway.dead_letters import KeepGate, KeepLimits, safe_payload, safe_reason, safe_topic
from gateway.decoding import DeadLetter, MessageDecoder
from gateway.inbox import Inbound
from gateway.late import calls_worth_making
from gateway.metrics import Metrics
from gateway.scheduler import DeadlineHeap
from gateway.store.base import DeadLetterRow, EventRow, InputRow
from gateway.urgent import urgent_topics

log = logging.getLogger("tecmon.runtime")



@dataclass(frozen=True, slots=True)
class Dispatch:
    """A decision on its way to the notifier and the record."""

    home: str
    decision: Decision
    plan: HomePlan
    late: bool = False  # fell due while the service was down; found again at start
    call: bool = True  # whether to call people about it (a late, superseded call is only recorded)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    received_at: datetime
    topic: str
    payload: str
    reason: str
    code: str


@dataclass
class HomeRuntime:
    """One home: its compiled plan and live state; the full configuration only as text.

    A validated `HomeConfig` costs about 8 KB; kept as JSON it is a fifth of
    that, which is what lets 100,000 homes fit in well under a gigabyte. It is
    validated again only when someone asks to see it.
    """

    config_json: str
    plan: HomePlan
    state: HomeState

    @property
    def config(self) -> HomeConfig:
        return HomeConfig.model_validate_json(self.config_json)


class Recorder(Protocol):
    """Where the runtime leaves what must be kept; adding never waits (a buffer)."""

    def add_event(self, row: EventRow) -> bool: ...
    def add_input(self, row: InputRow) -> bool: ...
    def add_dead_letter(self, row: DeadLetterRow) -> bool: ...


class Runtime:
    recorder: Recorder | None = None
    on_urgent_topics: Callable[[str, frozenset[str]], None] | None = None
    """Told each home's button and exit-door topics as it is loaded (empty when removed)."""

    def __init__(
        self,
        clock: Clock,
        metrics: Metrics,
        prefix: str = "zigbee2mqtt",
        service_contacts: Iterable[Contact] = (),
        dead_letter_capacity: int = 1000,
        dead_letter_limits: KeepLimits | None = None,
    ) -> None:
        self.clock = clock
        self.metrics = metrics
        self.service_contacts = list(service_contacts)
        self.homes: dict[str, HomeRuntime] = {}
        self.decoder = MessageDecoder([], prefix)
        self.heap = DeadlineHeap()
        self.outbox: asyncio.Queue[Dispatch] = asyncio.Queue()
        self.dead_letters: deque[DeadLetterRecord] = deque(maxlen=dead_letter_capacity)
        self.dead_letter_gate = KeepGate(dead_letter_limits)
        self._wake = asyncio.Event()
        self._event_counters: dict[EventKind, Any] = {}  # labelled children, looked up once
        self._dead_letter_counters: dict[str, tuple[Any, Any]] = {}  # code -> (counted, not kept)
        self.compiled = CompileCache()  # plans and configuration text, shared parts built once

    # -- homes -------------------------------------------------------------------------

    def start_all(self) -> None:
        """Start the clock of every home loaded with `start=False` (no history to rebuild)."""
        for home in self.homes:
            self._step(home, Tick(), self.clock.now())

    def set_home(self, cfg: HomeConfig, start: bool = True) -> None:
        """Load a home, or apply a changed configuration to a running one (state kept).

        With `start=False` a new home waits for its history to be replayed first.
        """
        if not cfg.service_contacts and self.service_contacts:
            cfg = cfg.model_copy(update={"service_contacts": self.service_contacts})
        plan, config_json = self.compiled.plan(cfg), self.compiled.config_json(cfg)
        current = self.homes.get(cfg.home)
        if current is None:
            state = new_state(plan)
            self.homes[cfg.home] = HomeRuntime(config_json, plan, state)
            if start:
                self._step(cfg.home, Tick(), self.clock.now())
        else:
            current.config_json, current.plan = config_json, plan
            current.state = with_plan(current.state, plan)
            self.reschedule(cfg.home)
        self.decoder.add_home(cfg)
        if self.on_urgent_topics is not None:
            self.on_urgent_topics(cfg.home, urgent_topics(cfg, self.decoder.prefix))
        self.metrics.homes_loaded.set(len(self.homes))

    def remove_home(self, home: str) -> None:
        self.homes.pop(home, None)
        self.decoder.remove_home(home)
        if self.on_urgent_topics is not None:
            self.on_urgent_topics(home, frozenset())
        self.heap.schedule(home, None)
        self.metrics.homes_loaded.set(len(self.homes))

    # -- inputs ------------------------------------------------------------------------

    def ingest(self, message: Inbound) -> int:
        """Apply one MQTT message at once; returns the number of events applied.

        A message kept as a notice (a device with none of its profile's fields)
        still applies its events: the device was heard.
        """
        try:
            decoded = self.decoder.decode_message(message.topic, message.payload, message.received_at)
        except DeadLetter as exc:
            self._dead_letter(message, exc)
            return 0
        if decoded.notice is not None:
            self._dead_letter(message, decoded.notice)
        events = decoded.events
        now = message.received_at  # the instant recorded with the event, so a rebuild is exact
        for event in events:
            counter = self._event_counters.get(event.kind)
            if counter is None:
                counter = self._event_counters[event.kind] = self.metrics.events.labels(event.kind.value)
            counter.inc()
            if event.action is not None and self._company_action(event, now):
                continue
            self._step(event.home, event, now)
            if self.recorder is not None:
                self.recorder.add_event(EventRow.from_event(event, now))
        return len(events)

    def apply(self, home: str, inp: EngineInput) -> list[Decision]:
        """An acknowledgement, a carer's resolution or a delivery outcome, now."""
        if home not in self.homes:
            raise KeyError(home)
        now = self.clock.now()
        recorded = Acknowledge | ResolveAlert | DeliveryFailed | SetCompany
        if self.recorder is not None and isinstance(inp, recorded):
            self.recorder.add_input(InputRow.from_input(home, inp, now))
        return self._step(home, inp, now)

    def _company_action(self, event: SensorEvent, now: datetime) -> bool:
        """The routine's company button action: kept as a `company` input (on/off), not a press.

        Recorded as what it did, so a rebuild after a restart starts and ends
        company mode where it did live instead of replaying a button press.
        """
        state = self.homes[event.home].state
        if not care.is_company_action(state, event.action):
            return False
        before = (state.company_from, state.company_until)
        self._step(event.home, event, now)
        if self.recorder is not None and (state.company_from, state.company_until) != before:
            on = SetCompany(care.company_on(state, now), state.plan.person)
            self.recorder.add_input(InputRow.from_input(event.home, on, now))
        return True

    # -- timers ------------------------------------------------------------------------

    async def run_timers(self) -> None:
        """Fire deadlines as they fall due, for every home, from one heap.

        The clock's sleep returns at least every `NAP_S`, so a step of the
        wall clock is seen at once: what it stepped past fires (late), what it
        stepped back from waits for its wall-clock instant. The heap yields a
        deadline once, so neither direction fires anything twice.
        """
        while True:
            self._wake.clear()
            self.fire_due()
            earliest = self.heap.peek()
            if earliest is None:
                await self._wake.wait()
            else:
                await self.clock.sleep_until(earliest, self._wake)

    def fire_due(self) -> None:
        """Fire what is due; a deadline found more than the clock's `overdue_after` past is late.

        A `SimClock` has none: when a test or replay moves it, time has passed, not stepped.
        """
        now = self.clock.now()
        overdue = getattr(self.clock, "overdue_after", None)
        for deadline, home in self.heap.pop_due(now):
            if home not in self.homes:
                continue
            if overdue is None or now - deadline <= overdue:
                self._step(home, Tick(), now)
            else:
                self._fire_overdue(home, now)

    def _fire_overdue(self, home: str, now: datetime) -> None:
        """A deadline found long past (the wall clock stepped forward, or the loop was held up).

        The engine fires every step of the gap at its own instant; like the
        steps recovery finds after a restart they are marked late, and each
        contact of an alert still open is called once instead of once per missed repeat.
        """
        runtime = self.homes[home]
        runtime.state, decisions = step(runtime.state, Tick(), now)
        pending = [Dispatch(home, decision, runtime.plan) for decision in decisions]
        still_open = (alert.info.id for alert in runtime.state.open_alerts())
        for item in calls_worth_making(pending, still_open):
            if isinstance(item.decision, AlertRaised):
                self.metrics.alerts_raised.labels(item.decision.alert.kind.value).inc()
            self.outbox.put_nowait(item)
        log.warning("%s: a deadline fired %s after it fell due; its steps are marked late",
                    home, now - min((d.at for d in decisions), default=now))
        self.reschedule(home)

    # -- internals ---------------------------------------------------------------------

    def _step(self, home: str, inp: EngineInput, now: datetime) -> list[Decision]:
        runtime = self.homes[home]
        runtime.state, decisions = step(runtime.state, inp, now)
        for decision in decisions:
            if isinstance(decision, AlertRaised):
                self.metrics.alerts_raised.labels(decision.alert.kind.value).inc()
            self.outbox.put_nowait(Dispatch(home, decision, runtime.plan))
        self.reschedule(home)
        return decisions

    def reschedule(self, home: str) -> None:
        before = self.heap.peek()
        deadline = next_deadline(self.homes[home].state)
        self.heap.schedule(home, deadline)
        if deadline is not None and (before is None or deadline < before):
            self._wake.set()

    def _dead_letter(self, message: Inbound, exc: DeadLetter) -> None:
        """Always counted; kept (listed, stored, logged) within the per-topic and overall limits.

        A flood makes this the busiest path there is, so the labelled counters are looked up once.
        """
        counters = self._dead_letter_counters.get(exc.code)
        if counters is None:
            metrics = self.metrics
            counters = self._dead_letter_counters[exc.code] = (
                metrics.dead_letters.labels(exc.code), metrics.dead_letters_not_kept.labels(exc.code))
        counters[0].inc()
        if exc.code == "undecodable":
            self.metrics.decode_errors.inc()
        topic = safe_topic(message.topic)
        if not self.dead_letter_gate.keep(topic, self.clock.now()):
            counters[1].inc()
            return
        reason = safe_reason(exc.reason)
        record = DeadLetterRecord(message.received_at, topic, safe_payload(message.payload), reason, exc.code)
        self.dead_letters.append(record)
        if self.recorder is not None:
            self.recorder.add_dead_letter(DeadLetterRow.from_record(record))
        log.warning("dead letter on %s: %s", topic, reason)

    def open_alerts(self) -> list[dict[str, Any]]:
        return [
            {
                "alert": alert.info.id,
                "home": home,
                "kind": alert.info.kind.value,
                "raised_at": alert.raised_at.isoformat(),
                "reasons": list(alert.reasons.values()),
                "acknowledged_by": alert.acknowledged_by,
                "notified": [c.name for c in alert.notified],
            }
            for home, rt in self.homes.items()
            for alert in rt.state.open_alerts()
        ]

    def find_alert_home(self, alert_id: str) -> str | None:
        """The home with this alert open: read from the id, not found by searching every home."""
        home = home_of(alert_id)
        runtime = self.homes.get(home)
        if runtime is None or not any(a.info.id == alert_id for a in runtime.state.open_alerts()):
            return None
        return home
