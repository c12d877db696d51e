"""The MQTT edge: the only module that talks to aiomqtt.

Two persistent sessions with the broker (MQTT 5: `clean_start` off with a
session expiry; 3.1.1: `clean_session` off), so QoS 1 messages sent while the
gateway is reconnecting or restarting wait in the broker for it:

- the *bulk* session subscribes to every device of every home;
- the *urgent* session subscribes to exactly the topics of the buttons and exit
  doors (`gateway.urgent`): a press for help, the answer to "are you OK?" and
  an exit door opening come on a TCP connection of their own, so they never
  queue behind another home's chatter or a flood of garbage in the broker, the
  kernel or this process, and the pump applies them ahead of bulk messages.

Each session reads its socket into a bounded inbox. When the bulk inbox is full
the session stops reading its socket, so TCP pushes back to the broker (which
queues within its own limits, and then drops) instead of this process buffering
without bound. The pump applies messages in short slices and yields between
them, so deadlines, the dispatcher, the API and the urgent session's socket get
the event loop at least every few milliseconds, whatever the flood.

Both sessions read PUBLISH packets straight from paho's socket in bulk (see
`InboxClient`): stock aiomqtt costs about as much per message as everything tecmon
does with it. With `homes` (a worker of `tecmon serve --workers N`) the bulk
session subscribes to exactly those homes' topics.

Connection loss becomes a jittered back-off and a re-subscribe, never an
exception for the caller; messages come out as plain `Inbound` records, stamped
with the time they are applied (so application order and recorded time agree,
and a rebuild from the record is exact).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable

import aiomqtt

from gateway.clock import Clock
from gateway.inbox import Apply, Inbound, Pump
from gateway.mqtt_client import MAX_PACKET_BYTES, PACKETS_PER_WAKE, READ_CHUNK, InboxClient, make_client
from gateway.settings import MqttSettings
from gateway.urgent import UrgentRouter

__all__ = [
    "MAX_PACKET_BYTES", "PACKETS_PER_WAKE", "READ_CHUNK", "Backoff", "Inbound", "MqttSource",
    "home_subscriptions", "make_client", "subscriptions",
]

log = logging.getLogger("tecmon.mqtt")

PROMOTE_EVERY_S = 30.0
"""How often the urgent session looks for demoted topics whose time is up."""
SUBSCRIBE_CHUNK = 500
"""Topic filters per SUBSCRIBE packet: 100,000 homes' filters go out in 400 packets, not 200,000."""


def subscriptions(prefix: str) -> list[str]:
    """Device state and availability for every home under the prefix."""
    return [f"{prefix}/+/+", f"{prefix}/+/+/availability"]


def home_subscriptions(prefix: str, homes: Iterable[str]) -> list[str]:
    """Device state and availability of these homes only (a worker's share of them)."""
    return [topic for home in homes for topic in (f"{prefix}/{home}/+", f"{prefix}/{home}/+/availability")]


