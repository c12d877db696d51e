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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import aiomqtt
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


class MqttSource:
    """Yields every device message, reconnecting for as long as it is iterated."""

    def __init__(
        self,
        settings: MqttSettings,
        clock: Clock,
        on_connection: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_connection = on_connection
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
        async with make_client(self.settings) as client:
            for topic in subscriptions(self.settings.prefix):
                await client.subscribe(topic, qos=self.settings.qos)
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
                async for message in client.messages:
                    yield self._inbound(message)
            finally:
                self._client = None

    def _inbound(self, message: aiomqtt.Message) -> Inbound:
        payload = message.payload
        if isinstance(payload, bytes | bytearray):
            raw = bytes(payload)
        else:
            raw = b"" if payload is None else str(payload).encode()
        return Inbound(message.topic.value, raw, self.clock.now(), message.qos)

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self.on_connection(up)
