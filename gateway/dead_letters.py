"""What of a dead letter is kept, and how many are kept, so a flood cannot fill the record.

Every dead letter is counted (`tecmon_dead_letters_total`), always. Keeping one
(the in-memory list behind `/dead-letters`, the database row, the log line) is
bounded: a broken device resending the same garbage every second, or an
account flooding a topic, must not fill the database, the log or the buffer
that also holds the events the safety record needs. So each topic has a token
bucket, and all topics together share one; what is refused is counted in
`tecmon_dead_letters_not_kept_total` instead.

The kept text is made storable everywhere: PostgreSQL refuses NUL in text and
any UTF-8 encoder refuses lone surrogates, and a refused row would lose the very
record of the problem; control characters in a topic would let a sender forge
log lines.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

PAYLOAD_KEPT = 2000  # bytes of a payload kept for inspection
TOPIC_KEPT = 300  # characters of a topic kept (MQTT allows 65,535 bytes)

_UNSAFE_IN_TOPIC = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_PAYLOAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_topic(topic: str) -> str:
    """One printable line: control, bidirectional-override and surrogate characters escaped."""
    cut = topic[:TOPIC_KEPT]
    return _UNSAFE_IN_TOPIC.sub(_escape, cut) + ("…" if len(topic) > TOPIC_KEPT else "")


def safe_payload(payload: bytes) -> str:
    """The payload's start as text, at most `PAYLOAD_KEPT` characters; bytes that are not
    UTF-8, NULs and other control characters shown as escapes."""
    text = _UNSAFE_IN_PAYLOAD.sub(_escape, payload[:PAYLOAD_KEPT].decode("utf-8", errors="backslashreplace"))
    return text[:PAYLOAD_KEPT] + ("…" if len(payload) > PAYLOAD_KEPT or len(text) > PAYLOAD_KEPT else "")


def safe_reason(reason: str) -> str:
    return _UNSAFE_IN_TOPIC.sub(_escape, reason)


@dataclass(frozen=True, slots=True)
class KeepLimits:
    """Token buckets: `burst` kept at once, then `per_minute` on average."""

    per_topic_burst: int = 20
    per_topic_per_minute: float = 6.0
    overall_burst: int = 1000
    overall_per_minute: float = 600.0
    topics: int = 10_000  # buckets remembered; the least recently used is forgotten


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: datetime) -> None:
        self.tokens, self.at = tokens, at

    def take(self, now: datetime, burst: int, per_minute: float) -> bool:
        elapsed = max(0.0, (now - self.at).total_seconds())
        self.tokens = min(float(burst), self.tokens + elapsed * per_minute / 60.0)
        self.at = max(self.at, now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class KeepGate:
    """Says whether a dead letter on a topic is kept; pure apart from its buckets (time is given)."""

    def __init__(self, limits: KeepLimits | None = None) -> None:
        self.limits = limits or KeepLimits()
        self._topics: OrderedDict[str, _Bucket] = OrderedDict()
        self._overall: _Bucket | None = None

    def keep(self, topic: str, now: datetime) -> bool:
        limits = self.limits
        bucket = self._topics.pop(topic, None) or _Bucket(float(limits.per_topic_burst), now)
        self._topics[topic] = bucket  # most recently used last
        if len(self._topics) > limits.topics:
            self._topics.popitem(last=False)
        if not bucket.take(now, limits.per_topic_burst, limits.per_topic_per_minute):
            return False
        if self._overall is None:
            self._overall = _Bucket(float(limits.overall_burst), now)
        return self._overall.take(now, limits.overall_burst, limits.overall_per_minute)
