"""The NATS edge: the only module that talks to nats-py.

It turns the library's quirks into typed results the rest of the gateway
can reason about: a partition is read as `StreamMessage`s (with the stream
sequence, which is the checkpoint, and the time NATS stored the message,
which is the instant the engine applies it at, so every instance that ever
reads the message applies it identically); a request ends as a `Reply` with
one of four outcomes instead of three exception types; a lost connection is
retried inside, never raised to the caller.

Partitions are read with one replicated durable pull consumer each
(`tecmon-p<N>`), made again by each new owner at the sequence after its
checkpoint (kept in PostgreSQL with the writes); they need no
acknowledgement: the stream keeps every message for its retention, and the
checkpoint, not the server, says what has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from gateway.cluster_config import STREAM, SUBJECT_ROOT, partition_subject, stream_config

log = logging.getLogger("tecmon.nats")


@dataclass(frozen=True, slots=True)
class StreamMessage:
    subject: str
    payload: bytes
    seq: int  # the stream sequence: a partition's checkpoint is the last one applied
    stored_at: datetime  # when the stream stored it (UTC)


@dataclass(frozen=True, slots=True)
class StreamState:
    messages: int
    first_seq: int
    last_seq: int
    leader: str | None = None  # the node that stores first and answers for the stream


@dataclass(frozen=True, slots=True)
class Reply:
    """How a request ended: `ok` (with the answer), `timeout`, `no_responders` or `unavailable`."""

    outcome: Literal["ok", "timeout", "no_responders", "unavailable"]
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


Handler = Callable[[bytes], Awaitable[bytes]]


class NatsLink:
    """One connection to the cluster, reconnecting to any node for as long as it lives."""

    def __init__(self, servers: list[str], name: str = "tecmon-gateway",
                 on_connection: Callable[[bool], None] = lambda up: None, replicas: int = 3) -> None:
        self.servers = servers
        self.replicas = replicas
        self.name = name
        self.on_connection = on_connection
        self._nc: Client | None = None

    async def connect(self) -> None:
        async def disconnected() -> None:
            self.on_connection(False)

        async def reconnected() -> None:
            self.on_connection(True)

        async def error(exc: Exception) -> None:
            log.warning("NATS: %s", exc)

        self._nc = await nats.connect(
            servers=self.servers, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            allow_reconnect=True, connect_timeout=5, disconnected_cb=disconnected,
            reconnected_cb=reconnected, error_cb=error,
        )
        self.on_connection(True)

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError("NatsLink used before connect()")
        return self._nc

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()
        self._nc = None

    async def ensure_stream(self, partitions: int, max_age_h: float = 48.0, replicas: int = 3,
                            within_s: float = 60.0) -> None:
        """Create the ingest stream, or leave an existing one as it is (idempotent).

        A JetStream API call can time out while the cluster is electing a leader or another
        instance is creating the stream: asked again until `within_s`; any other error is final.
        """
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            try:
                await self._ensure_stream(partitions, max_age_h, replicas)
                return
            except nats.errors.TimeoutError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("NATS: the JetStream API timed out while making sure of the stream; asking again")

    async def _ensure_stream(self, partitions: int, max_age_h: float, replicas: int) -> None:
        conf = stream_config(partitions, max_age_h)
        js = self.nc.jetstream()
        try:
            await js.stream_info(STREAM)
            return
        except nats.js.errors.NotFoundError:
            pass
        try:
            await js.add_stream(StreamConfig(
                name=STREAM, subjects=[f"{SUBJECT_ROOT}.>"], retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE, num_replicas=replicas, max_age=max_age_h * 3600,
                discard=DiscardPolicy.OLD, duplicate_window=120.0, description=str(conf["description"]),
            ))
        except nats.js.errors.BadRequestError:  # instances starting together: another one made it first
            await js.stream_info(STREAM)  # it is there now (or this raises what is really wrong)
        await self._until_led()

    async def _until_led(self, seconds: float = 15.0) -> None:
        """Until the new stream's replicas have elected a leader: a consumer asked for before
        that waits out the API's timeout (5 s) and must be asked for again."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
                if (await self.stream_state()).leader:
                    return
            await asyncio.sleep(0.1)

    async def stream_state(self) -> StreamState:
        info = await self.nc.jetstream().stream_info(STREAM)
        state = info.state
        leader = info.cluster.leader if info.cluster is not None else None
        return StreamState(state.messages, state.first_seq, state.last_seq, leader)

    async def read_partition(self, partition: int, start_seq: int, epoch: int = 0,
                             batch: int = 256) -> AsyncIterator[StreamMessage]:
        """Every message of `partition` from `start_seq` on, for as long as it is iterated.

        A consumer lost to a node failure or a leader change is made again from
        the sequence after the last one yielded, so nothing is skipped or repeated.
        """
        next_seq = max(1, start_seq)
        while True:
            try:
                durable, stale = f"tecmon-p{partition}-e{epoch}", (f"tecmon-p{partition}-e{epoch - 1}",)
                async for message in self._consume(partition_subject(partition), next_seq, batch,
                                                   durable, stale):
                    if message.seq < next_seq:  # a redelivery, or a consumer that kept its old place
                        continue
                    next_seq = message.seq + 1
                    yield message
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                log.warning("NATS partition %d: %s %s; resuming at %d", partition,
                            type(exc).__name__, exc, next_seq)
                await asyncio.sleep(0.5)

    async def read_all(self, count: int, start_seq: int = 1,
                       idle_s: float = 10.0) -> AsyncIterator[StreamMessage]:
        """Up to `count` messages of every partition from `start_seq`, stopping when idle (tools, tests)."""
        sub = await self._subscribe(f"{SUBJECT_ROOT}.>", start_seq)
        got = 0
        try:
            while got < count:
                try:
                    msgs = await sub.fetch(min(256, count - got), timeout=idle_s)
                except nats.errors.TimeoutError:
                    return
                for msg in msgs:
                    got += 1
                    yield _stream_message(msg)
        finally:
            await sub.unsubscribe()

    async def _consume(self, subject: str, start_seq: int, batch: int, durable: str,
                       stale: tuple[str, ...]) -> AsyncIterator[StreamMessage]:
        sub = await self._durable(durable, subject, start_seq, stale)
        idle = 0
        try:
            while True:
                try:
                    msgs = await sub.fetch(batch, timeout=1.0)
                except TimeoutError:  # nats' own or asyncio's (both mean an idle second), not a loss
                    idle += 1
                    if idle % 2 == 0:  # a consumer lost with a node also answers with silence
                        await self.nc.jetstream().consumer_info(STREAM, durable)
                    continue
                idle = 0
                for msg in msgs:
                    yield _stream_message(msg)
        finally:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()

    async def _durable(self, name: str, subject: str, start_seq: int,
                       stale: tuple[str, ...] = ()) -> nats.js.JetStreamContext.PullSubscription:
        """The partition's consumer, made again at `start_seq` (the checkpoint is the truth).

        Replicated like the stream, so it survives the loss of a node; an
        ephemeral (single-replica) consumer dies with its node and then only
        times out, which looks like an idle partition. Named by the lease's
        epoch, and the previous epoch's deleted: an instance that lost the
        lease but has not noticed yet cannot pull messages meant for the new owner.
        """
        js = self.nc.jetstream()
        for old in (name, *stale):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(STREAM, old)
        await js.add_consumer(STREAM, ConsumerConfig(
            durable_name=name, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start_seq), ack_policy=AckPolicy.NONE, filter_subject=subject,
            num_replicas=self.replicas, max_waiting=4, inactive_threshold=600.0,
        ))
        return await js.pull_subscribe_bind(durable=name, stream=STREAM)

    async def _subscribe(self, subject: str, start_seq: int) -> nats.js.JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq),
            ack_policy=AckPolicy.NONE, inactive_threshold=30.0, filter_subject=subject,
        )
        return await self.nc.jetstream().pull_subscribe(subject, durable=None, stream=STREAM, config=config)

    # -- requests: commands routed to a partition's owner --------------------------------

    async def request(self, subject: str, data: bytes, timeout_s: float) -> Reply:
        try:
            msg = await self.nc.request(subject, data, timeout=timeout_s)
        except nats.errors.NoRespondersError:
            return Reply("no_responders")
        except nats.errors.TimeoutError:
            return Reply("timeout")
        except (nats.errors.Error, OSError):
            return Reply("unavailable")
        return Reply("ok", msg.data)

    async def serve(self, subject: str, handler: Handler) -> Callable[[], Awaitable[None]]:
        """Answer requests on `subject` with `handler`; returns what stops answering."""

        async def on_request(msg: Msg) -> None:
            try:
                answer = await handler(msg.data)
            except Exception as exc:  # an answer, not silence: the caller is waiting
                log.exception("command on %s failed", msg.subject)
                answer = f'{{"error": "{type(exc).__name__}"}}'.encode()
            await msg.respond(answer)

        sub = await self.nc.subscribe(subject, cb=on_request)
        return sub.unsubscribe

    async def publish(self, subject: str, data: bytes) -> bool:
        """Core NATS publish (reaches MQTT subscribers as topic a/b/c); False when it cannot."""
        try:
            await self.nc.publish(subject, data)
        except (nats.errors.Error, OSError) as exc:
            log.warning("NATS publish to %s failed: %s", subject, exc)
            return False
        return True


def _stream_message(msg: Msg) -> StreamMessage:
    meta = msg.metadata
    stored = meta.timestamp
    if stored.tzinfo is None:
        stored = stored.replace(tzinfo=UTC)
    return StreamMessage(msg.subject, msg.data, meta.sequence.stream, stored)
