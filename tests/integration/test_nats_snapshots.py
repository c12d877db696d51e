"""A takeover restores the dead instance's homes from their snapshots and resumes an escalation.

Two `tecmon serve` instances snapshot their homes every half second. The
leavers of instance a's homes raise an alert and call Sam; once their
snapshots hold that, a is killed (-9). Instance b must take a's partitions
from the snapshots (replaying nothing: no event came after them), call Night
when the acknowledgement is overdue, and call nobody twice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.partitions import partition_of
from tests.conftest import Phone
from tests.integration.nats_cluster import NatsCluster, publish_mqtt
from tests.integration.nats_gateways import Gateway, owners, scalar, wait_until
from tests.integration.nats_homes import calls, write_homes

pytestmark = [pytest.mark.integration, pytest.mark.cluster_pair]
PARTITIONS = 4
HOMES = [f"home-{i:02d}" for i in range(16)]
ACK_WITHIN_S = 4
TAKEOVER = re.compile(r"partition (\d+): (\d+) homes rebuilt \((\d+) from snapshots\) from (\d+) events")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster.create(tmp_path / "nats", PARTITIONS)
    nats.start()
    yield nats
    nats.close()


@pytest.fixture
def pair(tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone) -> Iterator[list[Gateway]]:
    homes = write_homes(tmp_path / "homes", HOMES, phone, ack_within=f"{ACK_WITHIN_S}s")
    gateways = [Gateway(name, tmp_path, homes, cluster.urls, database, PARTITIONS,
                        extra={"snapshot_every_s": 0.5}) for name in ("a", "b")]
    try:  # stopped even when the setup fails: no instance outlives its test
        for gateway in gateways:
            gateway.start()
        wait_until(lambda: Counter(owners(database).values()) == {"a": 2, "b": 2}, 60,
                   "the partitions were not shared 2/2")
        yield gateways
    finally:
        for gateway in gateways:
            gateway.close()


def takeovers(gateway: Gateway, after: int) -> dict[int, tuple[int, int, int]]:
    """Partition -> (homes, from snapshots, events replayed) of the takeovers logged after `after`."""
    found = TAKEOVER.findall(gateway.log.read_text()[after:])
    return {int(p): (int(h), int(s), int(e)) for p, h, s, e in found}


def test_a_takeover_from_snapshots_resumes_the_escalation_and_repeats_nothing(
    cluster: NatsCluster, pair: list[Gateway], database: str, phone: Phone
) -> None:
    a, b = pair
    of_a = {p for p, owner in owners(database).items() if owner == "a"}
    leavers = [h for h in HOMES if partition_of(h, PARTITIONS) in of_a]
    assert leavers, "instance a runs no home"
    publish_mqtt(cluster, [f"zigbee2mqtt/{h}/bed" for h in HOMES], b'{"occupancy": true}')
    publish_mqtt(cluster, [f"zigbee2mqtt/{h}/bed" for h in leavers], b'{"occupancy": false}')
    wait_until(lambda: sorted(calls(phone)) == sorted(leavers), 60, "Sam was not called for a's leavers")
    snapped = ("SELECT count(*) FROM home_snapshots WHERE through > "
               "(SELECT max(at) FROM alert_steps WHERE step = 'notified')")
    wait_until(lambda: scalar(database, snapped) >= len(leavers), 45, "no snapshot after the calls")
    assert calls(phone, "Night") == [], "escalated before the acknowledgement was due"
    before = len(b.log.read_text())
    a.kill()
    wait_until(lambda: set(owners(database).values()) == {"b"}, 60, "b never took a's partitions")
    wait_until(lambda: of_a <= set(takeovers(b, before)), 45, "b's takeovers were not logged")
    for partition in of_a:
        homes, restored, replayed = takeovers(b, before)[partition]
        assert restored == homes, f"partition {partition}: {restored} of {homes} homes from snapshots"
        assert replayed == 0, f"partition {partition}: {replayed} events replayed after the snapshots"
    wait_until(lambda: len(calls(phone, "Night")) >= len(leavers), 10 + ACK_WITHIN_S,
               "the escalation to Night did not resume after the takeover")
    assert Counter(calls(phone)) == Counter(leavers), "Sam called twice, or for the wrong homes"
    assert Counter(calls(phone, "Night")) == Counter(leavers), "Night called twice, or for the wrong homes"
    assert scalar(database, "SELECT count(*) FROM alert_steps WHERE step = 'raised'") == len(leavers)
    for step in ("notified", "escalated"):
        assert scalar(database, f"SELECT count(*) FROM alert_steps WHERE step = '{step}'") == len(leavers)
