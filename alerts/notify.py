"""Delivering alert messages through apprise, one URL at a time, without leaking URLs.

Notification URLs are secrets (`alerts.notify_urls`): every URL that leaves this
module, in a result or a log line, goes through `redact`, and apprise's own log
records are scrubbed as they are made, because apprise names topics, chat ids
and unparseable URLs in warnings and errors.

apprise's `notify()` blocks, and a thread cannot be killed. Each attempt runs on
`alerts.send_pool.SendPool` under a hard deadline (`timeout_s`): past it the
attempt is failed at once (the next attempt or contact goes ahead) and counted,
its thread is replaced, and apprise's own socket timeouts are set to the same
budget so an abandoned thread usually ends soon after. Person-safety alerts go
first and have threads of their own, so stuck notices never hold them up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import apprise

from alerts.events import DeliveryFailed
from alerts.messages import Message, Tone, Urgency
from alerts.notify_urls import (
    CLICK_SCHEMES,
    NTFY_PRIORITY,
    redact,
    scrub,
    secret_parts,
    with_click,
    with_priority,
)
from alerts.plan import ContactPlan
from alerts.send_pool import LOW, NORMAL, URGENT, Abandoned, Lane, NotStarted, SendPool

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from gateway.settings import NotifySettings

__all__ = [
    "CLICK_SCHEMES", "NTFY_PRIORITY", "DeliveryAttempt", "DeliveryResult", "Notifier", "SendOutcome",
    "apprise_send", "redact", "scrub", "secret_parts", "with_click", "with_priority",
]
log = logging.getLogger("tecmon.notify")


_active: Counter[str] = Counter()
"""Secret fragments of every URL being sent right now, from any thread (guarded by `_active_lock`)."""
_active_lock = threading.Lock()
_local = threading.local()


def _active_secrets() -> tuple[str, ...]:
    with _active_lock:
        return tuple(_active)


class _LogScrubber(logging.Filter):
    """Rewrites each record in place before any handler (including apprise's capture) sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must not break sending
            text = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            text += f" ({record.exc_info[0].__name__})"
        record.msg, record.args = scrub(text, _active_secrets()), None
        record.exc_info = record.exc_text = None
        notes: list[str] | None = getattr(_local, "notes", None)
        if notes is not None and record.levelno >= logging.WARNING:
            notes.append(record.msg)
        return True


_SCRUBBED_LOGGERS = ("apprise", "apprise.xmpp", "urllib3.connectionpool")
"""apprise names secrets from WARNING up; urllib3 logs request paths at DEBUG. Logger filters
do not apply to records propagated from child loggers, hence apprise's one child by name."""


def _install_scrubber() -> None:
    for name in _SCRUBBED_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _LogScrubber) for f in target.filters):
            target.addFilter(_LogScrubber())


_install_scrubber()


@contextmanager
def _guarding(url: str, *more: str) -> Iterator[list[str]]:
    """While sending to `url`: scrub its secrets (and those of `more` URLs) from every log record
    and collect warnings."""
    secrets = secret_parts(url).union(*(secret_parts(other) for other in more if other))
    outer = getattr(_local, "notes", None)
    notes: list[str] = []
    with _active_lock:
        _active.update(secrets)
    _local.notes = notes
    try:
        yield notes
    finally:
        _local.notes = outer
        with _active_lock:
            _active.subtract(secrets)
            for gone in [s for s in secrets if _active[s] <= 0]:
                del _active[gone]
        if outer is not None:
            outer.extend(notes)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What one blocking send reported; `retryable=False` when trying again cannot help."""

    ok: bool
    error: str | None = None
    retryable: bool = True


SendFn = Callable[[str, Message, float], SendOutcome]
"""Blocking: (url, message, timeout_s) -> outcome. Runs on a worker thread."""

_NOTIFY_TYPE: dict[Tone, apprise.NotifyType] = {
    "alert": apprise.NotifyType.WARNING,
    "notice": apprise.NotifyType.INFO,
    "all_clear": apprise.NotifyType.SUCCESS,
}


def _bound_socket_timeouts(plugin: object, url: str, budget_s: float) -> None:
    """Same effect as adding `cto`/`rto`, without rewriting the URL; a smaller value given is kept."""
    given = {key.lower() for key, _ in parse_qsl(url.partition("?")[2], keep_blank_values=True)}
    for key, attr in (("cto", "socket_connect_timeout"), ("rto", "socket_read_timeout")):
        current = getattr(plugin, attr, None)
        if isinstance(current, int | float):
            setattr(plugin, attr, min(float(current), budget_s) if key in given else budget_s)


def apprise_send(url: str, message: Message, timeout_s: float) -> SendOutcome:
    """One URL, one `Apprise()`, one try: apprise's own retries and worker threads stay off.

    The acknowledgement link is a credential too, so it is scrubbed like the URL's secrets.
    """
    url = with_click(with_priority(url, message.urgency), message.link)
    with _guarding(url, message.link or "") as notes:
        # async_mode off and service_timeout 0 keep the send on this (bounded) thread.
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            why = notes[-1] if notes else "unknown scheme or missing parts"
            return SendOutcome(False, f"apprise cannot use this URL: {why}", retryable=False)
        _bound_socket_timeouts(plugin, url, timeout_s)
        box = apprise.Apprise(asset=asset)
        box.add(plugin)
        result = box.notify(body=message.body, title=message.title, notify_type=_NOTIFY_TYPE[message.tone])
        if result:
            return SendOutcome(True)
        return SendOutcome(False, notes[-1] if notes else "apprise reported a failure")


def _guarded_send(send: SendFn, url: str, message: Message, timeout_s: float) -> SendOutcome:
    """Whatever the sender raises or reports comes back as an outcome, scrubbed of the URL."""
    link = message.link or ""
    with _guarding(url, link):
        try:
            outcome = send(url, message, timeout_s)
        except Exception as exc:
            outcome = SendOutcome(False, f"{type(exc).__name__}: {exc}")
    if outcome.error is None:
        return outcome
    return replace(outcome, error=scrub(outcome.error, secret_parts(url) | secret_parts(link)))


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One try on one channel; `target` is redacted, `seconds` is wall time spent waiting."""

    alert_id: str
    contact: str
    target: str
    attempt: int
    ok: bool
    error: str | None
    started_at: datetime
    seconds: float


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A contact counts as reached when any one of their channels took the message."""

    alert_id: str
    contact: str
    delivered: bool
    attempts: tuple[DeliveryAttempt, ...]

    def failure(self) -> DeliveryFailed | None:
        """The engine input that moves straight on to the next contact, when nobody was reached."""
        return None if self.delivered else DeliveryFailed(self.alert_id, self.contact)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _log_attempt(attempt: DeliveryAttempt) -> None:
    log.log(
        logging.INFO if attempt.ok else logging.WARNING, "alert %s: %s via %s %s (attempt %d, %.2fs)%s",
        attempt.alert_id, attempt.contact, attempt.target, "delivered" if attempt.ok else "failed",
        attempt.attempt, attempt.seconds, f": {attempt.error}" if attempt.error else "",
    )


BACKOFF_CAP_S = 30.0
"""A retry later than this is no longer useful for someone who may be on the floor."""


PRIORITY: dict[Urgency, int] = {"urgent": URGENT, "normal": NORMAL, "low": LOW}
"""The send queue's order: person-safety alerts first, then their all-clears, then notices."""


