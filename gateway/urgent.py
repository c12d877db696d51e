"""Which messages take the urgent path, and how each is applied once.

A press for help, the answer to "are you OK?" (the same button) and an exit
door opening must never wait behind another home's chatter or garbage. The
gateway knows from the home configurations which topics those are: every
`button` device and every `door` device with `exit: true`. A second MQTT
session subscribes to exactly those topics (see `gateway.mqtt`), and its
messages are applied ahead of the bulk session's.

Both sessions see those topics (the bulk session subscribes to every device).
The rule that makes each message count once:

- a topic is *owned* by the urgent session from its SUBACK on: from then on the
  urgent session is its source, so one device's messages come in one stream,
  in order. What the urgent session delivered before that SUBACK (a kept
  session's queue, right after a reconnect) is dropped: the bulk session
  carried those while the topic was not owned;
- each message the urgent session applies is remembered (its payload, for
  `RETAIN_S`), and the bulk session's copy of it, arriving later behind the
  backlog, is dropped when it comes. Two equal payloads on one topic are the
  same reading, so matching by payload never loses or doubles one;
- any other bulk message on an owned topic is dropped, except in a grace period
  after the SUBACK (`GRACE_S`): a message published before the urgent session
  subscribed reached the bulk session only and may still be in its backlog.
  Around a SUBACK the bulk copy may also come first; it is applied and
  remembered for `BULK_FIRST_S`, and the urgent copy, if it comes, is dropped;
- while the urgent session is down, or the broker refused the subscription,
  the bulk session carries the topic as it does every other;
- a topic no longer urgent (home removed, door no longer an exit) is the bulk
  session's again at once;
- a topic that floods the urgent session itself (a broken hub sending garbage
  on its own button's topic, more than `URGENT_BURST` messages at once or
  `URGENT_PER_S` a second on average) is handed back to the bulk session for
  `DEMOTED_S`, so it cannot hold up another home's press either.

Pure: time is given (monotonic seconds), nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from alerts.events import EventKind
from alerts.homeconfig import HomeConfig

GRACE_S = 120.0
"""How long after subscribing the bulk session may still hold messages published before it."""
RETAIN_S = 300.0
"""How long a message applied from the urgent session waits for the bulk session's copy."""
BULK_FIRST_S = 5.0
"""How long a bulk copy applied first (around a SUBACK) waits for its urgent copy; a repeat of
the same payload that soon is the same reading to the engine (a press within 10 s is one)."""
KEPT_PER_TOPIC = 64
URGENT_BURST = 30
URGENT_PER_S = 2.0
DEMOTED_S = 600.0


def urgent_topics(cfg: HomeConfig, prefix: str) -> frozenset[str]:
    """The state topics of a home's buttons and exit doors."""
    base = f"{prefix.rstrip('/')}/{cfg.home}/"
    return frozenset(
        base + device.id
        for device in cfg.devices
        if device.kind is EventKind.BUTTON or (device.kind is EventKind.DOOR and device.exit)
    )


Seen = dict[str, deque[tuple[bytes, float]]]
"""Per topic, the payloads applied from one session whose copy from the other is still to come."""


@dataclass(frozen=True, slots=True)
class _Owned:
    after: int  # the urgent inbox's arrival count at the SUBACK: later arrivals are current
    since: float  # monotonic seconds at the SUBACK


