"""`ingest: nats`: one gateway instance among several, owning a share of the partitions.

The instance loads every home file but runs only the homes of partitions it
holds a lease on (`gateway/leases.py`); the others are parked. Taking a
partition: its homes are rebuilt from the stored record (as at a restart,
`gateway.recovery.recover`, on a runtime of their own), then moved into the
live runtime, and the partition's stream is consumed from the checkpoint
stored with the last rows. Losing one (fenced, or rebalanced away): its
consumer stops, its homes are parked again and nothing more of it is written
or sent. Messages from NATS enter `Runtime.ingest` exactly as MQTT ones do.

Every notification waits for its partition's rows (the alert step that
decided it) to be stored under the current epoch, and for the lease to be
valid; a fenced instance sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from alerts.homeconfig import HomeConfig
from alerts.lifecycle import home_of
from alerts.messages import Message
from alerts.notify import DeliveryResult, Notifier
from alerts.plan import ContactPlan
from gateway.cluster_config import mqtt_topic_of
from gateway.cluster_store import Fenced, FencedWriter, PartitionHistory
from gateway.commands import Applied, ClusterCommands, Command, LocalCommands
from gateway.home_admin import HomeProblem
from gateway.leases import Lease, LeaseManager, application_name
from gateway.mqtt import Inbound
from gateway.nats import NatsLink
from gateway.partitions import partition_of
from gateway.recovery import recover
from gateway.runtime import Runtime
from gateway.snapshots import SnapshotTaker, engine_version
from gateway.store.base import Store, StoreUnavailable

if TYPE_CHECKING:
    from gateway.service import Service

log = logging.getLogger("tecmon.cluster")


def default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class TakeoverReport:
    partition: int
    homes: int
    events: int
    late: int
    seconds: float
    from_snapshot: int = 0


@dataclass
class ClusterState:
    """What the API and the tests can see of this instance's share."""

    instance: str
    partitions: int
    held: list[int] = field(default_factory=list)
    takeovers: list[TakeoverReport] = field(default_factory=list)


class FencedNotifier:
    """The notifier, behind the lease: a step is stored (fenced) before anyone is called for it."""

    def __init__(self, inner: Notifier, member: ClusterMember) -> None:
        self.inner, self.member = inner, member

    async def deliver(self, message: Message, contact: ContactPlan) -> DeliveryResult:
        if not await self.member.may_notify(home_of(message.alert_id)):
            log.error("%s: not sent to %s, this instance no longer owns the home", message.alert_id,
                      contact.name)
            return DeliveryResult(message.alert_id, contact.name, False, ())
        return await self.inner.deliver(message, contact)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@dataclass(frozen=True, slots=True)
class _Parked:
    config: HomeConfig


class HomesAtOwner:
    """The runtime as the home administration sees it (`gateway/home_admin.py`).

    A home created or changed through the API of an instance that does not
    run it is parked here and sent to the instance that does, so no home
    ever runs on two instances; the API answers once the owner has applied
    it (`applied`). Everything else is the runtime itself.
    """

    def __init__(self, member: ClusterMember) -> None:
        self._member = member
        self._sent: dict[str, asyncio.Task[Applied]] = {}

    async def applied(self, home: str) -> None:
        """Wait for the owner's answer to the change just sent; 503 if it did not apply it."""
        task = self._sent.pop(home, None)
        if task is None:
            return  # run here: applied already
        done = await task
        if done.outcome != "applied":
            raise HomeProblem(503, f"The change to home {home} is saved, but the instance that runs "
                              f"it has not applied it ({done.outcome}): send it again.")

    def __getattr__(self, name: str) -> object:
        return getattr(self._member.service.runtime, name)

    @property
    def homes(self) -> dict[str, object]:
        """Every home this instance knows, run here or parked: any instance can edit any home."""
        known: dict[str, object] = {home: _Parked(cfg) for home, cfg in self._member.parked.items()}
        known.update(self._member.service.runtime.homes)
        return known

    def set_home(self, cfg: HomeConfig, start: bool = True) -> None:
        member = self._member
        member.parked[cfg.home] = cfg
        if member._runs(member.partition(cfg.home)):
            member.service.runtime.set_home(cfg, start=start)
        elif member.joined:
            self._sent[cfg.home] = member.forward(Command(cfg.home, "config", "home administration",
                                                          config=cfg.model_dump_json(by_alias=True)))

    def remove_home(self, home: str) -> None:
        member = self._member
        member.parked.pop(home, None)
        member.service.runtime.remove_home(home)
        if member.joined and not member._runs(member.partition(home)):
            self._sent[home] = member.forward(Command(home, "remove", "home administration"))


class OwnerCommands(LocalCommands):
    """Commands this instance applies as the owner; a home's configuration also updates the parked one."""

    def __init__(self, member: ClusterMember) -> None:
        super().__init__(member.service.runtime)
        self._member = member

    async def apply(self, command: Command) -> Applied:
        if command.kind == "config":
            self._member.parked[command.home] = HomeConfig.model_validate_json(command.config)
        elif command.kind == "remove":
            self._member.parked.pop(command.home, None)
        return await super().apply(command)


