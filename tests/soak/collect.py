"""What the soak saw: the phone sink's deliveries, the record in PostgreSQL, the events expected there.

Deliveries are tied to alerts by the acknowledgement link in each message
(the run sets `public_url`): the link's token names the alert, and an
alert's id names its home, kind and the instant it was raised. The token is
only read, never verified; the sink is a test's phone, not the service.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway.clock import ScaledClock
from gateway.decoding import DeadLetter, MessageDecoder
from gateway.dispatch import LATE_NOTICE
from simulator.publisher import Message
from tests.soak.faults import World
from tests.soak.homes import Night

LINK = re.compile(r"/ack/([\w-]+)\.([\w-]+)\.([\w-]+)")
EventKey = tuple[str, str, int]  # device, kind, value
SETTLE_S = 120.0


@dataclass(frozen=True, slots=True)
class Delivery:
    real: float  # Unix time it reached the sink
    home: str
    contact: str  # c0, c1, ... (family and responders) or s0 (service desk)
    alert: str | None  # None: an all-clear (it carries no link)
    title: str
    first_line: str

    @property
    def late(self) -> bool:
        return self.title.endswith("(late)")

    @property
    def key(self) -> tuple[str | None, str, str, str]:
        """One notification: the same alert, contact, step time and wording (late or not)."""
        return (self.alert, f"{self.home}/{self.contact}", self.title.removesuffix(" (late)"), self.first_line)


@dataclass
class Observed:
    deliveries: list[Delivery] = field(default_factory=list)
    expected_events: dict[str, Counter[EventKey]] = field(default_factory=dict)
    message_events: list[tuple[float, str, EventKey]] = field(default_factory=list)  # (due, home, key)
    stored_events: dict[str, Counter[EventKey]] = field(default_factory=dict)
    raised: list[tuple[str, str, str, datetime, bool]] = field(default_factory=list)  # alert, home, kind, at, late
    resolved: Counter[tuple[str, datetime]] = field(default_factory=Counter)  # (home, minute) -> steps
    rows: dict[str, list[tuple[str, str, int, str, str]]] = field(default_factory=dict)  # for explaining a miss
    settle_s: float = 0.0


def alert_of(body: str) -> str | None:
    found = LINK.search(body)
    if found is None:
        return None
    claims = json.loads(base64.urlsafe_b64decode(found.group(2) + "=" * (-len(found.group(2)) % 4)))
    alert = claims.get("alert")
    return alert if isinstance(alert, str) else None


def deliveries(world: World) -> list[Delivery]:
    out = []
    with world.sink.lock:
        received = list(world.sink.received)
    for monotonic_at, path, body in received:
        home, _, contact = path.strip("/").partition("/")
        message = str(body.get("message", ""))
        real = time.time() - (time.monotonic() - monotonic_at)
        out.append(Delivery(real, home, contact, alert_of(message), str(body.get("title", "")),
                            step_line(message)))
    return out


def step_line(message: str) -> str:
    """The line that says which step this is ("At 02:10: ..."): the first, or the one after the
    notice a late step opens with, which two late steps of one alert share."""
    lines = message.split("\n")
    if lines[0] == LATE_NOTICE and len(lines) > 1:
        return lines[1]
    return lines[0]


def expected_events(nights: Sequence[Night], messages: Sequence[Message], clock: ScaledClock,
                    prefix: str, observed: Observed) -> None:
    """Decode every published message as the gateway does: the events it must store."""
    decoder = MessageDecoder([n.config for n in nights], prefix)
    per_home: dict[str, Counter[EventKey]] = {n.config.home: Counter() for n in nights}
    for message in messages:
        try:
            decoded = decoder.decode_message(message.topic, message.payload, message.ts)
        except DeadLetter:
            continue
        for event in decoded.events:
            key = (event.device, str(event.kind), int(event.value))
            per_home[event.home][key] += 1
            observed.message_events.append((clock.real_time_of(message.ts), event.home, key))
    observed.expected_events = per_home


def stored_count(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("select count(*) from events").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return -1


def _alerts_answered(nights: Sequence[Night], got: list[Delivery],
                     skip: Callable[[datetime], bool] = lambda at: False) -> bool:
    delivered = Counter((d.home, d.alert.split(":")[2]) for d in got if d.alert and d.alert.count(":") >= 2)
    wanted = Counter((n.config.home, e.kind) for n in nights for e in n.raised
                     if e.alert in n.called and not skip(e.at))
    return all(delivered[key] >= 1 for key in wanted)


async def settle(world: World, nights: Sequence[Night], held: Sequence[Night], clock: ScaledClock,
                 messages: Sequence[Message], skip: Callable[[datetime], bool], prefix: str = "soak") -> Observed:
    """Wait (bounded) until every expected alert has reached the sink and the store stops growing.

    `held` are the nights held to their ground truth (not changed by a fault);
    `skip` says which alert instants need not be waited for (the notifier was down).
    """
    observed, began = Observed(), time.monotonic()
    expected_events(nights, messages, clock, prefix, observed)
    want = sum(sum(c.values()) for c in observed.expected_events.values())
    last, still_since, short = -2, time.monotonic(), None
    while time.monotonic() - began < SETTLE_S:
        count = await asyncio.to_thread(stored_count, world.postgres.url)
        if count != last:
            last, still_since = count, time.monotonic()
        if short is None and (count >= want or time.monotonic() - still_since > 5):
            short = await asyncio.to_thread(homes_short, world.postgres.url, observed)  # the store is done
        if short is not None and _alerts_answered([n for n in held if n.config.home not in short],
                                                  deliveries(world), skip):
            break
        await asyncio.sleep(0.5)
    observed.settle_s = round(time.monotonic() - began, 1)
    observed.deliveries = deliveries(world)
    return observed


def homes_short(url: str, observed: Observed) -> set[str]:
    """Homes with fewer events stored than published (a SIGKILL took some): not held to ground truth."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute("select home, count(*) from events group by home").fetchall()
    stored: dict[str, int] = {str(home): int(n) for home, n in rows}
    return {home for home, c in observed.expected_events.items() if stored.get(home, 0) < sum(c.values())}


def read_store(url: str, observed: Observed) -> Observed:
    with psycopg.connect(url, connect_timeout=10) as conn:
        for home, device, kind, value, at, received in conn.execute(
            "select home, device, kind, value, at, received_at from events order by received_at, id"
        ):
            observed.stored_events.setdefault(home, Counter())[(device, kind, int(value))] += 1
            observed.rows.setdefault(home, []).append(
                (device, kind, int(value), str(at)[11:19], str(received)[11:19]))
        for alert, home, kind, at, late in conn.execute(
            "select alert, home, kind, at, late from alert_steps where step = 'raised'"
        ):
            at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            observed.raised.append((alert, home, kind, at.astimezone(UTC), bool(late)))
        for home, at in conn.execute("select home, at from alert_steps where step = 'resolved'"):
            at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            observed.resolved[(home, at.astimezone(UTC).replace(second=0, microsecond=0))] += 1
    return observed


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
