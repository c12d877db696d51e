"""Carrying out the engine's decisions: record them, call people, report back.

Runs off the ingest path, reading the runtime's outbox. Each call to a
contact is its own task, so a slow notification service never holds up
another alert. A contact that cannot be reached on any channel is reported
to the engine (`DeliveryFailed`), which calls the next contact at once.

Person-safety steps are taken first: whatever is waiting in the outbox is
ordered by urgency (a person-safety alert's steps, then notices and
summaries; each alert's own steps stay in order), and the notifier sends
person-safety alerts first on threads of their own. Device notices to one
contact that come while one was just sent are held and sent together
(`alerts.notice_batch`), so an outage that takes thousands of devices
offline becomes a few messages; each notice is still its own home's alert
in the record, and a batch that reaches nobody is reported for every alert.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from alerts.decisions import AlertResolved, AskPerson, SendAlert, SendSummary
from alerts.events import DeliveryFailed
from alerts.messages import Message, alert_message, all_clear_message, summary_message
from alerts.notice_batch import DEFAULT_WINDOW, Batch, NoticeBatcher, NoticeLine, batch_words
from alerts.notify import DeliveryResult, Notifier
from alerts.plan import ContactPlan
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.notify_metrics import notify_metrics
from gateway.replay import lifecycle_line
from gateway.runtime import Dispatch, Runtime
from gateway.store.base import AttemptRow, StepRow

log = logging.getLogger("tecmon.alerts")

OnLine = Callable[[dict[str, Any]], None]
LinkMaker = Callable[[str, str], "str | None"]
"""(alert id, contact name) -> the acknowledgement link to put in that contact's message, if any."""
Publish = Callable[[str, bytes, int], Awaitable[bool]]
"""(topic, payload, QoS) -> whether it went out: the MQTT edge's `MqttSource.publish`."""


Held = tuple[Dispatch, SendAlert | AlertResolved]
"""A device notice, or a device all-clear, waiting for its contact's batch."""
URGENT, ROUTINE = 0, 1
"""The outbox's order here: person-safety steps, then device notices and summaries."""
ROUTINE_PER_WORKER = 2
LATE_NOTICE = "Late: tecmon was not running when this fell due."  # a late step's first line
"""Routine deliveries in flight per shared sender thread: enough to keep them all busy."""
BURST = 64
"""Steps taken before the outbox is read again, so a person-safety step never waits behind a storm."""


def priority(item: Dispatch) -> int:
    """By the alert, not the step, so that one alert's steps keep their order."""
    decision = item.decision
    if isinstance(decision, SendSummary):
        return ROUTINE
    return URGENT if decision.alert.kind.person_safety else ROUTINE


def _window(notifier: Notifier) -> timedelta:
    """The notifier's batching window (a stand-in notifier without settings: the default)."""
    seconds = getattr(getattr(notifier, "settings", None), "notice_batch_s", None)
    return DEFAULT_WINDOW if seconds is None else timedelta(seconds=seconds)


