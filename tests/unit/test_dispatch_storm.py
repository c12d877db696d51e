"""A storm of device notices through the dispatcher: batched per contact, recorded per home,
and never ahead of a person-safety alert (the real runtime and engine, a recording notifier)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from alerts.homeconfig import parse_home_config
from alerts.messages import Message
from alerts.notify import DeliveryAttempt, DeliveryResult
from alerts.plan import ContactPlan
from gateway.clock import SimClock
from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.runtime import Runtime
from gateway.store.base import AttemptRow, InputRow, StepRow

T0 = datetime(2026, 1, 12, 2, 10, tzinfo=UTC)
HOMES = 20
WINDOW_S = 30.0


@dataclass
class RecordingNotifier:
    """Keeps every message; the contacts in `unreachable` are never reached."""

    unreachable: set[str] = field(default_factory=set)
    sent: list[tuple[str, Message]] = field(default_factory=list)
    settings: Any = field(default_factory=lambda: SimpleNamespace(notice_batch_s=WINDOW_S))

    async def deliver(self, message: Message, contact: ContactPlan) -> DeliveryResult:
        self.sent.append((contact.name, message))
        ok = contact.name not in self.unreachable
        attempt = DeliveryAttempt(message.alert_id, contact.name, "json://…", 1, ok, None if ok else "HTTP 500",
                                  T0, 0.0)
        return DeliveryResult(message.alert_id, contact.name, ok, (attempt,))


@dataclass
class Record:
    steps: list[StepRow] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)
    inputs: list[InputRow] = field(default_factory=list)

    def add_input(self, row: InputRow) -> bool:
        self.inputs.append(row)
        return True

    def add_event(self, row: object) -> bool:
        return True

    def add_dead_letter(self, row: object) -> bool:
        return True

    def add_step(self, row: StepRow) -> bool:
        self.steps.append(row)
        return True

    def add_attempt(self, row: AttemptRow) -> bool:
        self.attempts.append(row)
        return True


def home(name: str) -> dict[str, Any]:
    return {
        "home": name, "timezone": "UTC", "person": {"name": name.title()},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed", "heartbeat": "0m"},
                    {"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button"}],
        "routine": {"night": {"from": "00:00", "to": "23:59"}, "device_offline_after": "1m"},
        "contacts": [{"name": f"Family of {name}", "notify": ["json://127.0.0.1:9/family"]}],
        "service_contacts": [{"name": "Engineer", "notify": ["json://127.0.0.1:9/engineer"]}],
        "escalation": {"ack_within": "10m", "repeat_every": "5m"},
    }


@dataclass
class World:
    clock: SimClock
    runtime: Runtime
    dispatcher: Dispatcher
    notifier: RecordingNotifier
    record: Record

    def message(self, topic: str, payload: bytes) -> None:
        self.runtime.ingest(Inbound(f"zigbee2mqtt/{topic}", payload, self.clock.now(), 1))

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    def steps(self, step: str, kind: str = "device_offline") -> list[StepRow]:
        return [s for s in self.record.steps if s.step == step and s.kind == kind]


@pytest.fixture
async def w() -> AsyncIterator[World]:
    clock, metrics, record, notifier = SimClock(T0), Metrics(), Record(), RecordingNotifier()
    runtime = Runtime(clock, metrics)
    for i in range(HOMES):
        runtime.set_home(parse_home_config(home(f"h{i:02d}"), "test"))
    dispatcher = Dispatcher(runtime, notifier, metrics, clock, deque(maxlen=1000))  # type: ignore[arg-type]
    dispatcher.recorder = runtime.recorder = record
    task = asyncio.create_task(dispatcher.run())
    yield World(clock, runtime, dispatcher, notifier, record)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await dispatcher.drain(timeout=5)


async def offline_storm(w: World, homes: int = HOMES) -> None:
    for i in range(homes):
        w.message(f"h{i:02d}/bed/availability", b"offline")
    w.clock.advance(timedelta(minutes=1))
    w.runtime.fire_due()
    await w.settle()


async def test_the_first_notice_goes_at_once_the_rest_as_one_message_when_the_window_ends(w: World) -> None:
    await offline_storm(w)
    assert len(w.steps("notified")) == HOMES, "every notice is recorded on its own home's alert"
    assert [name for name, _ in w.notifier.sent] == ["Engineer"]
    w.clock.advance(timedelta(seconds=WINDOW_S))
    await w.settle()
    assert [name for name, _ in w.notifier.sent] == ["Engineer", "Engineer"]
    batch = w.notifier.sent[1][1]
    assert batch.title == f"{HOMES - 1} devices offline in {HOMES - 1} homes"
    assert batch.body.startswith(f"{HOMES - 1} devices offline in {HOMES - 1} homes since 02:11.")
    assert (batch.tone, batch.urgency) == ("notice", "low")
    alerts = {a.alert for a in w.record.attempts}
    assert alerts == {s.alert for s in w.steps("notified")}, "each alert's record has its attempt"


async def test_a_batch_that_reaches_nobody_is_reported_to_the_engine_for_every_alert(w: World) -> None:
    w.notifier.unreachable.add("Engineer")
    await offline_storm(w)
    w.clock.advance(timedelta(seconds=WINDOW_S))
    await w.settle()
    failed = [(i.alert, i.by) for i in w.record.inputs if i.kind == "delivery_failed"]
    assert sorted(failed) == sorted((s.alert, "Engineer") for s in w.steps("notified"))
    assert all(not a.ok for a in w.record.attempts)


async def test_a_help_press_waiting_behind_a_storm_is_sent_first(w: World) -> None:
    for i in range(HOMES):
        w.message(f"h{i:02d}/bed/availability", b"offline")
    w.clock.advance(timedelta(minutes=1))
    w.dispatcher.batcher.window = timedelta(0)  # every notice its own message: the queue's order shows
    w.runtime.fire_due()
    w.message("h05/ok-button", b'{"action": "single"}')  # queued after all twenty notices
    await w.settle()
    assert len(w.notifier.sent) == HOMES + 1
    assert w.notifier.sent[0][0] == "Family of h05" and w.notifier.sent[0][1].urgency == "urgent"


async def test_held_notices_are_sent_when_the_service_stops(w: World) -> None:
    await offline_storm(w, homes=3)
    assert len(w.notifier.sent) == 1
    await w.dispatcher.drain(timeout=5)
    assert [m.title for _, m in w.notifier.sent][1] == "2 devices offline in 2 homes"


async def test_when_the_outage_ends_the_all_clears_come_as_one_message_too(w: World) -> None:
    await offline_storm(w)
    w.clock.advance(timedelta(seconds=WINDOW_S))
    await w.settle()  # the notices: one at once, one batch
    w.clock.advance(timedelta(seconds=WINDOW_S))
    await w.settle()  # the window closes quietly
    for i in range(HOMES):
        w.message(f"h{i:02d}/bed/availability", b"online")
    await w.settle()
    w.clock.advance(timedelta(seconds=WINDOW_S))
    await w.settle()
    titles = [m.title for _, m in w.notifier.sent]
    assert len(titles) == 4 and titles[3] == f"{HOMES - 1} devices back online in {HOMES - 1} homes"
    assert len(w.steps("resolved")) == HOMES


async def test_a_device_back_before_its_held_notice_went_out_is_never_mentioned(w: World) -> None:
    await offline_storm(w, homes=3)
    w.message("h01/bed/availability", b"online")  # h01's notice is still held
    await w.settle()
    w.clock.advance(timedelta(seconds=WINDOW_S))
    await w.settle()
    sent = [m for _, m in w.notifier.sent]
    assert len(sent) == 2, [m.title for m in sent]
    assert "h02" in sent[1].alert_id and "h01" not in sent[1].body, "a batch of one is the usual message"
    assert len(w.steps("resolved")) == 1, "the resolution is still recorded"