class Backoff:
    """Full-jitter exponential back-off, so many gateways do not reconnect in step."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None) -> None:
        self.low, self.high, self.attempt = low, high, 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.high, self.low * 2**self.attempt)
        self.attempt += 1
        return float(self.low + self._rng.random() * max(0.0, ceiling - self.low))

    def reset(self) -> None:
        self.attempt = 0


class MqttSource:
    """The two sessions, kept connected for as long as `run` runs, and the pump between them and
    the runtime: urgent messages first, bulk messages in slices, each applied once."""

    def __init__(
        self,
        settings: MqttSettings,
        clock: Clock,
        on_connection: Callable[[bool], None] = lambda up: None,
        homes: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.homes = homes  # None: every home under the prefix; else these homes' topics only
        self.clock = clock
        self.on_connection = on_connection
        self.connected = False  # the bulk session: every home's messages
        self.urgent_connected = False
        self.router = UrgentRouter()
        self.router.on_demote = self._demoted
        self.pump = Pump(clock, self.router)
        self._to_subscribe: set[str] = set()
        self._to_unsubscribe: set[str] = set()
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None  # the bulk session
        self._urgent_client: aiomqtt.Client | None = None

    # -- which topics are urgent ---------------------------------------------------------

    def set_urgent(self, home: str, topics: frozenset[str]) -> None:
        """A home's buttons and exit doors now (empty: removed); subscribed as soon as connected."""
        added, removed = self.router.set_home(home, topics)
        if added or removed:
            self._to_subscribe |= added  # in place: 100,000 homes load one by one
            self._to_subscribe -= removed
            self._to_unsubscribe |= removed
            self._to_unsubscribe -= added
            self._changed.set()

    @property
    def urgent_subscribed(self) -> bool:
        """The urgent session is up and holds every urgent topic it should."""
        return self.urgent_connected and not self._to_subscribe

    def _demoted(self, topic: str) -> None:
        log.error("MQTT topic %s floods the urgent session: it comes on the bulk session for a while",
                  topic[:300])
        self._to_unsubscribe.add(topic)
        self._to_subscribe.discard(topic)
        self._changed.set()

    # -- publishing ----------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Publish (asking a light to blink); False when it cannot.

        On the urgent session when it is up (it is never busy), else on the bulk one.
        Never raises: a message that cannot go out is logged, and whoever asked
        carries on (the engine calls the contacts when the person does not answer).
        """
        client = self._urgent_client or self._client  # each is set only while its session is up
        if client is None:
            log.warning("MQTT not connected: %s not published", topic)
            return False
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            log.warning("MQTT publish to %s failed: %s", topic, exc)
            return False
        return True

    # -- running -------------------------------------------------------------------------

    async def run(self, apply: Apply) -> None:
        """Keep both sessions up and hand every message to `apply`, urgent ones first, forever."""
        sessions = [asyncio.create_task(self._keep(urgent=True), name="mqtt-urgent"),
                    asyncio.create_task(self._keep(urgent=False), name="mqtt-bulk")]
        try:
            await self.pump.run(apply)
        finally:
            for task in sessions:
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)

    async def messages(self) -> AsyncIterator[Inbound]:
        """Every message in the order `run` applies them (for tools and tests; unbounded)."""
        out: asyncio.Queue[Inbound] = asyncio.Queue()
        task = asyncio.create_task(self.run(out.put_nowait))
        try:
            while True:
                yield await out.get()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _keep(self, urgent: bool) -> None:
        """One session, reconnecting with back-off for as long as it runs."""
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        while True:
            try:
                await self._session(urgent, backoff)
            except aiomqtt.MqttError as exc:
                self._set_connected(urgent, False)
                delay = backoff.next_delay()
                log.warning("MQTT %s:%s unavailable for the %s session (%s); retrying in %.1fs",
                            self.settings.host, self.settings.port, "urgent" if urgent else "bulk",
                            exc, delay)
                await asyncio.sleep(delay)

    async def _session(self, urgent: bool, backoff: Backoff) -> None:
        inbox = self.pump.urgent if urgent else self.pump.bulk
        client = make_client(self.settings, inbox, "-urgent" if urgent else "")
        assert isinstance(client, InboxClient)
        async with client:
            if urgent:
                self._urgent_client = client
                self._to_subscribe = self.router.to_subscribe()  # again: a kept session may lack some
            else:
                await self._subscribe(client, self._topics())
                self._client = client
            self._set_connected(urgent, True)
            backoff.reset()
            log.info("MQTT connected to %s:%s (MQTT %s), %s session subscribed under %s/",
                     self.settings.host, self.settings.port, self.settings.protocol,
                     "urgent" if urgent else "bulk", self.settings.prefix)
            try:
                if urgent:
                    await self._keep_subscribed(client)
                else:
                    await client.closed()
            finally:
                if urgent:
                    self._urgent_client = None
                else:
                    self._client = None

    def _topics(self) -> list[str]:
        if self.homes is None:
            return subscriptions(self.settings.prefix)
        return home_subscriptions(self.settings.prefix, self.homes())

    async def _subscribe(self, client: aiomqtt.Client, topics: list[str]) -> None:
        qos = self.settings.qos
        for start in range(0, len(topics), SUBSCRIBE_CHUNK):
            await client.subscribe([(topic, qos) for topic in topics[start : start + SUBSCRIBE_CHUNK]])

    async def follow_homes(self, added: Iterable[str], removed: Iterable[str]) -> None:
        """Subscribe the bulk session to homes given to it, unsubscribe from homes taken away.

        Without a session nothing is sent: the next session subscribes to `homes()` afresh.
        """
        client = self._client
        if client is None or self.homes is None:
            return
        try:
            await self._subscribe(client, home_subscriptions(self.settings.prefix, added))
            gone = home_subscriptions(self.settings.prefix, removed)
            for start in range(0, len(gone), SUBSCRIBE_CHUNK):
                await client.unsubscribe(gone[start : start + SUBSCRIBE_CHUNK])
        except aiomqtt.MqttError as exc:
            log.warning("MQTT subscriptions not changed (%s); the next session subscribes afresh", exc)

    async def _keep_subscribed(self, client: InboxClient) -> None:
        """Subscribe and unsubscribe the urgent topics as homes change, until the connection is lost."""
        closed = asyncio.ensure_future(client.closed())
        try:
            while True:
                await self._sync_subscriptions(client)
                self._changed.clear()
                if self._to_subscribe or self._to_unsubscribe:
                    continue
                changed = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait({closed, changed}, timeout=PROMOTE_EVERY_S,
                                   return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if closed.done():
                    closed.result()  # raises MqttError
                self._to_subscribe |= self.router.promote_due(time.monotonic())
        finally:
            closed.cancel()

    async def _sync_subscriptions(self, client: InboxClient) -> None:
        qos = self.settings.qos
        while self._to_unsubscribe:
            batch = list(itertools.islice(self._to_unsubscribe, SUBSCRIBE_CHUNK))
            await client.unsubscribe(batch)
            self._to_unsubscribe.difference_update(batch)
        while self._to_subscribe:
            batch = list(itertools.islice(self._to_subscribe, SUBSCRIBE_CHUNK))
            codes = await client.subscribe([(topic, qos) for topic in batch])
            granted = [t for t, code in zip(batch, codes, strict=False) if _granted(code)]
            self.router.subscribed(granted, client.suback_arrivals, time.monotonic())
            self._to_subscribe.difference_update(batch)
            if not self._to_subscribe:
                self._to_subscribe = set()  # an emptied set keeps its table: 200,000 slots
            if len(granted) < len(batch):
                log.error("MQTT broker refused the urgent session %d of %d topics (e.g. %s): they come "
                          "on the bulk session", len(batch) - len(granted), len(batch),
                          next(t for t in batch if t not in granted))

    def _set_connected(self, urgent: bool, up: bool) -> None:
        if urgent:
            self.urgent_connected = up
            if not up:
                self.router.lost()
            return
        if up != self.connected:
            self.connected = up
            self.on_connection(up)


def _granted(code: object) -> bool:
    """A SUBACK's answer for one topic: a granted QoS (3.1.1) or a reason code under 0x80 (5)."""
    value = code if isinstance(code, int) else getattr(code, "value", 0x80)
    return isinstance(value, int) and value < 0x80