class StepRecorder(Protocol):
    def add_step(self, row: StepRow) -> bool: ...
    def add_attempt(self, row: AttemptRow) -> bool: ...


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        notifier: Notifier,
        metrics: Metrics,
        clock: Clock,
        history: deque[dict[str, Any]],
        on_line: OnLine | None = None,
    ) -> None:
        self.runtime = runtime
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        self.history = history
        self.on_line = on_line
        self.deliveries: deque[DeliveryResult] = deque(maxlen=5000)
        self.recorder: StepRecorder | None = None
        self.link_for: LinkMaker | None = None  # signed at send time: the key is loaded after start
        self.publish: Publish | None = None  # to ask the person first (check_with_me)
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: list[tuple[int, int, Dispatch]] = []
        self._order = itertools.count()
        self.batcher: NoticeBatcher[ContactPlan, Held] = NoticeBatcher(_window(notifier))
        self._flusher: asyncio.Task[None] | None = None
        workers = getattr(getattr(notifier, "settings", None), "workers", 8)
        self._routine = asyncio.Semaphore(ROUTINE_PER_WORKER * workers)

    async def run(self) -> None:
        """Take the outbox's steps most urgent first, reading it again every `BURST` steps."""
        outbox = self.runtime.outbox
        while True:
            if not self._waiting:
                self._wait(await outbox.get())
            while not outbox.empty():
                self._wait(outbox.get_nowait())
            for _ in range(min(BURST, len(self._waiting))):
                self.handle(heapq.heappop(self._waiting)[2])
            await asyncio.sleep(0)

    def _wait(self, item: Dispatch) -> None:
        heapq.heappush(self._waiting, (priority(item), next(self._order), item))

    def handle(self, item: Dispatch) -> None:
        if isinstance(item.decision, SendSummary):
            self._summary(item, item.decision)
            return
        line = lifecycle_line(item.decision)
        self.history.append(line)
        if log.isEnabledFor(logging.INFO):  # a storm is thousands of lines: not even built unless shown
            log.info("%s%s", "late: " if item.late else "", json.dumps(line, ensure_ascii=False))
        if self.recorder is not None:
            self.recorder.add_step(StepRow.from_line(line, item.late))
        if item.late:
            self.metrics.alerts_late.inc()
        if self.on_line is not None:
            self.on_line(line)
        decision = item.decision
        if not item.call:
            return
        if isinstance(decision, SendAlert):
            self._alert(item, decision)
        elif isinstance(decision, AskPerson) and not item.late and self.publish is not None:
            self._spawn(self._ask(item, decision))
        elif isinstance(decision, AlertResolved):
            for contact in decision.tell:
                self._resolved(item, decision, contact)

    @property
    def in_flight(self) -> int:
        """Sends and asks started and not yet finished (what a clean stop waits for)."""
        return len(self._tasks)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_message(self, message: Message, contact: ContactPlan) -> DeliveryResult:
        """Low-urgency messages (notices, summaries) a few at a time: thousands in flight at once
        would crowd the event loop that a help press needs."""
        if message.urgency != "low":
            return await self.notifier.deliver(message, contact)
        async with self._routine:
            return await self.notifier.deliver(message, contact)

    def _alert(self, item: Dispatch, decision: SendAlert) -> None:
        """Person-safety alerts go at once; a device notice may wait for its contact's batch."""
        if decision.alert.kind.person_safety or not self._hold(decision.contact, (item, decision)):
            self._spawn(self._send(item, decision))

    def _resolved(self, item: Dispatch, decision: AlertResolved, contact: ContactPlan) -> None:
        """A device all-clear is batched like the notice; a notice still held is simply not sent."""
        alert = decision.alert
        if not alert.kind.person_safety:
            if self.batcher.drop(contact, lambda held: held[1].alert.id == alert.id):
                log.info("%s: resolved before its notice to %s went out: neither is sent",
                         alert.id, contact.name)
                return
            if self._hold(contact, (item, decision)):
                return
        self._spawn(self._all_clear(item, decision, contact))

    def _hold(self, contact: ContactPlan, held: Held) -> bool:
        """Whether the batcher keeps it for later (then the window's flush is scheduled)."""
        if self.batcher.offer(contact, held, self.clock.now()) is not None:
            return False
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_batches())
        return True

    async def _flush_batches(self) -> None:
        """Send each contact's held notices when their window ends, until no window is open."""
        try:
            while (due := self.batcher.next_due()) is not None:
                await self.clock.sleep_until(due, asyncio.Event())
                self._send_batches(self.clock.now())
        finally:
            self._flusher = None

    def _send_batches(self, now: datetime | None) -> None:
        """The batches due at `now` (None: every one held, as the service stops)."""
        for batch in self.batcher.due(now) if now is not None else self.batcher.flush():
            if len(batch.items) == 1:
                item, decision = batch.items[0]
                if isinstance(decision, SendAlert):
                    self._spawn(self._send(item, decision))
                else:
                    self._spawn(self._all_clear(item, decision, batch.key))
            else:
                self._spawn(self._send_batch(batch))

    async def _send_batch(self, batch: Batch[ContactPlan, Held]) -> None:
        """One message for many notices; the outcome is recorded, and reported, for each alert."""
        first, first_plan = batch.items[0][1], batch.items[0][0].plan
        lines = [NoticeLine(i.home, i.plan.person, d.alert.kind, d.alert.device, isinstance(d, AlertResolved))
                 for i, d in batch.items]
        title, body = batch_words(lines, first_plan.local(batch.opened_at))
        message = Message(f"{first.alert.id}+{len(lines) - 1}", title, body, "notice", urgency="low")
        result = await self._deliver_message(message, batch.key)
        self._record(result, [d.alert.id for _, d in batch.items])
        notify_metrics(self.metrics).batched.inc(len(lines))
        if not result.delivered:
            for item, decision in batch.items:
                if isinstance(decision, SendAlert) and item.home in self.runtime.homes:
                    self.runtime.apply(item.home, DeliveryFailed(decision.alert.id, batch.key.name))

    async def _send(self, item: Dispatch, decision: SendAlert) -> None:
        link = self.link_for(decision.alert.id, decision.contact.name) if self.link_for else None
        message = alert_message(decision, item.plan, link=link)
        if item.late:
            message = replace(
                message,
                title=f"{message.title} (late)",
                body=f"{LATE_NOTICE}\n{message.body}",
            )
        result = await self._deliver_message(message, decision.contact)
        self._record(result)
        if result.delivered:
            if not decision.escalation:
                latency = (self.clock.now() - decision.at).total_seconds()
                self.metrics.trigger_to_notification.observe(max(0.0, latency))
            return
        failure = result.failure()  # the notifier has logged it; the engine calls the next contact
        if failure is not None and item.home in self.runtime.homes:
            self.runtime.apply(item.home, failure)

    async def _ask(self, item: Dispatch, decision: AskPerson) -> None:
        """Blink the person's light: the device profile's `set` payload on `<device topic>/set`.

        If it cannot be sent the engine still calls the first contact at raised + within.
        """
        found = ask_message(self.runtime, item.home, decision.device)
        if found is None or self.publish is None:
            log.warning("%s: cannot ask %s on %s", decision.alert.id, item.plan.person, decision.device)
            return
        topic, payload = found
        await self.publish(topic, payload, 1)

    def _summary(self, item: Dispatch, decision: SendSummary) -> None:
        """Not an alert step (nothing to record or show as one); sent only when on time."""
        log.info("%s%s", "late, not sent: " if item.late else "", json.dumps(lifecycle_line(decision)))
        if item.call and not item.late:
            message = summary_message(decision, item.plan)
            self._spawn(self._deliver(message, decision.contact))

    async def _deliver(self, message: Message, contact: ContactPlan) -> None:
        self._record(await self._deliver_message(message, contact))

    async def _all_clear(self, item: Dispatch, decision: AlertResolved, contact: ContactPlan) -> None:
        self._record(await self._deliver_message(all_clear_message(decision, item.plan), contact))

    def _record(self, result: DeliveryResult, alerts: list[str] | None = None) -> None:
        """The attempts go on the record of the alert (or each of the batch's `alerts`)."""
        self.deliveries.append(result)
        if self.recorder is not None:
            for attempt in result.attempts:
                for alert in alerts or [attempt.alert_id]:
                    self.recorder.add_attempt(AttemptRow.from_attempt(replace(attempt, alert_id=alert)))
        self.metrics.notifications.labels("delivered" if result.delivered else "failed").inc()

    async def drain(self, timeout: float) -> None:
        """Take what is waiting, send the held notices now, let sends in flight finish (bounded)."""
        while not self.runtime.outbox.empty():
            self._wait(self.runtime.outbox.get_nowait())
        while self._waiting:
            self.handle(heapq.heappop(self._waiting)[2])
        if self._flusher is not None:
            self._flusher.cancel()
        self._send_batches(None)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


def ask_message(runtime: Runtime, home: str, device_id: str) -> tuple[str, bytes] | None:
    """Topic and payload that ask the person on this device, encoded by its own profile."""
    from device_profiles import get_profile

    if home not in runtime.homes:
        return None
    device = runtime.homes[home].config.device(device_id)
    payload = get_profile(device.profile).ask_payload() if device is not None else None
    if payload is None:
        return None
    topic = f"{runtime.decoder.prefix}/{home}/{device_id}/set"
    return topic, json.dumps(payload, separators=(",", ":")).encode()