@dataclass
class UrgentRouter:
    """Which session a message on a topic is applied from; see the module docstring."""

    grace_s: float = GRACE_S
    retain_s: float = RETAIN_S
    wanted: set[str] = field(default_factory=set)  # every urgent topic of every home loaded
    _by_home: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _owned: dict[str, _Owned] = field(default_factory=dict)
    _applied: Seen = field(default_factory=dict)  # from the urgent session, the bulk copy to come
    _bulk_first: Seen = field(default_factory=dict)  # from the bulk session, its urgent copy may come
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)  # topic -> (tokens, at)
    demoted: dict[str, float] = field(default_factory=dict)  # topic -> until (monotonic seconds)
    on_demote: Callable[[str], None] = lambda topic: None

    def set_home(self, home: str, topics: Iterable[str]) -> tuple[set[str], set[str]]:
        """A home's urgent topics now; returns (topics to subscribe, topics to unsubscribe)."""
        new, old = set(topics), set(self._by_home.pop(home, ()))
        if new:
            self._by_home[home] = tuple(new)  # a quarter of a frozenset's size, for 100,000 homes
        added, removed = new - old, old - new
        self.wanted |= added
        self.wanted -= removed
        for topic in removed:
            self._owned.pop(topic, None)
            self.demoted.pop(topic, None)
        return added, removed

    def to_subscribe(self) -> set[str]:
        """Every urgent topic the urgent session should hold now (all but the demoted ones)."""
        return self.wanted - self.demoted.keys()

    def promote_due(self, now: float) -> set[str]:
        """Demoted topics whose time is up: the urgent session may take them again."""
        due = {topic for topic, until in self.demoted.items() if until <= now}
        for topic in due:
            del self.demoted[topic]
        return due & self.wanted

    def subscribed(self, topics: Iterable[str], after: int, now: float) -> None:
        """The urgent session's SUBACK granted these, when its inbox had had `after` arrivals."""
        for topic in topics:
            if topic in self.wanted and topic not in self.demoted:
                self._owned[topic] = _Owned(after, now)

    def lost(self) -> None:
        """The urgent session is down: the bulk session carries every topic until it is back."""
        self._owned.clear()

    def owned(self, topic: str) -> bool:
        return topic in self._owned

    def from_urgent(self, topic: str, payload: bytes, arrival: int, now: float) -> bool:
        """Whether to apply a message the urgent session delivered (its `arrival` count)."""
        owned = self._owned.get(topic)
        if owned is None or arrival <= owned.after:
            return False  # the bulk session carries it (or carried it while the topic was not owned)
        if _take(self._bulk_first, topic, payload, now, BULK_FIRST_S):
            return False  # the bulk session's copy came first (around a SUBACK) and was applied
        if self._flooding(topic, now):
            del self._owned[topic]
            self.demoted[topic] = now + DEMOTED_S
            self._tokens.pop(topic, None)
            self.on_demote(topic)
            return False
        _remember(self._applied, topic, payload, now)
        return True

    def from_bulk(self, topic: str, payload: bytes, now: float) -> bool:
        """Whether to apply a message the bulk session delivered (on one of the urgent topics)."""
        if _take(self._applied, topic, payload, now, self.retain_s):
            return False
        owned = self._owned.get(topic)
        if owned is not None and now - owned.since >= self.grace_s:
            return False
        _remember(self._bulk_first, topic, payload, now)
        return True

    def _flooding(self, topic: str, now: float) -> bool:
        tokens, at = self._tokens.get(topic, (float(URGENT_BURST), now))
        tokens = min(float(URGENT_BURST), tokens + (now - at) * URGENT_PER_S)
        if tokens < 1.0:
            return True
        self._tokens[topic] = (tokens - 1.0, now)
        return False



def _remember(seen: Seen, topic: str, payload: bytes, now: float) -> None:
    kept = seen.get(topic)
    if kept is None:
        kept = seen[topic] = deque(maxlen=KEPT_PER_TOPIC)
    kept.append((payload, now))


def _take(seen: Seen, topic: str, payload: bytes, now: float, max_age: float) -> bool:
    """Take the twin of this copy out of `seen` (if it is there and not older than `max_age`)."""
    kept = seen.get(topic)
    if kept is None:
        return False
    while kept and now - kept[0][1] > max_age:
        kept.popleft()
    found = next((i for i, (other, _) in enumerate(kept) if other == payload), None)
    if found is not None:
        del kept[found]
    if not kept:
        del seen[topic]
    return found is not None
