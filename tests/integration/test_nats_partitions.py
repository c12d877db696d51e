"""The NATS cluster places each home in the partition `partition_of` computes.

A real three-node cluster with the deployed configuration: homes publish over
MQTT 3.1.1 to any node, and the subject the message is stored under names the
partition. If NATS's hash and ours ever differed, a gateway would own homes
whose messages it never sees.
"""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.cluster_config import deploy_files, mqtt_topic_of, partition_of_subject
from gateway.nats import NatsLink
from gateway.partitions import partition_of
from tests.integration.nats_cluster import NatsCluster, publish_mqtt

PARTITIONS = 16
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nats"


def home_ids(count: int) -> list[str]:
    """Plain ids, ids with dashes and digits, and odd-looking ones a registry might issue."""
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_"
    fixed = ["h", "home-1", "home-01", "HOME-1", "a_b", "x" * 60, "9", "care-home-0042"]
    return fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(count)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsCluster]:
    nats = NatsCluster.create(tmp_path_factory.mktemp("nats"), PARTITIONS)
    nats.start()
    yield nats  # type: ignore[misc]
    nats.close()


async def test_every_home_lands_in_the_partition_partition_of_names(cluster: NatsCluster) -> None:
    homes = home_ids(400)
    link = NatsLink(cluster.urls)
    await link.connect()
    try:
        await link.ensure_stream(PARTITIONS)
        topics = [f"zigbee2mqtt/{home}/bed" for home in homes]
        publish_mqtt(cluster, topics, b'{"occupancy": true}')
        seen: dict[str, int] = {}
        async for message in link.read_all(len(topics)):
            topic = mqtt_topic_of(message.subject)
            seen[topic.split("/")[1]] = partition_of_subject(message.subject)
    finally:
        await link.close()
    assert seen == {home: partition_of(home, PARTITIONS) for home in seen}, "a home in another partition"
    # Parity is the point here; what NATS's MQTT side may lose of QoS 1 publishes is measured by the
    # crash-window benchmark. A message missing from a healthy cluster is rare; more than a few is a fault.
    missing = sorted(set(homes) - set(seen))
    assert len(missing) <= len(homes) // 100, f"not in the stream: {missing}"


async def test_availability_is_partitioned_and_device_commands_are_not(cluster: NatsCluster) -> None:
    link = NatsLink(cluster.urls)
    await link.connect()
    try:
        await link.ensure_stream(PARTITIONS)
        before = (await link.stream_state()).last_seq
        publish_mqtt(cluster, ["zigbee2mqtt/home-7/light/set", "zigbee2mqtt/home-7/bed/availability"], b"x")
        got = [m async for m in link.read_all(1, start_seq=before + 1)]
    finally:
        await link.close()
    assert [m.subject for m in got] == [
        f"tecmon.in.{partition_of('home-7', PARTITIONS)}.zigbee2mqtt.home-7.bed.availability"
    ]


@pytest.mark.parametrize("name", sorted(deploy_files()))
def test_the_deployed_files_are_the_rendered_ones(name: str) -> None:
    assert (DEPLOY / name).read_text(encoding="utf-8") == deploy_files()[name]
