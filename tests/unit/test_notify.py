"""Messages in plain words, URL redaction, and the notifier's retries and timeouts (fake sender)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apprise
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from alerts.decisions import (
    AlertAcknowledged,
    AlertInfo,
    AlertKind,
    AlertRaised,
    AlertResolved,
    Decision,
    SendAlert,
)
from alerts.events import DeliveryFailed
from alerts.homeconfig import load_home_config
from alerts.messages import WHAT_HAPPENED, Message, alert_message, all_clear_message, outgoing
from alerts.notify import (
    DeliveryAttempt,
    DeliveryResult,
    Notifier,
    SendOutcome,
    _bound_socket_timeouts,
    apprise_send,
    redact,
    scrub,
    secret_parts,
)
from alerts.plan import ContactPlan, plan_from_config
from gateway.metrics import Metrics
from gateway.replay import run_replay
from gateway.settings import NotifySettings

DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"
PLAN = plan_from_config(load_home_config(DATA / "julie.home.yaml"))
SAM = ContactPlan("Sam (daughter)", ("ntfy://tecmon-julie",))
RESPONDER = ContactPlan("Night responder", ("json://127.0.0.1:9000/",))
SUMMER = datetime(2026, 7, 12, 1, 14, tzinfo=UTC)  # 02:14 in London (BST)
MESSAGE = Message("julie:out_of_bed", "Julie: out of bed too long", "At 02:14: ...", "alert")


def _info(kind: AlertKind, device: str | None = None) -> AlertInfo:
    return AlertInfo(f"julie-12-oak-road:20260712T011400Z:{kind}", PLAN.home, kind, device)


# --- messages ---------------------------------------------------------------------------------

SEND_CASES = [
    (AlertKind.OUT_OF_BED_TOO_LONG, None, "Julie has been out of bed for 45 minutes (since 01:29); Julie's routine says to call after 45 minutes.", True),
    (AlertKind.NOT_BACK_AFTER_EXIT, None, "The front-door (hall) door opened at 01:59 during the night and Julie has not been seen back inside.", True),
    (AlertKind.STILL_WHILE_UP, None, "Julie is up and no movement has been seen for 20 minutes (since 01:54).", True),
    (AlertKind.NOT_IN_BED_BY, None, "Julie is not in bed at 02:14; Julie's routine says in bed by then.", True),
    (AlertKind.NOT_UP_BY, None, "Julie is still in bed at 10:30; Julie's routine says up by then.", True),
    (AlertKind.HELP_REQUESTED, None, "Julie pressed the help button ok-button (bedroom) at 02:14.", False),
    (AlertKind.DEVICE_OFFLINE, "hall-motion", "The hall-motion (hall) sensor in Julie's home has been offline since 02:04.", False),
    (AlertKind.LOW_BATTERY, "bed", "The bed (bedroom) sensor battery is at 12% in Julie's home; please replace it.", False),
]


@pytest.mark.parametrize(("kind", "device", "reason", "words"), SEND_CASES, ids=[c[0].value for c in SEND_CASES])
def test_alert_message_names_the_person_what_happened_the_reason_and_the_local_time(
    kind: AlertKind, device: str | None, reason: str, words: bool
) -> None:
    msg = alert_message(SendAlert(_info(kind, device), SUMMER, SAM, False, reason), PLAN)
    assert msg.title.startswith("Julie")
    assert WHAT_HAPPENED[kind] in msg.title
    if device:
        assert device in msg.title
    assert reason in msg.body
    assert "At 02:14:" in msg.body  # local (BST) time, not UTC 01:14
    assert ("I get up for the loo" in msg.body) is words
    assert kind.value in msg.body.splitlines()[-1]  # how to acknowledge, last
    assert msg.tone == ("alert" if kind.person_safety else "notice")
    assert msg.alert_id == _info(kind, device).id
    assert "not yet acknowledged" not in msg.title


def test_escalation_says_nobody_has_acknowledged_and_you_are_next() -> None:
    msg = alert_message(SendAlert(_info(AlertKind.OUT_OF_BED_TOO_LONG), SUMMER, RESPONDER, True, "r."), PLAN)
    assert msg.title == "Julie: out of bed too long (not yet acknowledged)"
    assert "you are the next contact" in msg.body
    assert "so the calls stop" in msg.body


def test_ack_hint_can_point_at_the_deployments_own_page() -> None:
    decision = SendAlert(_info(AlertKind.HELP_REQUESTED), SUMMER, SAM, False, "r.")
    msg = alert_message(decision, PLAN, ack_hint="Open https://care.example/ack/{alert}")
    assert f"Open https://care.example/ack/{decision.alert.id}, so the calls stop." in msg.body


RESOLVED_CASES = [
    ("person", "Julie pressed the button ok-button (bedroom): I'm OK.", None),
    ("carer", "Resolved by Sam: false alarm: making tea", "false alarm: making tea"),
    ("condition", "Julie is back in bed.", None),
]


@pytest.mark.parametrize(("how", "reason", "outcome"), RESOLVED_CASES, ids=[c[0] for c in RESOLVED_CASES])
def test_all_clear_says_it_is_over_and_why(how: str, reason: str, outcome: str | None) -> None:
    decision = AlertResolved(
        _info(AlertKind.OUT_OF_BED_TOO_LONG), SUMMER, how, reason, "Sam" if outcome else None,  # type: ignore[arg-type]
        outcome, (SAM, RESPONDER),
    )
    msg = all_clear_message(decision, PLAN)
    assert msg.title == "Julie: all clear"
    assert reason in msg.body
    assert "At 02:14:" in msg.body
    assert "out of bed too long" in msg.body
    assert msg.tone == "all_clear"


def test_device_all_clear_names_the_home_and_device() -> None:
    decision = AlertResolved(_info(AlertKind.DEVICE_OFFLINE, "bed"), SUMMER, "condition", "The bed sensor is reporting again.")
    assert all_clear_message(decision, PLAN).title == "Julie's home: bed all clear"


def test_outgoing_calls_the_contact_or_tells_everyone_already_called() -> None:
    info = _info(AlertKind.OUT_OF_BED_TOO_LONG)
    send = SendAlert(info, SUMMER, SAM, False, "r.")
    resolved = AlertResolved(info, SUMMER, "person", "I'm OK.", tell=(SAM, RESPONDER))
    assert [c for c, _ in outgoing(send, PLAN)] == [SAM]
    assert [(c, m.title) for c, m in outgoing(resolved, PLAN)] == [(SAM, "Julie: all clear"), (RESPONDER, "Julie: all clear")]
    assert outgoing(replace(resolved, tell=()), PLAN) == ()
    assert outgoing(AlertRaised(info, SUMMER, "r."), PLAN) == ()
    assert outgoing(AlertAcknowledged(info, SUMMER, "Sam", "Acknowledged by Sam."), PLAN) == ()


def test_messages_fit_a_lock_screen_even_with_long_own_words() -> None:
    chatty = replace(PLAN, in_my_words="I like to potter about at night. " * 20)
    msg = alert_message(SendAlert(_info(AlertKind.STILL_WHILE_UP), SUMMER, RESPONDER, True, SEND_CASES[2][2]), chatty)
    assert len(msg.title) <= 60
    assert len(msg.body.splitlines()) <= 4
    assert len(msg.body) <= 450
    assert "…" in msg.body


def _night_decisions(plan_lines: list[str]) -> list[Decision]:
    out: list[Decision] = []
    run_replay([load_home_config(DATA / "julie.home.yaml")], plan_lines, out.append)
    return out


def test_a_real_night_from_the_engine_becomes_readable_messages() -> None:
    topic = "zigbee2mqtt/julie-12-oak-road"
    lines = [
        f'{{"ts": "2026-01-11T23:00:00+00:00", "topic": "{topic}/bed", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T02:14:00+00:00", "topic": "{topic}/bed", "payload": {{"occupancy": false}}}}',
        f'{{"ts": "2026-01-12T02:15:00+00:00", "topic": "{topic}/hall-motion", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T02:30:00+00:00", "topic": "{topic}/hall-motion", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T02:45:00+00:00", "topic": "{topic}/hall-motion", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T03:20:00+00:00", "topic": "{topic}/bed", "payload": {{"occupancy": true}}}}',
    ]
    sent = [pair for d in _night_decisions(lines) for pair in outgoing(d, PLAN)]
    titles = [m.title for _, m in sent]
    assert titles[0] == "Julie: out of bed too long"
    assert titles[-1] == "Julie: all clear"
    assert "At 02:59:" in sent[0][1].body  # January: London is on UTC
    assert all(c.name in ("Sam (daughter)", "Night responder") for c, _ in sent)


# --- redaction --------------------------------------------------------------------------------

REDACT_CASES = [
    ("json://127.0.0.1:9000/", "json://127.0.0.1:9000/…", ()),
    ("json://127.0.0.1:9000", "json://127.0.0.1:9000/…", ()),
    ("json://user:hunter22@127.0.0.1:9000/hooks/abcd?token=s3cr3t&x=1#frag", "json://127.0.0.1:9000/…", ("user", "hunter22", "hooks", "abcd", "s3cr3t", "frag")),
    ("JSONS://Alice:P%40ssw0rd@Example.COM/notify", "jsons://example.com/…", ("Alice", "P%40ssw0rd", "P@ssw0rd", "notify")),
    ("json://[::1]:9000/secret-path", "json://[::1]:9000/…", ("secret-path",)),
    ("ntfy://tecmon-julie", "ntfy://…", ("tecmon-julie",)),
    ("ntfy://tecmon-julie/", "ntfy://…", ("tecmon-julie",)),
    ("ntfys://user:pass1234@ntfy.example.org:8443/julie-topic?priority=high", "ntfys://ntfy.example.org:8443/…", ("pass1234", "julie-topic")),
    ("tgram://123456789:AAHbotToken_xyz/-1001234567", "tgram://…", ("123456789", "AAHbotToken_xyz", "-1001234567")),
    ("discord://webhook_id_1/webhook_token_2", "discord://…", ("webhook_id_1", "webhook_token_2")),
    ("slack://TokenA/TokenB/TokenC/#night-shift", "slack://…", ("TokenA", "TokenB", "TokenC", "night-shift")),
    ("pover://userkey1@apptoken2", "pover://…", ("userkey1", "apptoken2")),
    ("mailto://carer:mailpass@gmail.com?to=sam.smith@example.com", "mailto://gmail.com/…", ("carer", "mailpass", "sam.smith@example.com")),
    ("twilio://ACsid123:authtok456@+15551234567/+15557654321", "twilio://…", ("ACsid123", "authtok456", "+15551234567")),
    ("https://hooks.example.com/services/T000/B000/XXXX", "https://hooks.example.com/…", ("services", "XXXX")),
    ("json://host.example:99999999/x", "json://…", ("99999999",)),
    ("json://bad host/x", "json://…", ("bad host",)),
    ("not a url at all", "…", ("not a url at all",)),
    ("", "…", ()),
]


@pytest.mark.parametrize(("url", "expected", "secrets"), REDACT_CASES, ids=[c[0] or "empty" for c in REDACT_CASES])
def test_redact_keeps_scheme_and_host_only(url: str, expected: str, secrets: tuple[str, ...]) -> None:
    redacted = redact(url)
    assert redacted == expected
    for secret in secrets:
        assert secret not in redacted


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=5, max_size=20)


@given(user=token, password=token, path=token, query=token)
def test_redact_never_returns_credentials_path_or_query(user: str, password: str, path: str, query: str) -> None:
    for secret in (user, password, path, query):
        assume(secret not in "jsons://notify.example.org:8080/…")
    url = f"jsons://{user}:{password}@notify.example.org:8080/{path}?token={query}"
    assert redact(url) == "jsons://notify.example.org:8080/…"
    assert {user, password, path, query} <= secret_parts(url)


@pytest.mark.parametrize("url", [c[0] for c in REDACT_CASES if c[2]])
def test_every_hidden_fragment_is_known_for_scrubbing(url: str) -> None:
    secrets = secret_parts(url)
    hidden = next(c[2] for c in REDACT_CASES if c[0] == url)
    for secret in hidden:
        assert scrub(f"apprise said: {secret}!", secrets) == "apprise said: …!"


def test_scrub_hides_urls_and_the_secret_fragments_apprise_quotes_without_a_url() -> None:
    url = "tgram://123456789:AAHbotToken_xyz/julie_family_chat"
    text = ("A connection error occurred sending Telegram:@julie_family_chat notification. "
            "POST https://api.telegram.org/bot123456789:AAHbotToken_xyz/sendMessage")
    clean = scrub(text, secret_parts(url))
    assert "julie_family_chat" not in clean
    assert "AAHbotToken_xyz" not in clean
    assert "https://api.telegram.org/…" in clean


# --- delivery with a fake blocking sender -----------------------------------------------------


class FakeSender:
    """Scripted outcomes per URL; anything not scripted succeeds. Thread-safe, like the real one."""

    def __init__(self, script: dict[str, list[SendOutcome | Exception | float]] | None = None) -> None:
        self.script = script or {}
        self.calls: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.running = self.peak = 0

    def __call__(self, url: str, message: Message, timeout_s: float) -> SendOutcome:
        with self.lock:
            self.calls.append((url, message.title, timeout_s))
            step = self.script.get(url, []).pop(0) if self.script.get(url) else SendOutcome(True)
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if isinstance(step, float):  # block like a hung socket, until released or `step` seconds
                self.release.wait(step)
                return SendOutcome(True)
            if isinstance(step, Exception):
                raise step
            return step
        finally:
            with self.lock:
                self.running -= 1


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


FIXED = datetime(2026, 1, 12, 2, 59, tzinfo=UTC)
FAIL = SendOutcome(False, "HTTP 500")


def _notifier(sender: FakeSender, recorder: Recorder | None = None, **settings: float) -> Notifier:
    options = {"timeout_s": 1.0, "retries": 2, "retry_backoff_s": 0.5, "workers": 4, **settings}
    return Notifier(
        NotifySettings.model_validate(options), send=sender, clock=lambda: FIXED,
        sleep=(recorder or Recorder()).sleep,
    )


async def test_first_try_success_is_one_attempt() -> None:
    sender = FakeSender()
    async with _notifier(sender) as notifier:
        result = await notifier.deliver(MESSAGE, RESPONDER)
    assert result == DeliveryResult(MESSAGE.alert_id, "Night responder", True, (
        DeliveryAttempt(MESSAGE.alert_id, "Night responder", "json://127.0.0.1:9000/…", 1, True, None, FIXED,
                        result.attempts[0].seconds),
    ))
    assert sender.calls == [("json://127.0.0.1:9000/", MESSAGE.title, 1.0)]
    assert result.failure() is None


async def test_failures_are_retried_with_doubling_backoff_until_one_succeeds() -> None:
    url = RESPONDER.notify[0]
    sender, recorder = FakeSender({url: [FAIL, FAIL]}), Recorder()
    async with _notifier(sender, recorder) as notifier:
        result = await notifier.deliver(MESSAGE, RESPONDER)
    assert result.delivered
    assert [(a.attempt, a.ok, a.error) for a in result.attempts] == [(1, False, "HTTP 500"), (2, False, "HTTP 500"), (3, True, None)]
    assert recorder.sleeps == [0.5, 1.0]


async def test_retries_are_bounded_and_the_engine_is_told_nobody_was_reached() -> None:
    url = RESPONDER.notify[0]
    sender = FakeSender({url: [FAIL] * 10})
    async with _notifier(sender, retries=3) as notifier:
        result = await notifier.deliver(MESSAGE, RESPONDER)
    assert not result.delivered
    assert [a.attempt for a in result.attempts] == [1, 2, 3, 4]
    assert len(sender.calls) == 4
    assert result.failure() == DeliveryFailed(MESSAGE.alert_id, "Night responder")


async def test_a_hung_send_times_out_each_attempt() -> None:
    url = RESPONDER.notify[0]
    sender = FakeSender({url: [5.0, 5.0]})
    async with _notifier(sender, timeout_s=0.2, retries=1, retry_backoff_s=0) as notifier:
        result = await notifier.deliver(MESSAGE, RESPONDER)
        still_hung = sender.running  # both sends are still blocked: the deliver did not wait for them
    sender.release.set()
    assert still_hung == 2
    assert not result.delivered
    assert [a.error for a in result.attempts] == ["timed out after 0.2s"] * 2
    assert all(a.seconds >= 0.15 for a in result.attempts)


async def test_an_unusable_url_fails_once_without_retrying() -> None:
    url = RESPONDER.notify[0]
    sender = FakeSender({url: [SendOutcome(False, "apprise cannot use this URL", retryable=False)]})
    async with _notifier(sender) as notifier:
        result = await notifier.deliver(MESSAGE, RESPONDER)
    assert [(a.attempt, a.error) for a in result.attempts] == [(1, "apprise cannot use this URL")]


async def test_a_sender_exception_is_a_failed_attempt_that_does_not_quote_the_url() -> None:
    url = "json://user:topsecretpw@127.0.0.1:9000/private-hook"
    sender = FakeSender({url: [RuntimeError(f"boom while posting to {url}")] * 3})
    async with _notifier(sender) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Sam", (url,)))
    assert not result.delivered and len(result.attempts) == 3
    error = result.attempts[0].error or ""
    assert error.startswith("RuntimeError: boom while posting to json://127.0.0.1:9000/…")
    assert "topsecretpw" not in repr(result) and "private-hook" not in repr(result)


async def test_each_channel_is_tried_on_its_own_and_any_success_reaches_the_contact() -> None:
    contact = ContactPlan("Sam", ("ntfy://julie-topic", "json://127.0.0.1:9000/"))
    sender = FakeSender({"ntfy://julie-topic": [FAIL] * 3})
    async with _notifier(sender) as notifier:
        result = await notifier.deliver(MESSAGE, contact)
    assert result.delivered
    assert sorted((a.target, a.attempt, a.ok) for a in result.attempts) == [
        ("json://127.0.0.1:9000/…", 1, True),
        ("ntfy://…", 1, False), ("ntfy://…", 2, False), ("ntfy://…", 3, False),
    ]


async def test_a_contact_without_channels_is_not_reached() -> None:
    async with _notifier(FakeSender()) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Nobody", ()))
    assert result == DeliveryResult(MESSAGE.alert_id, "Nobody", False, ())


async def test_blocking_sends_never_use_more_threads_than_workers() -> None:
    urls = tuple(f"json://127.0.0.1:{9000 + i}/" for i in range(6))
    sender = FakeSender({u: [0.05] for u in urls})
    async with _notifier(sender, workers=2) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Many", urls))
    assert result.delivered and len(result.attempts) == 6
    assert sender.peak <= 2


async def test_metrics_count_contacts_not_reached_on_any_channel() -> None:
    metrics = Metrics()
    url = RESPONDER.notify[0]
    notifier = Notifier(
        NotifySettings(timeout_s=1.0, retries=1, retry_backoff_s=0), send=FakeSender({url: [FAIL, FAIL]}),
        metrics=metrics,
    )
    async with notifier:
        await notifier.deliver(MESSAGE, RESPONDER)
    async with Notifier(send=FakeSender(), metrics=metrics) as reachable:
        await reachable.deliver(MESSAGE, RESPONDER)
    assert metrics.registry.get_sample_value("tecmon_deliveries_failed_total") == 1


def test_backoff_doubles_and_is_capped() -> None:
    notifier = Notifier(NotifySettings(retry_backoff_s=4.0, retries=6))
    try:
        assert [notifier.backoff(n) for n in range(1, 6)] == [4.0, 8.0, 16.0, 30.0, 30.0]
    finally:
        notifier.close()


async def test_defaults_are_the_service_settings_and_an_aware_utc_clock() -> None:
    async with Notifier(send=FakeSender()) as notifier:
        result = await notifier.deliver(MESSAGE, RESPONDER)
    assert notifier.settings == NotifySettings()
    assert result.attempts[0].started_at.utcoffset() == timedelta(0)


# --- the real apprise sender, without network -------------------------------------------------


@pytest.mark.parametrize("url", ["nosuchscheme://SECRETHOST123/SECRETPATH456", "json://", "just-a-token-SECRET789"])
def test_apprise_cannot_parse_is_a_clear_non_retryable_failure_that_logs_no_secret(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = apprise_send(url, MESSAGE, 1.0)
    assert not outcome.ok and not outcome.retryable
    assert (outcome.error or "").startswith("apprise cannot use this URL")
    for secret in ("SECRETHOST123", "SECRETPATH456", "SECRET789"):
        assert secret not in caplog.text
        assert secret not in (outcome.error or "")


@pytest.mark.parametrize(("url", "connect", "read"), [
    ("json://127.0.0.1:9/", 2.5, 2.5),                 # apprise's 4 s defaults follow our budget
    ("json://127.0.0.1:9/?cto=1&rto=30", 1.0, 2.5),   # a shorter value the user gave is kept, a longer one capped
])
def test_apprise_socket_timeouts_follow_the_attempt_budget(url: str, connect: float, read: float) -> None:
    plugin = apprise.Apprise.instantiate(url)
    assert plugin is not None
    _bound_socket_timeouts(plugin, url, 2.5)
    assert (plugin.socket_connect_timeout, plugin.socket_read_timeout) == (connect, read)
    assert plugin.request_timeout == (connect, read)
