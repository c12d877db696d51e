"""Acknowledgement links: signed, expiring, single use, one alert and one contact; GET shows, only POST acts.

The links are the ones the dispatcher really puts in the notification (a
recording notifier stands in for apprise), opened through the app as a
carer's phone would. Every response body is searched for the notification
URL's secret part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import apprise
import httpx
import jwt
import pytest

from alerts.decisions import AlertInfo, AlertKind, SendAlert
from alerts.events import ResolveAlert
from alerts.messages import Message, alert_message
from alerts.notify import DeliveryResult, apprise_send, with_click
from alerts.plan import ContactPlan
from gateway.web import CSP
from tests.api.world import T0, World, api_world, raise_out_of_bed

PUBLIC = "https://tecmon.example.org"
SECRET = "SECRET-TOKEN"
"""The recognisable part of the world's notification URL (tests.api.world.SECRET_URL)."""
SAM = "Sam (daughter)"


@dataclass
class RecordingPhone:
    """Stands in for the apprise notifier: keeps each message, reports it delivered."""

    sent: list[tuple[str, Message]] = field(default_factory=list)

    async def deliver(self, message: Message, contact: ContactPlan) -> DeliveryResult:
        self.sent.append((contact.name, message))
        return DeliveryResult(message.alert_id, contact.name, True, ())


@dataclass
class Ack:
    world: World
    phone: RecordingPhone
    bodies: list[str]

    async def raise_alert(self) -> tuple[str, str]:
        """Raise out_of_bed_too_long for Julie; (alert id, the token in Sam's notification)."""
        alert = await raise_out_of_bed(self.world)
        await self.world.service.dispatcher.drain(timeout=5)
        link = next(m.link for name, m in reversed(self.phone.sent) if m.alert_id == alert and name == SAM)
        assert link is not None and link.startswith(f"{PUBLIC}/ack/")
        return alert, link.removeprefix(f"{PUBLIC}/ack/")

    def steps(self) -> list[tuple[str, str, str | None]]:
        return [(line["step"], line["alert"], line["contact"]) for line in self.world.service.history]

    def acknowledged_by(self) -> dict[str, str | None]:
        return {a["alert"]: a["acknowledged_by"] for a in self.world.service.runtime.open_alerts()}


async def _world(tmp_path: Path, **settings: Any) -> AsyncIterator[Ack]:
    async with api_world(tmp_path, **settings) as world:
        phone = RecordingPhone()
        world.service.dispatcher.notifier = phone  # type: ignore[assignment]
        bodies: list[str] = []

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            bodies.append(response.text)

        world.client.event_hooks["response"].append(keep)
        yield Ack(world, phone, bodies)
        assert bodies, "the test made no request"
        assert not [b for b in bodies if SECRET in b], "a notification URL's secret reached a page"


@pytest.fixture
async def ack(tmp_path: Path) -> AsyncIterator[Ack]:
    async for a in _world(tmp_path, public_url=PUBLIC + "/"):
        yield a


# -- the notification carries the link -----------------------------------------------------------


async def test_the_notification_body_carries_a_link_for_this_alert_and_contact(ack: Ack) -> None:
    alert, token = await ack.raise_alert()
    _, message = ack.phone.sent[-1]
    assert message.link == f"{PUBLIC}/ack/{token}"
    assert message.body.splitlines()[-1] == message.link  # on its own line, last
    assert "so the calls stop" in message.body
    claims = ack.world.service.accounts.verify(token, ("ack",))
    assert claims is not None and claims["alert"] == alert and claims["contact"] == SAM and claims["jti"]
    assert (await ack.world.client.get(f"/ack/{token}")).status_code == 200


async def test_without_a_public_url_the_message_keeps_its_hint(tmp_path: Path) -> None:
    async for a in _world(tmp_path):
        alert = await raise_out_of_bed(a.world)
        await a.world.service.dispatcher.drain(timeout=5)
        _, message = a.phone.sent[-1]
        assert message.link is None and "/ack/" not in message.body
        assert message.body.splitlines()[-1] == "Acknowledge alert out_of_bed_too_long in tecmon when you are on it, so the calls stop."
        assert (await a.world.client.get(f"/alerts/{alert}", headers=a.world.auth("sam"))).status_code == 200


