"""Two gateway instances on a three-node NATS cluster: a night for 200 homes survives losing one.

Ground truth (see `nats_homes`): every home goes to bed; the leavers leave and
do not return, so each must raise exactly one alert and call its first
contact exactly once; the others must call nobody. Instances are real
`tecmon serve` processes; one is killed (-9) or frozen (SIGSTOP) mid-night.
Takeover times are printed (run with -s), never asserted.
"""

from __future__ import annotations

import signal
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
PARTITIONS = 16
HOMES = [f"home-{i:03d}" for i in range(200)]
LEASE_S = 6.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster.create(tmp_path / "nats", PARTITIONS)
    nats.start()
    yield nats
    nats.close()


@pytest.fixture
def gateways(tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone) -> Iterator[list[Gateway]]:
    homes = write_homes(tmp_path / "homes", HOMES, phone)
    pair = [Gateway(name, tmp_path, homes, cluster.urls, database, PARTITIONS, LEASE_S) for name in ("a", "b")]
    try:  # stopped even when the setup fails: no instance outlives its test
        for gateway in pair:  # together: the plan shares the partitions whoever comes first
            gateway.start()
        wait_until(lambda: Counter(owners(database).values()) == {"a": 8, "b": 8}, 60,
                   "the partitions were not shared 8/8")
        publish_mqtt(cluster, [f"zigbee2mqtt/{h}/bed" for h in HOMES], b'{"occupancy": true}')
        wait_until(lambda: scalar(database, "SELECT count(DISTINCT home) FROM events") == len(HOMES), 60,
                   "not every home's going to bed was stored")
        yield pair
    finally:
        for gateway in pair:
            gateway.close()


def homes_of(database: str, instance: str) -> list[str]:
    mine = {p for p, owner in owners(database).items() if owner == instance}
    return [h for h in HOMES if partition_of(h, PARTITIONS) in mine]


def leave_bed(cluster: NatsCluster, homes: list[str]) -> None:
    assert publish_mqtt(cluster, [f"zigbee2mqtt/{h}/bed" for h in homes], b'{"occupancy": false}') == len(homes)


def assert_each_called_once(cluster: NatsCluster, phone: Phone, database: str, leavers: list[str],
                            readings: int) -> None:
    wait_until(lambda: len(calls(phone)) >= len(leavers), 60, "not every leaver's contact was called")
    got = Counter(calls(phone))
    assert sorted(got) == sorted(leavers), "a home was called that should not have been, or one was missed"
    assert max(got.values()) == 1, f"called twice: {[h for h, n in got.items() if n > 1]}"
    assert scalar(database, "SELECT count(*) FROM alert_steps WHERE step = 'raised'") == len(leavers)
    assert scalar(database, "SELECT count(*) FROM alert_steps WHERE step = 'notified'") == len(leavers)
    assert_each_stored_once(cluster, database, readings)


def assert_each_stored_once(cluster: NatsCluster, database: str, readings: int) -> None:
    """Every reading stored, and each message of the stream stored once.

    A QoS 1 publisher that retried under load can put one message in the stream twice (the MQTT
    3.1.1 side of NATS keeps no message id), and the gateway then stores it twice, as the stream
    holds it: so "stored twice" is judged against the stream, and "lost" by distinct readings.
    """
    distinct = "SELECT count(*) FROM (SELECT DISTINCT home, value FROM events) d"
    wait_until(lambda: scalar(database, distinct) == readings, 30, "a reading was never stored")
    in_stream = cluster.stream_messages()
    wait_until(lambda: scalar(database, "SELECT count(*) FROM events") == in_stream, 30,
               f"{scalar(database, 'SELECT count(*) FROM events')} events stored, {in_stream} in the stream")


def test_kill_9_of_an_instance_loses_no_alert_and_repeats_none(
    cluster: NatsCluster, gateways: list[Gateway], database: str, phone: Phone
) -> None:
    a, _ = gateways
    of_a, of_b = homes_of(database, "a"), homes_of(database, "b")
    early = of_a[::4] + of_b[::4]  # alerted before the crash
    leave_bed(cluster, early)
    wait_until(lambda: len(calls(phone)) >= len(early), 60, "the early alerts were not sent")
    late = of_a[1::4] + of_b[1::4]  # left bed just before the crash: due after it
    leave_bed(cluster, late)
    a.kill()
    took = wait_until(lambda: set(owners(database).values()) == {"b"}, 60, "b never took a's partitions")
    print(f"\ntakeover after kill -9: {took:.2f}s for {len(of_a)} homes (lease {LEASE_S}s)")
    leavers = early + late
    assert_each_called_once(cluster, phone, database, leavers, len(HOMES) + len(leavers))


def test_a_frozen_instance_is_fenced_and_sends_nothing_when_it_wakes(
    cluster: NatsCluster, gateways: list[Gateway], database: str, phone: Phone
) -> None:
    a, _ = gateways
    of_a = homes_of(database, "a")
    a.signal(signal.SIGSTOP)
    leavers = of_a[::3]
    leave_bed(cluster, leavers)  # due while a is frozen, after its lease has lapsed or not
    took = wait_until(lambda: set(owners(database).values()) == {"b"}, 60, "b never took a frozen a's partitions")
    print(f"\ntakeover of a frozen instance: {took:.2f}s (lease {LEASE_S}s)")
    wait_until(lambda: len(calls(phone)) >= len(leavers), 60, "b did not call for a's homes")
    a.signal(signal.SIGCONT)
    wait_until(lambda: "fenced" in a.log.read_text() or "giving up" in a.log.read_text(), 60,
               "the woken instance never noticed it had lost its leases")
    more = of_a[1::3]
    leave_bed(cluster, more)  # after a rejoins: whoever owns them now alerts, once
    leavers += more
    assert_each_called_once(cluster, phone, database, leavers, len(HOMES) + len(leavers))