class Notifier:
    """Sends one message to one contact on every channel they gave, and says what happened."""

    def __init__(
        self,
        settings: NotifySettings | None = None,
        *,
        send: SendFn = apprise_send,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        if settings is None:
            from gateway.settings import NotifySettings

            settings = NotifySettings()
        self.settings = settings
        self._send, self._clock, self._sleep, self._metrics = send, clock, sleep, metrics
        self.pool = SendPool(settings.workers, settings.alert_workers, settings.stuck_limit,
                             on_abandoned=self._abandoned)
        if metrics is not None:
            from gateway.notify_metrics import notify_metrics

            notify_metrics(metrics).stuck.set_function(self.pool.stuck)

    async def deliver(self, message: Message, contact: ContactPlan) -> DeliveryResult:
        """All channels at once, each retried on its own; done when each has succeeded or given up."""
        groups = await asyncio.gather(*(self._deliver_url(message, contact, url) for url in contact.notify))
        attempts = tuple(a for group in groups for a in group)
        result = DeliveryResult(message.alert_id, contact.name, any(a.ok for a in attempts), attempts)
        if not result.delivered:  # per-contact `tecmon_notifications` is the dispatcher's to count
            log.error("alert %s: %s not reached on any of %d channel(s)",
                      message.alert_id, contact.name, len(contact.notify))
            if self._metrics is not None:
                self._metrics.deliveries_failed.inc()
        return result

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (1, 2, ...): doubling from `retry_backoff_s`."""
        return min(self.settings.retry_backoff_s * 2.0 ** (retry - 1), BACKOFF_CAP_S)

    async def _deliver_url(self, message: Message, contact: ContactPlan, url: str) -> list[DeliveryAttempt]:
        attempts: list[DeliveryAttempt] = []
        for number in range(1, self.settings.retries + 2):
            if number > 1:
                await self._sleep(self.backoff(number - 1))
            attempt, retryable = await self._attempt(message, contact, url, number)
            attempts.append(attempt)
            if attempt.ok or not retryable:
                break
        return attempts

    async def _attempt(
        self, message: Message, contact: ContactPlan, url: str, number: int
    ) -> tuple[DeliveryAttempt, bool]:
        """One try under a hard deadline; a try past it is failed now and left to its thread."""
        timeout, wait = self.settings.timeout_s, self.settings.queue_wait_s
        call = functools.partial(_guarded_send, self._send, url, message, timeout)
        started_at, start = self._clock(), time.monotonic()
        try:
            outcome = await self.pool.run(call, PRIORITY[message.urgency], timeout, wait)
        except (Abandoned, NotStarted) as exc:
            outcome = SendOutcome(False, str(exc))
        attempt = DeliveryAttempt(
            message.alert_id, contact.name, redact(url), number, outcome.ok, outcome.error,
            started_at, time.monotonic() - start,
        )
        _log_attempt(attempt)
        return attempt, outcome.retryable

    def _abandoned(self, lane: Lane) -> None:
        """From the event loop, each time an attempt is given up on at its deadline."""
        if self._metrics is not None:
            from gateway.notify_metrics import notify_metrics

            notify_metrics(self._metrics).abandoned.labels(lane).inc()

    async def warm_up(self) -> None:
        """Load apprise's plugins now, so the first alert after a start is not the one that waits."""
        await self.pool.run(functools.partial(apprise.Apprise.instantiate, "json://localhost"),
                            URGENT, 30.0, 30.0)

    def close(self) -> None:
        """Stop taking work; sends already running finish on their own socket timeouts."""
        self.pool.close()

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()
