"""A minimal MQTT 3.1.1 QoS 1 publisher on asyncio streams, for the load generator only.

Why not aiomqtt here: through aiomqtt/paho each publish costs on the order of
100 µs of Python bookkeeping (a task, a pending-call scan, a property object
per acknowledgement, an in-flight list scan), so one process tops out at a
few thousand messages a second and the load generator, not the gateway,
becomes what is measured. This writer only publishes: it frames PUBLISH
packets itself, writes them in batches, and counts PUBACKs, keeping at most
`window` unacknowledged. Everything that must be faithful rather than fast
(scenarios, persona nights, dataset replays) goes through aiomqtt.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

CONNECT, CONNACK, PUBLISH_QOS1, PUBACK = 0x10, 0x20, 0x32, 0x40
PINGREQ, PINGRESP, DISCONNECT = 0xC0, 0xD0, 0xE0


class WireError(ConnectionError):
    """The broker refused the connection or broke the protocol."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    body = _text("MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big") + _text(client_id)
    return bytes([CONNECT]) + _varint(len(body)) + body


def publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """A QoS 1 PUBLISH; `topic` is already UTF-8."""
    size = 2 + len(topic) + 2 + len(payload)
    return b"".join((bytes([PUBLISH_QOS1]), _varint(size), len(topic).to_bytes(2, "big"), topic,
                     packet_id.to_bytes(2, "big"), payload))


class WirePublisher:
    """One connection: batched QoS 1 publishes with a bounded number awaiting PUBACK."""

    def __init__(self, window: int = 2000) -> None:
        self.window = window
        self.acked = 0
        self.sent = 0
        self._ids = itertools.cycle(range(1, 65536))
        self._room = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int, client_id: str) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self._writer.write(connect_packet(client_id))
        head = await self._reader.readexactly(4)
        if head[0] != CONNACK or head[3] != 0:
            raise WireError(f"broker refused the connection (CONNACK {head.hex()})")
        self._task = asyncio.ensure_future(self._read_acks())

    async def _read_acks(self) -> None:
        assert self._reader is not None
        while True:
            kind = (await self._reader.readexactly(1))[0] & 0xF0
            size, shift = 0, 0
            while True:
                byte = (await self._reader.readexactly(1))[0]
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if size:
                await self._reader.readexactly(size)
            if kind == PUBACK:
                self.acked += 1
                self._room.set()
            elif kind != PINGRESP:
                raise WireError(f"unexpected packet type {kind:#x} from the broker")

    async def publish(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Send a batch in order, waiting first for room in the window."""
        batch = [publish_packet(t.encode(), next(self._ids), p) for t, p in messages]
        while self.sent - self.acked + len(batch) > self.window and self.sent > self.acked:
            self._room.clear()
            await self._wait_room()
        assert self._writer is not None
        self._writer.write(b"".join(batch))
        self.sent += len(batch)
        await self._writer.drain()

    async def _wait_room(self) -> None:
        assert self._task is not None
        waiter = asyncio.ensure_future(self._room.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # the reader failed: raise its error here
            raise WireError("the broker closed the connection")

    async def ping(self) -> None:
        assert self._writer is not None
        self._writer.write(bytes([PINGREQ, 0]))
        await self._writer.drain()

    async def close(self) -> None:
        """Wait for every PUBACK, then disconnect cleanly."""
        while self.acked < self.sent:
            self._room.clear()
            await self._wait_room()
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.write(bytes([DISCONNECT, 0]))
            await self._writer.drain()
            self._writer.close()
            await self._writer.wait_closed()
