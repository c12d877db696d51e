"""Notification URLs as secrets: what may be shown of one, and per-message copies of it.

Notification URLs carry tokens, passwords, phone numbers and (for ntfy) a topic
anyone can subscribe to. `redact` is what may leave the notifier (results, log
lines, the record); `secret_parts` and `scrub` hide the rest wherever text might
quote it. `with_click` and `with_priority` build the URL one message is sent
with, never stored: the contact's own URL stays as they gave it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, unquote_plus

from alerts.messages import Urgency

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
