"""Carrying out the engine's decisions: record them, call people, report back.

Runs off the ingest path, reading the runtime's outbox. Each call to a
contact is its own task, so a slow notification service never holds up
another alert. A contact that cannot be reached on any channel is reported
to the engine (`DeliveryFailed`), which calls the next contact at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from alerts.decisions import AlertResolved, AskPerson, SendAlert, SendSummary
from alerts.messages import Message, alert_message, all_clear_message, summary_message
from alerts.notify import DeliveryResult, Notifier
from alerts.plan import ContactPlan
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.replay import lifecycle_line
from gateway.runtime import Dispatch, Runtime
from gateway.store.base import AttemptRow, StepRow

log = logging.getLogger("tecmon.alerts")

OnLine = Callable[[dict[str, Any]], None]
LinkMaker = Callable[[str, str], "str | None"]
"""(alert id, contact name) -> the acknowledgement link to put in that contact's message, if any."""
Publish = Callable[[str, bytes, int], Awaitable[bool]]
"""(topic, payload, QoS) -> whether it went out: the MQTT edge's `MqttSource.publish`."""


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

    async def run(self) -> None:
        while True:
            self.handle(await self.runtime.outbox.get())

    def handle(self, item: Dispatch) -> None:
        if isinstance(item.decision, SendSummary):
            self._summary(item, item.decision)
            return
        line = lifecycle_line(item.decision)
        self.history.append(line)
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
            self._spawn(self._send(item, decision))
        elif isinstance(decision, AskPerson) and not item.late and self.publish is not None:
            self._spawn(self._ask(item, decision))
        elif isinstance(decision, AlertResolved):
            for contact in decision.tell:
                self._spawn(self._all_clear(item, decision, contact))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, item: Dispatch, decision: SendAlert) -> None:
        link = self.link_for(decision.alert.id, decision.contact.name) if self.link_for else None
        message = alert_message(decision, item.plan, link=link)
        if item.late:
            message = replace(
                message,
                title=f"{message.title} (late)",
                body="Late: tecmon was not running when this fell due.\n" + message.body,
            )
        result = await self.notifier.deliver(message, decision.contact)
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
        self._record(await self.notifier.deliver(message, contact))

    async def _all_clear(self, item: Dispatch, decision: AlertResolved, contact: ContactPlan) -> None:
        self._record(await self.notifier.deliver(all_clear_message(decision, item.plan), contact))

    def _record(self, result: DeliveryResult) -> None:
        self.deliveries.append(result)
        if self.recorder is not None:
            for attempt in result.attempts:
                self.recorder.add_attempt(AttemptRow.from_attempt(attempt))
        self.metrics.notifications.labels("delivered" if result.delivered else "failed").inc()

    async def drain(self, timeout: float) -> None:
        """Let sends in flight finish (bounded) before the service stops."""
        while not self.runtime.outbox.empty():
            self.handle(self.runtime.outbox.get_nowait())
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