NTFY_CASES = [
    ("ntfy://night-topic", "ntfy://night-topic?click={q}"),
    ("ntfys://ntfy.example.org/night-topic?priority=5", "ntfys://ntfy.example.org/night-topic?priority=5&click={q}"),
    ("ntfy://user:pw@host/topic?Click=https://old.example&tags=bed", "ntfy://user:pw@host/topic?tags=bed&click={q}"),
    ("json://127.0.0.1:9/phone", "json://127.0.0.1:9/phone"),
    ("tgram://bottoken/chat", "tgram://bottoken/chat"),
]


@pytest.mark.parametrize(("url", "expected"), NTFY_CASES, ids=[c[0].split(":")[0] + str(i) for i, c in enumerate(NTFY_CASES)])
def test_ntfy_urls_get_the_link_as_their_click_action(url: str, expected: str) -> None:
    link = f"{PUBLIC}/ack/abc.def-ghi_jkl"
    q = "https%3A%2F%2Ftecmon.example.org%2Fack%2Fabc.def-ghi_jkl"
    assert with_click(url, link) == expected.format(q=q)
    assert with_click(url, None) == url


def test_apprise_reads_the_click_action_and_the_contacts_url_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    link = f"{PUBLIC}/ack/abc.def-ghi_jkl"
    plugin = apprise.Apprise.instantiate(with_click("ntfys://ntfy.example.org/night-topic?priority=5", link))
    assert plugin is not None and plugin.click == link  # type: ignore[attr-defined]
    used: list[str] = []
    monkeypatch.setattr(apprise.Apprise, "instantiate", lambda url, **_: used.append(url))  # nothing sent
    contact = ContactPlan(SAM, ("ntfy://night-topic",))
    outcome = apprise_send(contact.notify[0], Message("a", "t", "b", "alert", link), 1.0)
    assert not outcome.ok
    assert used == [with_click("ntfy://night-topic", link)]
    assert contact.notify == ("ntfy://night-topic",)


def test_neither_the_ntfy_topic_nor_the_link_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    link = f"{PUBLIC}/ack/LINKSECRET-abcdef"
    caplog.set_level(logging.DEBUG)
    outcome = apprise_send("ntfy://127.0.0.1:9/TOPICSECRET-night", Message("a", "t", "b", "alert", link), 2.0)
    assert not outcome.ok  # nothing listens on port 9
    logged = caplog.text + str(outcome.error)
    assert "TOPICSECRET" not in logged and "LINKSECRET" not in logged


# -- GET shows, POST acknowledges --------------------------------------------------------------


