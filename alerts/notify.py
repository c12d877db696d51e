"""Delivering alert messages through apprise, one URL at a time, without leaking URLs.

Notification URLs are secrets: they carry tokens, passwords, phone numbers and
(for ntfy) a topic anyone can subscribe to. So every URL that leaves this module,
in a result or a log line, goes through `redact`, and apprise's own log records
are scrubbed as they are made, because apprise names topics, chat ids and
unparseable URLs in warnings and errors.

apprise's `notify()` blocks, and a thread cannot be killed. Each attempt runs on
a bounded pool under `asyncio.wait_for`, and apprise's own socket timeouts are
set to the same budget so an abandoned thread also ends soon after.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, unquote_plus

import apprise

from alerts.events import DeliveryFailed
from alerts.messages import Message, Tone, Urgency
from alerts.plan import ContactPlan

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from gateway.settings import NotifySettings

log = logging.getLogger("tecmon.notify")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_HOST = re.compile(r"(?:[A-Za-z0-9\-_]+(?:\.[A-Za-z0-9\-_]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_HOST_SCHEMES = frozenset(
    f"{base}{tls}"
    for base in ("http", "json", "xml", "form", "ntfy", "gotify", "mqtt", "mailto", "mmost", "rocket",
                 "apprise", "signal", "ncloud", "nctalk", "hassio")
    for tls in ("", "s")
)
"""Schemes whose host part is a real server; elsewhere (tgram, discord, ...) it is a token."""
_SECRET_MIN = 4
"""Shorter fragments are not secrets worth hiding, and scrubbing them would garble every message."""


def _split(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, userinfo, host[:port], rest after the host) or None when it is not URL-shaped."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, _, hostport = rest[:cut].rpartition("@")
    return scheme.lower(), userinfo, hostport, rest[cut:]


def _host_kept(scheme: str, hostport: str, tail: str) -> bool:
    """ntfy's `ntfy://topic` puts the topic where the host goes; only `ntfy://host/topic` has a host."""
    if scheme not in _HOST_SCHEMES or not _HOST.fullmatch(hostport):
        return False
    return scheme not in ("ntfy", "ntfys") or bool(tail.partition("#")[0].partition("?")[0].strip("/"))


def redact(url: str) -> str:
    """Scheme and host (with port) only: `json://127.0.0.1:9000/…`, `tgram://…`, `ntfy://…`."""
    parts = _split(url)
    if parts is None:
        return "…"
    scheme, _, hostport, tail = parts
    return f"{scheme}://{hostport.lower()}/…" if _host_kept(scheme, hostport, tail) else f"{scheme}://…"


def secret_parts(url: str) -> frozenset[str]:
    """Every fragment of the URL that `redact` hides, raw and percent-decoded, for scrubbing text."""
    parts = _split(url)
    if parts is None:
        return frozenset(p for p in {url.strip(), *url.split()} if len(p) >= _SECRET_MIN)
    scheme, userinfo, hostport, tail = parts
    rest, _, fragment = tail.partition("#")  # apprise puts channels there: slack://a/b/c/#night-shift
    path, _, query = rest.partition("?")
    pieces = {url.strip(), tail, userinfo, *userinfo.split(":"), *path.split("/"), *fragment.split("/")}
    if not _host_kept(scheme, hostport, tail):
        pieces |= {hostport, *hostport.split(":")}
    pieces |= {value or key for key, value in parse_qsl(query, keep_blank_values=True)}
    pieces |= {decoded(p) for p in list(pieces) for decoded in (unquote, unquote_plus)}
    return frozenset(p for p in pieces if len(p) >= _SECRET_MIN)


def scrub(text: str, secrets: frozenset[str] | tuple[str, ...] = ()) -> str:
    """Redact any URL in the text, then blank out known secret fragments (longest first)."""
    text = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


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


CLICK_SCHEMES = frozenset({"ntfy", "ntfys"})
"""Channels whose notification opens a URL when tapped (apprise's ntfy `click=` parameter)."""


def _with_param(url: str, key: str, value: str) -> str:
    """`url` with its query's `key` (any case) replaced by `key=value`, appended last."""
    base, hashmark, fragment = url.partition("#")
    address, _, query = base.partition("?")
    kept = [p for p in query.split("&") if p and p.partition("=")[0].lower() != key]
    kept.append(f"{key}={quote(value, safe='')}")
    return f"{address}?{'&'.join(kept)}{hashmark}{fragment}"


def with_click(url: str, link: str | None) -> str:
    """The URL to send this one message with: for ntfy, tapping the notification opens `link`.

    Built per message, never stored: the contact's own URL stays as they gave it, and any
    `click=` of theirs gives way to the acknowledgement link for this alert.
    """
    parts = _split(url)
    if link is None or parts is None or parts[0] not in CLICK_SCHEMES:
        return url
    return _with_param(url, "click", link)


NTFY_PRIORITY: dict[Urgency, str | None] = {"urgent": "max", "low": "low", "normal": None}
"""apprise's ntfy `priority=`: max is ntfy's 5 (a long vibration, past do-not-disturb on most
phones); low is 2 (no sound); normal leaves whatever the contact's URL says."""


def with_priority(url: str, urgency: Urgency) -> str:
    """For ntfy, the URL at the message's urgency; a contact's own `priority=` gives way.

    Like `with_click`, built per message on a copy: the stored URL (a secret) is unchanged.
    """
    parts = _split(url)
    value = NTFY_PRIORITY[urgency]
    if value is None or parts is None or parts[0] not in CLICK_SCHEMES:
        return url
    return _with_param(url, "priority", value)


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
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="tecmon-notify")

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
        timeout = self.settings.timeout_s
        call = functools.partial(_guarded_send, self._send, url, message, timeout)
        started_at, start = self._clock(), time.monotonic()
        try:
            running = asyncio.get_running_loop().run_in_executor(self._pool, call)
            outcome = await asyncio.wait_for(running, timeout)
        except TimeoutError:
            outcome = SendOutcome(False, f"timed out after {timeout:g}s")
        attempt = DeliveryAttempt(
            message.alert_id, contact.name, redact(url), number, outcome.ok, outcome.error,
            started_at, time.monotonic() - start,
        )
        _log_attempt(attempt)
        return attempt, outcome.retryable

    async def warm_up(self) -> None:
        """Load apprise's plugins now, so the first alert after a start is not the one that waits."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, apprise.Apprise.instantiate, "json://localhost")

    def close(self) -> None:
        """Stop taking work; sends already running finish on their own socket timeouts."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()
