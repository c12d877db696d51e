"""The notifier with senders that never return: counted, given up on, and alerts still sent."""

from __future__ import annotations

import threading

from alerts.messages import Message
from alerts.notify import DeliveryResult, Notifier, SendOutcome
from alerts.plan import ContactPlan
from gateway.metrics import Metrics
from gateway.notify_metrics import NOTIFY_METRIC_NAMES
from gateway.settings import NotifySettings

STUCK = ContactPlan("Engineer", ("json://127.0.0.1:9/stuck",))
SAM = ContactPlan("Sam", ("json://127.0.0.1:9/sam",))
NOTICE = Message("h:1:device_offline:bed", "h's home: bed sensor offline", "...", "notice", urgency="low")
ALERT = Message("h:1:help_requested", "Julie: pressed for help", "...", "alert", urgency="urgent")


def test_a_send_that_never_returns_is_given_up_counted_and_alerts_still_go() -> None:
    import asyncio

    release, metrics = threading.Event(), Metrics()

    def send(url: str, message: Message, timeout_s: float) -> SendOutcome:
        if url.endswith("/stuck"):
            release.wait(30)
        return SendOutcome(True)

    async def night() -> tuple[DeliveryResult, DeliveryResult]:
        settings = NotifySettings(timeout_s=0.1, retries=1, retry_backoff_s=0, workers=1, alert_workers=1,
                                  stuck_limit=0, queue_wait_s=0.2)
        async with Notifier(settings, send=send, metrics=metrics) as notifier:
            notice = await notifier.deliver(NOTICE, STUCK)  # takes the one shared thread for ever
            alert = await notifier.deliver(ALERT, SAM)  # on the thread kept for alerts
            return notice, alert

    try:
        notice, alert = asyncio.run(night())
    finally:
        release.set()
    assert (notice.delivered, alert.delivered) == (False, True)
    assert [a.error for a in notice.attempts] == ["timed out after 0.1s", "no free sender within 0.2s"]
    sample = metrics.registry.get_sample_value
    assert sample("tecmon_notify_abandoned_total", {"lane": "shared"}) == 1.0
    assert sample("tecmon_notify_stuck_senders") == 1.0
    exposed = {f.name + ("_total" if f.type == "counter" else "") for f in metrics.registry.collect()}
    assert set(NOTIFY_METRIC_NAMES) <= exposed