async def test_get_shows_the_alert_and_changes_nothing(ack: Ack) -> None:
    alert, token = await ack.raise_alert()
    before = ack.steps()
    page = await ack.world.client.get(f"/ack/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Julie has been out of bed for" in page.text
    assert "Julie: out of bed too long" in page.text
    assert f"<dt>Called so far</dt><dd>{SAM}</dd>" in page.text
    assert re.search(rf'<form class="action" method="post" action="/ack/{re.escape(token)}">', page.text)
    assert "I'm dealing with it</button>" in page.text
    assert "<script" not in page.text
    await ack.world.flush()
    assert ack.steps() == before
    assert ack.acknowledged_by() == {alert: None}
    assert await ack.world.service.store.ack_link_used_at(_jti(ack, token)) is None


async def test_pages_are_private_and_allow_no_script(ack: Ack) -> None:
    _, token = await ack.raise_alert()
    for reply in (await ack.world.client.get(f"/ack/{token}"), await ack.world.client.get("/ack/not-a-token"),
                  await ack.world.client.post(f"/ack/{token}")):
        assert reply.headers["cache-control"] == "no-store"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert reply.headers["content-security-policy"] == CSP
    css = await ack.world.client.get("/static/tecmon.css")
    assert css.status_code == 200 and ".card" in css.text and ":focus-visible" in css.text


async def test_post_acknowledges_as_the_contact_named_in_the_link(ack: Ack) -> None:
    alert, token = await ack.raise_alert()
    reply = await ack.world.client.post(f"/ack/{token}", data={"by": "Mallory"})  # a name sent is ignored
    assert reply.status_code == 200
    assert "nobody else will be called" in reply.text
    assert 'action="/ack/' + token + '/resolve"' in reply.text
    await ack.world.flush()
    assert ack.steps()[-1] == ("acknowledged", alert, SAM)
    assert ack.acknowledged_by() == {alert: SAM}
    detail = (await ack.world.client.get(f"/alerts/{alert}", headers=ack.world.auth("sam"))).json()
    assert detail["acknowledged_by"] == SAM and detail["state"] == "acknowledged"
    again = await ack.world.client.get(f"/ack/{token}")  # opened again: the resolve form
    assert again.status_code == 200 and "Resolve with what happened" in again.text


# -- refusals: a clear page, a 4xx, never an acknowledgement -------------------------------------

Setup = Callable[[Ack, str, str], Awaitable[str]]


async def used_once(ack: Ack, alert: str, token: str) -> str:
    assert (await ack.world.client.post(f"/ack/{token}")).status_code == 200
    return token


async def expired(ack: Ack, alert: str, token: str) -> str:
    ack.world.clock.set(ack.world.clock.now() + timedelta(minutes=121))
    return token


async def for_another_alert(ack: Ack, alert: str, token: str) -> str:
    """Alert A is resolved, then B is raised in the same home: A's link must not touch B."""
    ack.world.service.runtime.apply("julie", ResolveAlert(alert, "Ana", "false alarm"))
    await ack.world.flush()
    other = await raise_out_of_bed(ack.world)
    assert other != alert
    return token


async def tampered(ack: Ack, alert: str, token: str) -> str:
    head, body, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return ".".join((head, body, signature[:middle] + flipped + signature[middle + 1:]))


async def wrong_key(ack: Ack, alert: str, token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, "another key, not tecmon's, long enough for HS256", algorithm="HS256")


async def a_sign_in_token(ack: Ack, alert: str, token: str) -> str:
    return ack.world.token("sam")


async def for_someone_else(ack: Ack, alert: str, token: str) -> str:
    link = ack.world.service.dispatcher.link_for(alert, "Bob (son)")  # type: ignore[misc]
    assert link is not None
    return link.rsplit("/", 1)[1]


async def after_resolution(ack: Ack, alert: str, token: str) -> str:
    reply = await ack.world.client.post(f"/alerts/{alert}/resolve", headers=ack.world.auth("sam"),
                                        json={"outcome": "false_alarm", "note": "making tea"})
    assert reply.status_code == 200
    return token


async def garbage(ack: Ack, alert: str, token: str) -> str:
    return "not-a-token"


REFUSED: list[tuple[str, Setup, int, str]] = [
    ("once only", used_once, 410, "already been used"),
    ("not after expiry", expired, 410, "This link has expired"),
    ("not for another alert", for_another_alert, 409, "already closed"),
    ("tampered", tampered, 400, "not valid"),
    ("signed with another key", wrong_key, 400, "not valid"),
    ("a sign-in token is not a link", a_sign_in_token, 400, "not valid"),
    ("not garbage", garbage, 400, "not valid"),
    ("only its own contact", for_someone_else, 403, "not one of this alert"),
    ("not after resolution", after_resolution, 409, "already closed"),
]


@pytest.mark.parametrize(("setup", "status", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
async def test_a_link_that_cannot_be_used_says_why_and_acknowledges_nothing(
    ack: Ack, setup: Setup, status: int, words: str
) -> None:
    alert, token = await ack.raise_alert()
    token = await setup(ack, alert, token)
    await ack.world.flush()
    before, open_before = ack.steps(), ack.acknowledged_by()
    for method in ("GET", "POST"):
        reply = await ack.world.client.request(method, f"/ack/{token}")
        if method == "GET" and setup is used_once:
            assert reply.status_code == 200  # showing a used link offers to resolve
            continue
        assert reply.status_code == status, reply.text
        assert words in reply.text and "text/html" in reply.headers["content-type"]
        assert "<form" not in reply.text
    await ack.world.flush()
    assert ack.steps() == before, "a refused link recorded a step"
    assert ack.acknowledged_by() == open_before
    if setup is not used_once:
        assert all(by is None for by in open_before.values())


# -- resolving with the same link ----------------------------------------------------------------


async def test_resolve_after_ack_records_the_outcome_as_the_contact(ack: Ack) -> None:
    alert, token = await ack.raise_alert()
    assert (await ack.world.client.post(f"/ack/{token}")).status_code == 200
    reply = await ack.world.client.post(f"/ack/{token}/resolve",
                                        data={"outcome": "false_alarm", "note": "  making tea "})
    assert reply.status_code == 200 and "false alarm: making tea" in reply.text
    await ack.world.flush()
    assert ack.steps()[-1] == ("resolved", alert, SAM)
    assert ack.world.service.history[-1]["reason"] == f"Resolved by {SAM}: false alarm: making tea"
    assert ack.acknowledged_by() == {}
    detail = (await ack.world.client.get(f"/alerts/{alert}", headers=ack.world.auth("sam"))).json()
    assert detail["state"] == "resolved" and "false alarm: making tea" in detail["outcome"]
    before = ack.steps()
    for method, path in (("POST", f"/ack/{token}/resolve"), ("POST", f"/ack/{token}"), ("GET", f"/ack/{token}")):
        again = await ack.world.client.request(method, path, data={"outcome": "other"} if "resolve" in path else None)
        assert again.status_code == 409 and "already closed" in again.text
    await ack.world.flush()
    assert ack.steps() == before


async def test_resolve_needs_the_link_to_have_acknowledged_first(ack: Ack) -> None:
    alert, token = await ack.raise_alert()
    reply = await ack.world.client.post(f"/ack/{token}/resolve", data={"outcome": "needed_help"})
    assert reply.status_code == 409 and "dealing with it first" in reply.text
    assert ack.acknowledged_by() == {alert: None}


async def test_resolve_without_an_outcome_shows_the_form_again_and_records_nothing(ack: Ack) -> None:
    _, token = await ack.raise_alert()
    await ack.world.client.post(f"/ack/{token}")
    await ack.world.flush()
    before = ack.steps()
    for data in ({"note": "kept"}, {"outcome": "shrug", "note": "kept"}, {"outcome": "other", "note": "x" * 1001}):
        reply = await ack.world.client.post(f"/ack/{token}/resolve", data=data)
        assert reply.status_code == 422 and 'role="alert"' in reply.text
        assert ("kept" in reply.text) is (data["note"] == "kept")
    await ack.world.flush()
    assert ack.steps() == before
    final = await ack.world.client.post(f"/ack/{token}/resolve", data={"outcome": "no_action_needed"})
    assert final.status_code == 200 and "no action needed" in final.text


def _jti(ack: Ack, token: str) -> str:
    claims = ack.world.service.accounts.verify(token, ("ack",))
    assert claims is not None
    return str(claims["jti"])


def test_a_device_notice_carries_the_link_too(ack: Ack) -> None:
    plan = ack.world.service.runtime.homes["julie"].plan
    info = AlertInfo("julie:20260112T230000Z:low_battery:bed", "julie", AlertKind.LOW_BATTERY, "bed")
    link = f"{PUBLIC}/ack/t.o.k"
    message = alert_message(SendAlert(info, T0, ContactPlan(SAM, ()), False, "Battery low."), plan, link=link)
    assert message.body.endswith(f"Acknowledge it here:\n{link}") and message.link == link
    assert message.tone == "notice"
    ack.bodies.append("")  # no request in this test