class ClusterMember:
    def __init__(self, service: Service) -> None:
        self.service = service
        settings = service.settings.nats
        self.partitions = settings.partitions
        self.instance = settings.instance or default_instance()
        self.lease_s = settings.lease_s
        url = service.settings.database_url
        api = service.settings.api
        self.leases = LeaseManager(url, self.instance, self.partitions, settings.lease_s,
                                   api_url=f"http://{api.host}:{api.port}")
        self.writer = FencedWriter(url, self.partitions, application_name(self.instance),
                                   on_fenced=self._fenced)
        self.link = NatsLink(settings.servers, name=f"tecmon:{self.instance}",
                             on_connection=service._on_connection, replicas=settings.stream_replicas)
        self.parked: dict[str, HomeConfig] = {}
        self.state = ClusterState(self.instance, self.partitions)
        self._consumers: dict[int, asyncio.Task[None]] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        service.writer = self.writer  # type: ignore[assignment]
        service.runtime.recorder = self.writer
        service.dispatcher.recorder = self.writer
        service.dispatcher.notifier = FencedNotifier(service.notifier, self)  # type: ignore[assignment]
        service.dispatcher.publish = self._publish
        # Snapshots of the homes run here, written under each partition's epoch; a takeover
        # restores those that fit and replays only what came after (`gateway/recovery.py`).
        service.snapshots = SnapshotTaker(service.runtime, self.writer, service.clock, self.writer)
        self.engine = engine_version() if service.settings.snapshot_every_s > 0 else None
        self.commands = ClusterCommands(
            self.link, self.partition, self._runs, OwnerCommands(self),
            self._stored, settings.command_timeout_s)
        service.api.commands = self.commands
        at_owner = HomesAtOwner(self)
        service.home_admin.runtime = at_owner  # type: ignore[assignment]
        service.home_admin.applied = at_owner.applied
        self.joined = False
        self._forwarding: set[asyncio.Task[Applied]] = set()

    def partition(self, home: str) -> int:
        return partition_of(home, self.partitions)

    def accept(self, cfg: HomeConfig) -> bool:
        """Whether the service should load this home now; a home of another partition is parked."""
        self.parked[cfg.home] = cfg
        return self.partition(cfg.home) in self.leases.held

    async def may_notify(self, home: str) -> bool:
        partition = self.partition(home)
        if not await self._renewed(partition):
            return False
        try:
            await self.writer.flush_partition(partition)
        except Fenced:
            self._fenced(partition)
            return False
        except StoreUnavailable:
            log.warning("database away: calling without the step stored (it is in memory)")
        return self.leases.valid(partition)

    async def _renewed(self, partition: int) -> bool:
        """Held and renewed lately. Held but late in renewing (a busy machine, a slow database):
        wait for the renewal, up to one lease, rather than fail a call this instance still owns."""
        deadline = time.monotonic() + self.lease_s
        while partition in self.leases.held and not self.leases.valid(partition):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return self.leases.valid(partition)

    def _runs(self, partition: int) -> bool:
        """Whether this instance runs the partition's homes now (rebuilt, and the lease valid)."""
        return partition in self._consumers and self.leases.valid(partition)

    async def _stored(self, partition: int) -> bool:
        """A command's effects are stored under this instance's lease (before it is answered)."""
        try:
            await self.writer.flush_partition(partition)
        except Fenced:
            self._fenced(partition)
            return False
        except StoreUnavailable:
            return self.leases.valid(partition)  # kept in memory; the engine already applied it
        return True

    async def _publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        return await self.link.publish(topic.replace("/", "."), payload)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Join, hold a fair share of the partitions until cancelled, then leave cleanly."""
        self._park_loaded()
        await self.link.connect()
        settings = self.service.settings.nats
        await self.link.ensure_stream(self.partitions, settings.stream_max_age_h, settings.stream_replicas)
        await self.leases.open()
        self.joined = True
        renewing = asyncio.create_task(self._keep_renewed(), name="lease-renewal")
        try:
            while True:
                await self._heartbeat()
                await asyncio.sleep(self.lease_s / 5)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await self._leave()

    async def _keep_renewed(self) -> None:
        """Renew on a beat of its own: a heartbeat busy rebuilding partitions must not let leases lapse."""
        while True:
            await asyncio.sleep(self.lease_s / 5)
            for partition in await self.leases.renew():
                self._drop(partition)
            self.state.held = sorted(self.leases.held)

    def forward(self, command: Command) -> asyncio.Task[Applied]:
        """Send a home's new configuration to its owner; the task ends with the owner's answer."""

        async def send() -> Applied:
            done = await self.commands.apply(command)
            if done.outcome != "applied":
                log.error("home %s: %s not applied by its owner (%s)", command.home, command.kind,
                          done.outcome)
            return done

        task = asyncio.get_running_loop().create_task(send())
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)
        return task

    def _park_loaded(self) -> None:
        """Homes loaded before joining (those managed in the database) wait for their partition."""
        runtime = self.service.runtime
        for home in list(runtime.homes):
            self.parked[home] = runtime.homes[home].config
            runtime.remove_home(home)

    async def _heartbeat(self) -> None:
        try:
            taken, lost = await self.leases.step()
        except StoreUnavailable as exc:
            log.warning("leases: database unavailable (%s)", exc)
            taken, lost = [], list(self.leases.held)
        for partition in lost:
            self._drop(partition)
        for partition in list(self.leases.leaving):
            await self._hand_over(partition)
        for lease in taken:
            await self._take(lease)
        self.state.held = sorted(self.leases.held)

    async def _take(self, lease: Lease) -> None:
        began = time.perf_counter()
        service = self.service
        homes = [cfg for h, cfg in self.parked.items() if self.partition(h) == lease.partition]
        rebuilt = Runtime(service.clock, service.metrics, service.settings.mqtt.prefix,
                          service.settings.service_contacts)
        for cfg in homes:
            rebuilt.set_home(cfg, start=False)
        window = timedelta(hours=service.settings.recovery_window_h)
        history = PartitionHistory(service.settings.database_url, [cfg.home for cfg in homes],
                                   application_name(self.instance))
        taken_at = service.clock.now()
        report = await recover(rebuilt, cast(Store, history), taken_at, window, self.engine)
        if self.leases.held.get(lease.partition) != lease:  # fenced while it was being rebuilt
            log.error("partition %d was lost while its homes were rebuilt", lease.partition)
            return
        self.writer.own(lease.partition, lease.epoch, lease.checkpoint, since=taken_at)
        service.snapshots.forget(cfg.home for cfg in homes)
        runtime = service.runtime
        for cfg in homes:
            runtime.homes[cfg.home] = rebuilt.homes[cfg.home]
            runtime.decoder.add_home(cfg)
            runtime.reschedule(cfg.home)
        runtime.metrics.homes_loaded.set(len(runtime.homes))
        for item in report.pending:
            runtime.outbox.put_nowait(item)
        await self.commands.serve(lease.partition)
        self._consumers[lease.partition] = asyncio.create_task(
            self._consume(lease, lease.checkpoint + 1), name=f"partition-{lease.partition}")
        took = TakeoverReport(lease.partition, len(homes), report.events, report.late,
                              time.perf_counter() - began, report.from_snapshot)
        self.state.takeovers.append(took)
        log.info("partition %d: %d homes rebuilt (%d from snapshots) from %d events in %.2fs, "
                 "%d late steps", took.partition, took.homes, took.from_snapshot, took.events,
                 took.seconds, took.late)

    async def _consume(self, lease: Lease, start_seq: int) -> None:
        service, partition = self.service, lease.partition
        async for message in self.link.read_partition(partition, start_seq, lease.epoch):
            inbound = Inbound(mqtt_topic_of(message.subject), message.payload, service.clock.now(), 1)
            service.events_ingested += service.runtime.ingest(inbound)
            self.writer.checkpoint(partition, message.seq)

    def _stop_partition(self, partition: int, keep_homes: bool = False) -> None:
        stopping = asyncio.get_running_loop().create_task(self.commands.stop(partition))
        self._stopping.add(stopping)  # held until done: a bare task may be collected mid-way
        stopping.add_done_callback(self._stopping.discard)
        task = self._consumers.pop(partition, None)
        if task is not None:
            task.cancel()
        if keep_homes:
            return
        runtime = self.service.runtime
        for home in [h for h in runtime.homes if self.partition(h) == partition]:
            runtime.remove_home(home)

    def _drop(self, partition: int) -> None:
        """Lost without notice (fenced): nothing of it is kept or sent from here on."""
        self._stop_partition(partition)
        self.writer.disown(partition)
        self.leases.held.pop(partition, None)

    def _fenced(self, partition: int) -> None:
        log.error("partition %d: fenced (another instance holds it now)", partition)
        self._drop(partition)

    async def _hand_over(self, partition: int) -> None:
        """Rebalanced away: stop, store what is done, then let it go."""
        self._stop_partition(partition)
        with contextlib.suppress(Fenced, StoreUnavailable):
            await self.writer.flush_partition(partition)
        self.writer.disown(partition)
        await self.leases.release(partition)

    async def _leave(self) -> None:
        """Stop taking input, let calls already under way finish while the leases still hold
        (their steps are stored; a call not made now would be missed, not repeated), store the
        rest, snapshot the homes (the next owner replays almost nothing), and let the partitions go."""
        for partition in list(self._consumers):
            self._stop_partition(partition, keep_homes=True)
        with contextlib.suppress(Exception):
            await self.service.dispatcher.drain(timeout=self.lease_s / 2)
        with contextlib.suppress(Exception):
            await self.writer.flush_all()
        if self.engine is not None and self.leases.held:
            try:
                done = await asyncio.wait_for(self.service.snapshots.take(), self.lease_s)
                log.info("snapshots at leaving: %d written, %d unchanged", done.written, done.confirmed)
            except Exception as exc:  # leaving goes on; the next owner replays more
                log.warning("no snapshots at leaving: %s", exc)
        for home in list(self.service.runtime.homes):
            self.service.runtime.remove_home(home)
        await self.leases.close()
        await self.writer.close()
        with contextlib.suppress(Exception):
            await self.link.close()
