"""`ingest: nats` in one process: homes publish over MQTT 3.1.1 to any node, alerts reach the phone.

A real three-node cluster and a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from gateway.service import Service
from gateway.settings import Settings
from tests.conftest import Phone, eventually
from tests.integration.nats_cluster import NatsCluster, publish_mqtt
from tests.integration.nats_homes import ALERT_AFTER_S, calls, cluster_settings, write_homes

pytestmark = pytest.mark.integration
PARTITIONS = 8


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster.create(tmp_path / "nats", PARTITIONS)
    nats.start()
    yield nats
    nats.close()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    stop = asyncio.Event()
    service = Service(settings)
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def count(database: str, sql: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


async def test_one_instance_takes_every_partition_and_alerts_once(
    tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone
) -> None:
    homes = [f"home-{i}" for i in range(20)]
    settings = cluster_settings(write_homes(tmp_path / "homes", homes, phone), cluster.urls, database,
                                PARTITIONS, "solo")
    async with running(settings) as service:
        member = service.cluster
        assert member is not None
        await eventually(lambda: member.state.held == list(range(PARTITIONS)), 60, "partitions not taken")
        assert sorted(service.runtime.homes) == sorted(homes)
        leavers = homes[:10]
        topics = [f"zigbee2mqtt/{h}/bed" for h in homes]
        publish_mqtt(cluster, topics, b'{"occupancy": true}')
        publish_mqtt(cluster, [f"zigbee2mqtt/{h}/bed" for h in leavers], b'{"occupancy": false}')
        await eventually(lambda: len(calls(phone)) >= len(leavers), 10 + ALERT_AFTER_S,
                         "not every leaver's contact was called")
        await asyncio.sleep(1.0)
        assert sorted(calls(phone)) == sorted(leavers)
        in_stream = (await member.link.stream_state()).messages  # says which side a duplicate is on
    stored = count(database, "SELECT count(*) FROM events")
    # Every message published is stored, and only what the stream holds. A QoS 1 publisher that
    # retries under load can put a message in the stream twice (NATS's MQTT side has no message id
    # to tell); the engine takes a repeated reading as no change, so no alert is repeated (above).
    assert stored == in_stream, f"{stored} events stored, {in_stream} in the stream"
    distinct = count(database, "SELECT count(*) FROM (SELECT DISTINCT home, device, kind, value FROM events) d")
    assert distinct == len(homes) + len(leavers) <= stored, f"{distinct} distinct readings stored"
    assert count(database, "SELECT count(*) FROM alert_steps WHERE step = 'raised'") == len(leavers)
    assert count(database, "SELECT min(checkpoint) FROM partition_leases") >= 0
