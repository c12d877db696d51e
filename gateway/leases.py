"""Partition leases: which gateway instance owns which partitions, fenced by an epoch.

A lease is a PostgreSQL advisory lock on the instance's own lease connection
plus the partition's row in `partition_leases`, renewed every heartbeat.
Taking a partition bumps its epoch; every state-changing write of the
partition (see `gateway/cluster_store.py`) first updates that row `WHERE
epoch = <its epoch>`, so an instance that lost the lease changes nothing.

Why both: the advisory lock goes the moment a crashed instance's connection
closes (kill -9: a takeover within one heartbeat), but a frozen instance
(SIGSTOP, a stalled VM) keeps its connection and so its lock. Its renewals
stop, though: once its rows are older than `lease_s`, a live instance ends
every backend of the frozen one (`pg_terminate_backend`, found by the
application name all of an instance's connections carry), which frees the
lock and aborts any transaction it left open, then takes the partition.
The frozen instance, when it wakes, knows from its own monotonic clock that
it has not renewed for too long, and stops notifying before anyone else can
have started (`valid()`); its writes fail on the epoch.

Partitions are shared by a deterministic plan: the live instances sorted by
name, partition p to instance p mod k. Each instance releases what is not in
its plan and takes what is, so joining or leaving rebalances in a heartbeat or two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from gateway.store.base import StoreUnavailable

log = logging.getLogger("tecmon.leases")

LEASE_LOCK_CLASS = 746_563_006
"""First key of the two-key advisory locks that are partition leases (the second is the partition)."""

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    epoch: int
    checkpoint: int  # the last stream sequence whose effects are stored


def application_name(instance: str) -> str:
    return f"tecmon:{instance}"


def plan(partitions: int, live: Iterable[str]) -> dict[str, set[int]]:
    """Partition p goes to the (p mod k)-th live instance by name: a fair share, and stable."""
    names = sorted(set(live))
    shares: dict[str, set[int]] = {name: set() for name in names}
    for p in range(partitions):
        if names:
            shares[names[p % len(names)]].add(p)
    return shares


class LeaseManager:
    """One instance's leases; `step()` is one heartbeat and returns what was taken and lost."""

    def __init__(self, url: str, instance: str, partitions: int, lease_s: float = 5.0,
                 api_url: str | None = None) -> None:
        self.url, self.instance, self.partitions = url, instance, partitions
        self.lease_s, self.api_url = lease_s, api_url
        self.held: dict[int, Lease] = {}
        self.leaving: list[int] = []
        self._conn: Conn | None = None
        self._renewed = 0.0  # monotonic time of the last renewal the database confirmed

    async def open(self) -> None:
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, application_name=application_name(self.instance))
            await self._conn.execute(
                "INSERT INTO partition_leases (partition) SELECT generate_series(0, %s - 1) "
                "ON CONFLICT DO NOTHING", (self.partitions,))
            await self._register(self._conn)  # before anyone can see this connection without a fresh row
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def close(self) -> None:
        """Leave: release every lease and the instance row, so others take over at once."""
        conn, self._conn = self._conn, None
        self.held.clear()
        if conn is not None and not conn.closed:
            try:
                await conn.execute("DELETE FROM cluster_instances WHERE instance = %s", (self.instance,))
                await conn.execute("SELECT pg_advisory_unlock_all()")
            except psycopg.Error as exc:
                log.warning("leaving the cluster: %s", exc)
            await conn.close()

    def valid(self, partition: int) -> bool:
        """Whether this instance may still act for `partition`: held and renewed recently enough.

        Half the lease: nobody else may take it before the full lease has passed without renewal.
        """
        return partition in self.held and time.monotonic() - self._renewed < self.lease_s / 2

    async def step(self) -> tuple[list[Lease], list[int]]:
        """Renew, end frozen instances, follow the plan; returns (taken, lost).

        Partitions the plan gives to others are left in `leaving`, still held:
        the caller stops and stores their work, then calls `release`.
        """
        conn = self._conn
        if conn is None or conn.closed:
            lost = list(self.held)
            self.held.clear()
            if conn is not None:  # the connection died (the database restarted): start over
                await self.open()
            return [], lost
        try:
            lost = await self._renew(conn)
            live = await self._live(conn)
            mine = plan(self.partitions, live).get(self.instance, set())
            self.leaving = sorted(set(self.held) - mine)
            taken = [lease for p in sorted(mine - set(self.held)) if (lease := await self._take(conn, p))]
        except psycopg.Error as exc:
            log.warning("lease heartbeat failed: %s; giving up every partition", exc)
            lost = list(self.held)
            self.held.clear()
            await conn.close()
            return [], lost
        return taken, lost

    async def renew(self) -> list[int]:
        """Renew only, returning the partitions found taken by another instance.

        Run on its own beat, apart from `step()`: taking partitions means rebuilding their
        homes, which can outlast a lease on a busy machine, and an instance whose renewals
        wait on that work looks frozen to the others.
        """
        conn = self._conn
        if conn is None or conn.closed:
            return []
        try:
            return await self._renew(conn)
        except psycopg.Error as exc:  # the next step() finds the connection broken and starts over
            log.warning("lease renewal failed: %s", exc)
            return []

    async def _register(self, conn: Conn) -> None:
        await conn.execute(
            "INSERT INTO cluster_instances (instance, seen_at, api_url) VALUES (%s, now(), %s) "
            "ON CONFLICT (instance) DO UPDATE SET seen_at = now(), api_url = excluded.api_url",
            (self.instance, self.api_url))

    async def _renew(self, conn: Conn) -> list[int]:
        began = time.monotonic()
        await self._register(conn)
        sent = list(self.held.values())  # taken or released meanwhile: judged at the next renewal
        lost: list[int] = []
        if sent:
            cur = await conn.execute(
                "UPDATE partition_leases l SET renewed_at = now() FROM unnest(%s::int[], %s::bigint[]) "
                "AS h(partition, epoch) WHERE l.partition = h.partition AND l.epoch = h.epoch "
                "RETURNING l.partition",
                ([lease.partition for lease in sent], [lease.epoch for lease in sent]))
            still = {row[0] for row in await cur.fetchall()}
            lost = [lease.partition for lease in sent
                    if lease.partition not in still and self.held.get(lease.partition) == lease]
            for p in lost:
                log.error("partition %d was taken by another instance: fenced", p)
                del self.held[p]
        self._renewed = began
        return lost

    async def _live(self, conn: Conn) -> list[str]:
        """Instances renewing and connected; frozen ones are ended here (see the module doc).

        Only this database's connections opened before the instance's last renewal count
        as the frozen instance's own: a new process under the same name (restarted after a
        kill -9) has not been seen renewing yet and must not be ended for its predecessor's
        silence, and another deployment on the same server may use the same names.
        """
        cur = await conn.execute(
            "SELECT instance, seen_at > now() - make_interval(secs => %s), "
            "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = 'tecmon:' || instance "
            "AND a.datname = current_database() AND a.backend_start < seen_at) "
            "FROM cluster_instances", (self.lease_s,))
        live: list[str] = []
        for instance, fresh, connected in await cur.fetchall():
            if instance == self.instance or (fresh and connected):
                live.append(instance)
            elif connected:
                log.error("instance %s stopped renewing its leases: ending its connections", instance)
                await conn.execute(  # all of them: one may hold a lease row in an open transaction
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = current_database()",
                    (application_name(instance),))
            else:
                await conn.execute("DELETE FROM cluster_instances WHERE instance = %s", (instance,))
        return live

    async def _take(self, conn: Conn, partition: int) -> Lease | None:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LEASE_LOCK_CLASS, partition))
        row = await cur.fetchone()
        if row is None or not row[0]:
            return None  # still held: its owner is leaving it, or is frozen and about to be ended
        cur = await conn.execute(
            "UPDATE partition_leases SET epoch = epoch + 1, owner = %s, renewed_at = now() "
            "WHERE partition = %s RETURNING epoch, checkpoint", (self.instance, partition))
        got = await cur.fetchone()
        if got is None:
            raise RuntimeError(f"partition {partition} has no lease row")
        lease = Lease(partition, int(got[0]), int(got[1]))
        self.held[partition] = lease
        log.info("partition %d taken at epoch %d, checkpoint %d", partition, lease.epoch, lease.checkpoint)
        return lease

    async def release(self, partition: int) -> None:
        self.held.pop(partition, None)
        conn = self._conn
        if conn is None or conn.closed:
            return
        for _ in range(8):  # advisory locks stack per session: a partition taken twice is held twice
            cur = await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LEASE_LOCK_CLASS, partition))
            row = await cur.fetchone()
            if row is None or not row[0]:
                break
        log.info("partition %d released (rebalancing)", partition)
