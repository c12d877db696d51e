"""Publishing replay JSONL to a real MQTT broker, in real time, faster, or flat out.

Whatever produced the lines (a scenario, a persona week, a converted dataset)
this sends them as a Zigbee2MQTT bridge would: same topics, same payloads, in
the same order, QoS 1 by default. Publishes are pipelined (many in flight on
one connection, in order) because waiting for each PUBACK before sending the
next caps a client at a few thousand messages a second.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import aiomqtt

WINDOW = 128  # publishes in flight per connection (paho and aiomqtt scan this list per ack)


@dataclass(frozen=True, slots=True)
class Message:
    ts: datetime
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class PublishReport:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or just `HOST`, port 1883)."""
    host, _, port = text.rpartition(":")
    if not host:
        return text, 1883
    if not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def payload_bytes(payload: object) -> bytes:
    """A JSON payload as compact text; a bare string (availability `offline`) as itself."""
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def with_prefix(topic: str, prefix: str | None) -> str:
    """Move a topic under another base (the first segment), e.g. a per-test namespace."""
    if prefix is None:
        return topic
    _, _, rest = topic.partition("/")
    return f"{prefix}/{rest}"


def messages_from_lines(lines: Iterable[str], prefix: str | None = None) -> Iterator[Message]:
    """The MQTT messages in replay lines; acknowledgements and blank lines are not MQTT."""
    for text in lines:
        if not text.strip():
            continue
        obj = json.loads(text)
        if "topic" not in obj:
            continue
        ts = datetime.fromisoformat(obj["ts"])
        yield Message(ts, with_prefix(obj["topic"], prefix), payload_bytes(obj["payload"]))


class Pacer:
    """Sleeps so that message times map to wall time at `speed` (0: no waiting at all)."""

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.clock = clock
        self.first: tuple[datetime, float] | None = None

    async def wait_for(self, ts: datetime) -> None:
        if self.speed <= 0:
            return
        if self.first is None:
            self.first = (ts, self.clock())
            return
        due = self.first[1] + (ts - self.first[0]).total_seconds() / self.speed
        delay = due - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)


class Pipeline:
    """Publishes in order on one client with up to `window` awaiting their PUBACK."""

    def __init__(self, client: aiomqtt.Client, qos: int, window: int = WINDOW) -> None:
        self.client = client
        self.qos = qos
        self.slots = asyncio.Semaphore(window)
        self.pending: set[asyncio.Task[None]] = set()
        self.failures: list[BaseException] = []
        self.sent = 0

    async def send(self, topic: str, payload: bytes) -> None:
        await self.slots.acquire()
        task = asyncio.ensure_future(self.client.publish(topic, payload, qos=self.qos))
        self.pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        self.slots.release()
        if task.cancelled():
            return
        if task.exception() is not None:
            self.failures.append(task.exception())  # type: ignore[arg-type]
        else:
            self.sent += 1

    async def drain(self) -> None:
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        if self.failures:
            raise self.failures[0]


def client_for(host: str, port: int, window: int = WINDOW, identifier: str | None = None) -> aiomqtt.Client:
    client = aiomqtt.Client(host, port, identifier=identifier, max_inflight_messages=window,
                            max_queued_outgoing_messages=0, timeout=30)
    client.pending_calls_threshold = window + 1  # many pending publishes is the point, not a leak
    return client


async def publish_messages(
    messages: Iterable[Message], host: str, port: int, speed: float = 0.0, qos: int = 1,
    on_sent: Callable[[int], None] | None = None,
) -> PublishReport:
    """Publish in order, paced by the messages' own times; returns count and wall time."""
    pacer = Pacer(speed)
    started = time.monotonic()
    async with client_for(host, port) as client:
        pipe = Pipeline(client, qos)
        for count, message in enumerate(messages, start=1):
            await pacer.wait_for(message.ts)
            await pipe.send(message.topic, message.payload)
            if on_sent is not None:
                on_sent(count)
        await pipe.drain()
    return PublishReport(pipe.sent, time.monotonic() - started)


async def publish_lines(
    lines: Iterable[str], host: str, port: int, speed: float = 0.0, qos: int = 1,
    prefix: str | None = None, on_sent: Callable[[int], None] | None = None,
) -> PublishReport:
    """Publish replay JSONL lines (a scenario, a persona week, a converted dataset)."""
    return await publish_messages(messages_from_lines(lines, prefix), host, port, speed, qos, on_sent)
