"""The notifier's retries, backoff, timeouts and worker threads, against a scripted fake sender.

A contact counts as reached when any of their channels takes the message; one
who is not reached is reported back to the engine. The real apprise sender is
checked too, without network: unusable URLs fail at once without logging a
secret, and its socket timeouts stay within each attempt's budget.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import apprise
import pytest

from alerts.events import DeliveryFailed
from alerts.messages import Message
from alerts.notify import (
    DeliveryAttempt,
    DeliveryResult,
    Notifier,
    SendOutcome,
    _bound_socket_timeouts,
    apprise_send,
)
from alerts.plan import ContactPlan
from gateway.metrics import Metrics
from gateway.settings import NotifySettings
from tests.unit.notify_support import MESSAGE, RESPONDER

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
