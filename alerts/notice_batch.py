"""Device notices to one contact, gathered into one message while many come at once.

(Their all-clears too: when the outage ends, thousands come back together.)

When a regional broker or network goes down, thousands of devices go offline
together, and each home's engine raises its own notice for the same few
service contacts. One message each would bury those contacts, and hold the
notifier's threads, while a person may be waiting for help. So, per contact:
the first notice goes at once and opens a window; the notices that come
within it are held and sent together when it ends (one message: "412 devices
offline in 37 homes since 02:10"), and that opens the next window; a window
with nothing held closes. Every notice is still recorded on its own home's
alert; only the message is shared.

Pure: no clock, no I/O; the caller says what time it is and sends what comes
out. Person-safety alerts never come here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from alerts.decisions import AlertKind

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

DEFAULT_WINDOW = timedelta(seconds=30)
"""Long enough to gather an outage's notices, short enough that an engineer hears of it at once."""
EXAMPLES = 5
"""Homes named in a batch message; the rest are counted, and all are on the alerts page."""

PLURAL: dict[AlertKind, str] = {
    AlertKind.DEVICE_OFFLINE: "devices offline",
    AlertKind.LOW_BATTERY: "batteries low",
    AlertKind.BED_OCCUPIED_TOO_LONG: "bed sensors occupied too long",
    AlertKind.MOTION_SILENT: "motion sensors silent",
}
PLURAL_OVER: dict[AlertKind, str] = {
    AlertKind.DEVICE_OFFLINE: "devices back online",
    AlertKind.LOW_BATTERY: "batteries no longer low",
    AlertKind.BED_OCCUPIED_TOO_LONG: "bed sensors no longer stuck",
    AlertKind.MOTION_SILENT: "motion sensors seeing movement again",
}
SINGULAR_OVER: dict[AlertKind, str] = {
    AlertKind.DEVICE_OFFLINE: "device back online",
    AlertKind.LOW_BATTERY: "battery no longer low",
    AlertKind.BED_OCCUPIED_TOO_LONG: "bed sensor no longer stuck",
    AlertKind.MOTION_SILENT: "motion sensor seeing movement again",
}
SINGULAR: dict[AlertKind, str] = {
    AlertKind.DEVICE_OFFLINE: "device offline",
    AlertKind.LOW_BATTERY: "battery low",
    AlertKind.BED_OCCUPIED_TOO_LONG: "bed sensor occupied too long",
    AlertKind.MOTION_SILENT: "motion sensor silent",
}


@dataclass(frozen=True, slots=True)
class Batch(Generic[K, T]):
    """Notices held for one contact over one window, to go out as one message."""

    key: K
    items: tuple[T, ...]
    opened_at: datetime  # when the notice that opened the window went out


@dataclass
class _Window(Generic[T]):
    opened_at: datetime
    closes_at: datetime
    held: list[T] = field(default_factory=list)


class NoticeBatcher(Generic[K, T]):
    """Per key (a contact): send the first at once, hold the rest until the window ends."""

    def __init__(self, window: timedelta = DEFAULT_WINDOW) -> None:
        self.window = window
        self._open: dict[K, _Window[T]] = {}

    def offer(self, key: K, item: T, now: datetime) -> T | None:
        """The item back when it goes now (no window open for the key); None when held."""
        if self.window <= timedelta(0):
            return item
        current = self._open.get(key)
        if current is None or now >= current.closes_at:
            if current is not None and current.held:
                current.held.append(item)  # due already: it joins the batch about to go
                return None
            self._open[key] = _Window(now, now + self.window)
            return item
        current.held.append(item)
        return None

    def due(self, now: datetime) -> list[Batch[K, T]]:
        """Windows ended by `now`: their held notices as batches (each opening the next window)."""
        batches: list[Batch[K, T]] = []
        for key, current in list(self._open.items()):
            if now < current.closes_at:
                continue
            if not current.held:
                del self._open[key]
                continue
            batches.append(Batch(key, tuple(current.held), current.opened_at))
            self._open[key] = _Window(now, now + self.window)
        return batches

    def drop(self, key: K, match: Callable[[T], bool]) -> bool:
        """Take the held items that `match` out of the key's batch; whether there were any."""
        current = self._open.get(key)
        if current is None:
            return False
        kept = [item for item in current.held if not match(item)]
        dropped = len(kept) < len(current.held)
        current.held = kept
        return dropped

    def flush(self) -> list[Batch[K, T]]:
        """Every held notice now, every window closed: the service is stopping."""
        batches = [Batch(key, tuple(w.held), w.opened_at) for key, w in self._open.items() if w.held]
        self._open.clear()
        return batches

    def next_due(self) -> datetime | None:
        """When `due` next has something to do, or None when no window is open."""
        return min((w.closes_at for w in self._open.values()), default=None)

    def held(self) -> int:
        return sum(len(w.held) for w in self._open.values())


@dataclass(frozen=True, slots=True)
class NoticeLine:
    """What a batch message says of one notice."""

    home: str
    person: str
    kind: AlertKind
    device: str | None
    over: bool = False  # the notice's all-clear

    @property
    def what(self) -> str:
        return (SINGULAR_OVER if self.over else SINGULAR)[self.kind]


def _counted(kinds: Counter[tuple[AlertKind, bool]]) -> str:
    def words(kind: AlertKind, over: bool, n: int) -> str:
        return ((PLURAL_OVER if over else PLURAL) if n > 1 else (SINGULAR_OVER if over else SINGULAR))[kind]

    return ", ".join(f"{n} {words(kind, over, n)}" for (kind, over), n in kinds.most_common())


def batch_words(lines: Sequence[NoticeLine], since: str) -> tuple[str, str]:
    """(title, body) for one batch: counts first, a few homes by name, how to acknowledge.

    `since` is the local time the first of the storm was sent ("02:10").
    """
    homes = {line.home for line in lines}
    in_homes = f"in {len(homes)} home{'s' if len(homes) != 1 else ''}"
    counted = _counted(Counter((line.kind, line.over) for line in lines))
    title = f"{counted} {in_homes}"
    named = [
        f"- {line.person}'s home: {f'{line.device} ' if line.device else ''}{line.what}"
        for line in lines[:EXAMPLES]
    ]
    more = len(lines) - len(named)
    body = [f"{counted} {in_homes} since {since}.", *named]
    if more:
        body.append(f"... and {more} more.")
    body.append("Each is an alert of its own home: acknowledge them in tecmon.")
    return title, "\n".join(body)
