"""Urgency on the phone and the morning summary: how hard each message asks to be heard."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import apprise
import pytest

from alerts.decisions import (
    AlertKind,
    AlertResolved,
    SendAlert,
)
from alerts.messages import Message, alert_message, all_clear_message, outgoing
from alerts.notify import (
    DeliveryResult,
    apprise_send,
    with_priority,
)
from alerts.plan import ContactPlan
from gateway.metrics import Metrics

# --- urgency: how hard the phone tries ----------------------------------------------------------
from tests.unit.notify_support import MESSAGE, PLAN, SAM, SUMMER, _info


def test_person_safety_alerts_are_urgent_notices_and_device_all_clears_low() -> None:
    for kind in AlertKind:
        send = SendAlert(_info(kind), SUMMER, SAM, False, "why")
        assert alert_message(send, PLAN).urgency == ("urgent" if kind.person_safety else "low"), kind
        over = AlertResolved(_info(kind), SUMMER, "condition", "over", tell=(SAM,))
        assert all_clear_message(over, PLAN).urgency == ("normal" if kind.person_safety else "low")


PRIORITY_CASES = [
    ("ntfy://tecmon-julie", "urgent", "ntfy://tecmon-julie?priority=max"),
    ("ntfy://tecmon-julie", "low", "ntfy://tecmon-julie?priority=low"),
    ("ntfy://tecmon-julie", "normal", "ntfy://tecmon-julie"),
    ("ntfys://user:pw@ntfy.example.org/topic?Priority=1&tags=bed", "urgent",
     "ntfys://user:pw@ntfy.example.org/topic?tags=bed&priority=max"),
    ("ntfys://ntfy.example.org/topic?priority=5", "normal", "ntfys://ntfy.example.org/topic?priority=5"),
    ("json://127.0.0.1:9000/", "urgent", "json://127.0.0.1:9000/"),
    ("tgram://bottoken/chat", "low", "tgram://bottoken/chat"),
]


@pytest.mark.parametrize(("url", "urgency", "expected"), PRIORITY_CASES)
def test_ntfy_urls_carry_the_messages_priority(url: str, urgency: Any, expected: str) -> None:
    assert with_priority(url, urgency) == expected


@pytest.mark.parametrize(("urgency", "header"), [("urgent", "max"), ("low", "low")])
def test_apprise_reads_the_priority_and_the_contacts_url_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, urgency: Any, header: str
) -> None:
    """What apprise's ntfy plugin will send, checked on the plugin; nothing goes out."""
    plugin = apprise.Apprise.instantiate(with_priority(SAM.notify[0], urgency))
    assert plugin is not None and plugin.priority == header  # type: ignore[attr-defined]
    used: list[str] = []
    monkeypatch.setattr(apprise.Apprise, "instantiate", lambda url, **_: used.append(url))
    link = "https://tecmon.example.org/ack/abc"
    message = replace(MESSAGE, link=link, urgency=urgency)
    assert not apprise_send(SAM.notify[0], message, 1.0).ok
    assert used == [f"ntfy://tecmon-julie?priority={header}&click={quote(link, safe='')}"]
    assert SAM.notify == ("ntfy://tecmon-julie",)


def test_the_priority_does_not_leak_the_topic_into_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    message = replace(MESSAGE, urgency="urgent")
    outcome = apprise_send("ntfy://127.0.0.1:9/TOPICSECRET-night", message, 2.0)
    assert not outcome.ok  # nothing listens on port 9
    assert "TOPICSECRET" not in caplog.text + (outcome.error or "")


# --- the morning summary: sent quietly, by the shell -------------------------------------------


def test_the_morning_summary_goes_to_its_contact_at_low_urgency() -> None:
    """The dispatcher sends it (not recorded as an alert step); a late one is not sent."""
    import asyncio
    from collections import deque
    from types import SimpleNamespace

    from alerts.decisions import SendSummary
    from gateway.clock import SimClock
    from gateway.dispatch import Dispatcher
    from gateway.runtime import Dispatch

    sent: list[tuple[Message, ContactPlan]] = []

    class Phone:
        async def deliver(self, message: Message, contact: ContactPlan) -> DeliveryResult:
            sent.append((message, contact))
            return DeliveryResult(message.alert_id, contact.name, True, ())

    summary = SendSummary(PLAN.home, SUMMER, SAM, "Julie had a settled night: in bed 22:40 to 07:05.")

    async def night() -> deque[dict[str, object]]:
        history: deque[dict[str, object]] = deque()
        runtime = SimpleNamespace(outbox=asyncio.Queue())
        dispatcher = Dispatcher(runtime, Phone(), Metrics(), SimClock(SUMMER), history)  # type: ignore[arg-type]
        dispatcher.handle(Dispatch(PLAN.home, summary, PLAN))
        dispatcher.handle(Dispatch(PLAN.home, summary, PLAN, late=True))
        await dispatcher.drain(timeout=5)
        return history

    history = asyncio.run(night())
    assert [(m.urgency, m.tone, c) for m, c in sent] == [("low", "notice", SAM)]
    assert sent[0][0].body == summary.text and "night" in sent[0][0].title
    assert with_priority(SAM.notify[0], sent[0][0].urgency).endswith("priority=low")
    assert not history  # not an alert step: the alert record and pages never see it
    assert outgoing(summary, PLAN)[0][1] == sent[0][0]
