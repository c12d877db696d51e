"""The MQTT edge: the only module that talks to aiomqtt.

It keeps one persistent session with the broker (MQTT 5: `clean_start` off
with a session expiry; 3.1.1: `clean_session` off), so QoS 1 messages sent
while the gateway is reconnecting or restarting wait in the broker for it.
Connection loss becomes a jittered back-off and a re-subscribe, never an
exception for the caller; messages come out as plain `Inbound` records.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.clock import Clock
from gateway.settings import MqttSettings

log = logging.getLogger("tecmon.mqtt")


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime
    qos: int


def subscriptions(prefix: str) -> list[str]:
    """Device state and availability for every home under the prefix."""
    return [f"{prefix}/+/+", f"{prefix}/+/+/availability"]


def home_subscriptions(prefix: str, homes: Iterable[str]) -> list[str]:
    """Device state and availability of these homes only (a worker's share of them)."""
    return [topic for home in homes for topic in (f"{prefix}/{home}/+", f"{prefix}/{home}/+/availability")]


SUBSCRIBE_BATCH = 500
"""Topic filters per SUBSCRIBE packet: 100,000 homes' filters go out in 400 packets, not 200,000."""


def _tls(settings: MqttSettings) -> aiomqtt.TLSParameters | None:
    if not settings.tls:
        return None
    return aiomqtt.TLSParameters(
        ca_certs=str(settings.ca_file) if settings.ca_file else None,
        certfile=str(settings.cert_file) if settings.cert_file else None,
        keyfile=str(settings.key_file) if settings.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )


def make_client(settings: MqttSettings) -> aiomqtt.Client:
    """A client with a persistent session for the configured protocol version."""
    password = settings.password.get_secret_value() if settings.password else None
    common: dict[str, object] = {
        "hostname": settings.host,
        "port": settings.port,
        "identifier": settings.client_id,
        "username": settings.username,
        "password": password,
        "keepalive": settings.keepalive_s,
        "tls_params": _tls(settings),
        "timeout": 10.0,
    }
    if settings.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = settings.session_expiry_s
        return aiomqtt.Client(
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            **common,  # type: ignore[arg-type]
        )
    return aiomqtt.Client(
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=False,
        **common,  # type: ignore[arg-type]
    )


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


READ_CHUNK = 64 * 1024
"""Bytes taken from the socket per `recv`: a few hundred device messages, a few ms of work."""
PACKETS_PER_READ = 1000
"""Then other tasks get their turn (the timers, the API): a read callback lasts a few ms at most."""
YIELD_EVERY = 256
"""Messages handed on before the consumer lets the event loop run other tasks (about 10 ms)."""
_PUBACK = 0x40


class _FastReader:
    """The session's PUBLISH packets read straight from paho's socket, in bulk.

    Stock aiomqtt costs about as much per message as everything tecmon does with
    it: a `recv` system call per header byte, MQTT 5 properties parsed into
    objects nobody reads, a paho message, an aiomqtt message and a topic object
    each, a task and an `asyncio.wait` per message taken from its queue, and a
    PUBACK written (the socket's writer registered and removed) per message.
    paho still owns the connection, every other packet type and QoS 2; for this
    session only:
    - `recv` fills a 64 KB buffer that paho's small reads are served from, and
      the read callback goes on while the buffer still holds bytes;
    - a PUBLISH at QoS 0 or 1 becomes an `Inbound` at once (one received time per
      read), its properties skipped (tecmon uses none; topic aliases are never
      enabled, so the broker sends none);
    - the PUBACKs of one read go out as one write, once that read's messages are
      queued: acknowledged on receipt, as paho does;
    - the consumer takes every queued message per wake-up.
    """

    def __init__(self, client: aiomqtt.Client, clock: Clock) -> None:
        self._client = client
        self._paho: Any = cast(Any, client)._client
        self._clock = clock
        self._v5 = self._paho._protocol == paho.MQTTv5
        self.queue: deque[Inbound] = deque()
        self.ready = asyncio.Event()
        self._buf, self._pos = b"", 0
        self._acks = bytearray()
        self._now: datetime | None = None
        self._paho_publish = self._paho._handle_publish
        self._aiomqtt_open: Callable[..., None] = self._paho.on_socket_open
        self._paho._sock_recv = self._sock_recv
        self._paho._handle_publish = self._handle_publish
        self._paho.on_socket_open = self._on_socket_open
        self._paho.on_message = self._on_paho_message  # QoS 2, which paho still delivers itself

    def watch_disconnect(self) -> None:
        """Wake the consumer when the session ends (set after connecting: aiomqtt renews it)."""
        self._client._disconnected.add_done_callback(self._ended)

    def _ended(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # seen here, so it is not reported as never retrieved
        self.ready.set()

    def disconnected(self) -> BaseException | None:
        future = self._client._disconnected
        if not future.done():
            return None
        return future.exception() or aiomqtt.MqttError("Disconnected")

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._aiomqtt_open(client, userdata, sock)  # its reader and keep-alive task first...
        loop = self._client._loop
        loop.call_soon_threadsafe(loop.add_reader, sock.fileno(), self._on_readable)  # ...then ours

    def _on_readable(self) -> None:
        p = self._paho
        self._now = None
        try:
            for _ in range(PACKETS_PER_READ):
                if p.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                if self._pos < len(self._buf):
                    continue
                sock = p._sock
                if sock is None or not (hasattr(sock, "pending") and sock.pending() > 0):
                    break
            else:  # bytes left in the buffer, which the socket will not signal again: later, in turn
                self._client._loop.call_soon(self._on_readable)
        except Exception as exc:  # a broken pipe or the like: the session is over
            if not self._client._disconnected.done():
                self._client._disconnected.set_exception(exc)
        finally:
            if self._acks:
                acks, self._acks = bytes(self._acks), bytearray()
                if p._sock is not None:
                    p._packet_queue(_PUBACK, acks, 0, 0)
            if self.queue:
                self.ready.set()

    def _sock_recv(self, bufsize: int) -> bytes:
        pos, buf = self._pos, self._buf
        if pos >= len(buf):
            sock = self._paho._sock
            if sock is None:
                raise ConnectionError("self._sock is None")
            try:
                buf = sock.recv(READ_CHUNK)
            except ssl.SSLWantReadError as err:
                raise BlockingIOError() from err
            except ssl.SSLWantWriteError as err:
                self._paho._call_socket_register_write()
                raise BlockingIOError() from err
            if not buf:
                return b""
            self._buf, pos = buf, 0
        end = pos + bufsize
        self._pos = end if end < len(buf) else len(buf)
        return buf[pos:end]

    def _handle_publish(self) -> MQTTErrorCode:
        packet = self._paho._in_packet
        command, data = packet["command"], packet["packet"]
        qos = (command & 0x06) >> 1
        if qos == 2:
            return cast(MQTTErrorCode, self._paho_publish())
        try:
            end = 2 + ((data[0] << 8) | data[1])
            topic = data[2:end].decode("utf-8", "replace")
            if qos:
                mid, end = (data[end] << 8) | data[end + 1], end + 2
                self._acks += bytes((_PUBACK, 2, mid >> 8, mid & 0xFF))
            if self._v5:  # skip the properties: a variable-length size, then that many bytes
                size, shift = 0, 0
                while True:
                    byte = data[end]
                    end += 1
                    size |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                end += size
        except IndexError:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if end > len(data):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        now = self._now
        if now is None:
            now = self._now = self._clock.now()
        self.queue.append(Inbound(topic, bytes(data[end:]), now, qos))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _on_paho_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        topic = message._topic.decode("utf-8", "replace")
        self.queue.append(Inbound(topic, bytes(message.payload), self._clock.now(), message.qos))
        self.ready.set()


class MqttSource:
    """Yields every device message, reconnecting for as long as it is iterated."""

    def __init__(
        self,
        settings: MqttSettings,
        clock: Clock,
        on_connection: Callable[[bool], None] = lambda up: None,
        homes: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_connection = on_connection
        self.homes = homes  # None: every home under the prefix; else these homes' topics only
        self.connected = False
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self._client: aiomqtt.Client | None = None  # the ingest session, which also publishes

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Publish on the ingest session (asking a light to blink); False when it cannot.

        Never raises: a message that cannot go out is logged, and whoever asked
        carries on (the engine calls the contacts when the person does not answer).
        """
        client = self._client
        if client is None or not self.connected:
            log.warning("MQTT not connected: %s not published", topic)
            return False
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            log.warning("MQTT publish to %s failed: %s", topic, exc)
            return False
        return True

    async def messages(self) -> AsyncIterator[Inbound]:
        while True:
            try:
                async for inbound in self._session():
                    yield inbound
            except aiomqtt.MqttError as exc:
                self._set_connected(False)
                delay = self._backoff.next_delay()
                log.warning(
                    "MQTT %s:%s unavailable (%s); retrying in %.1fs",
                    self.settings.host,
                    self.settings.port,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _session(self) -> AsyncIterator[Inbound]:
        client = make_client(self.settings)
        reader = _FastReader(client, self.clock)
        async with client:
            reader.watch_disconnect()
            await self._subscribe(client, self._topics())
            self._set_connected(True)
            self._backoff.reset()
            log.info(
                "MQTT connected to %s:%s (MQTT %s), subscribed under %s/",
                self.settings.host,
                self.settings.port,
                self.settings.protocol,
                self.settings.prefix,
            )
            self._client = client
            try:
                queue = reader.queue
                while True:
                    for _ in range(min(len(queue), YIELD_EVERY)):
                        yield queue.popleft()
                    if queue:  # the timers, the API and the writer get their turn
                        await asyncio.sleep(0)
                        continue
                    reader.ready.clear()
                    if queue:
                        continue
                    failure = reader.disconnected()
                    if failure is not None:
                        raise aiomqtt.MqttError("Disconnected during message iteration") from failure
                    await reader.ready.wait()
            finally:
                self._client = None

    def _topics(self) -> list[str]:
        if self.homes is None:
            return subscriptions(self.settings.prefix)
        return home_subscriptions(self.settings.prefix, self.homes())

    async def _subscribe(self, client: aiomqtt.Client, topics: list[str]) -> None:
        qos = self.settings.qos
        for start in range(0, len(topics), SUBSCRIBE_BATCH):
            await client.subscribe([(topic, qos) for topic in topics[start : start + SUBSCRIBE_BATCH]])

    async def follow_homes(self, added: Iterable[str], removed: Iterable[str]) -> None:
        """Subscribe to homes given to this session, unsubscribe from homes taken away.

        Without a session nothing is sent: the next session subscribes to `homes()` afresh.
        """
        client = self._client
        if client is None or self.homes is None:
            return
        try:
            await self._subscribe(client, home_subscriptions(self.settings.prefix, added))
            gone = home_subscriptions(self.settings.prefix, removed)
            for start in range(0, len(gone), SUBSCRIBE_BATCH):
                await client.unsubscribe(gone[start : start + SUBSCRIBE_BATCH])
        except aiomqtt.MqttError as exc:
            log.warning("MQTT subscriptions not changed (%s); the next session subscribes afresh", exc)

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self.on_connection(up)
