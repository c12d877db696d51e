"""Commands reach the owner: an acknowledgement or a home's configuration sent to either
instance's API is applied by the instance that runs the home, and answered once applied and stored."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.partitions import partition_of
from gateway.service import Service
from tests.conftest import Phone, add_account, eventually, sign_in
from tests.integration.nats_cluster import NatsCluster, publish_mqtt
from tests.integration.nats_gateways import scalar
from tests.integration.nats_homes import calls, cluster_settings, home_config, write_homes
from tests.integration.test_nats_ingest import running

pytestmark = [pytest.mark.integration, pytest.mark.cluster_pair]
PARTITIONS = 4
HOMES = [f"home-{i}" for i in range(12)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster.create(tmp_path / "nats", PARTITIONS)
    nats.start()
    yield nats
    nats.close()


def api(service: Service) -> str:
    return f"http://127.0.0.1:{service.settings.api.port}"


async def until_listed(client: httpx.AsyncClient, url: str, auth: dict[str, str],
                       expected: list[tuple[str, str | None]], seconds: float = 30.0) -> None:
    """Until the open alerts listed are `expected` (alert, acknowledged by): the steps of another
    instance's home are read from the record, written a moment after they happen."""
    given_up = time.monotonic() + seconds
    while True:
        items = (await client.get(url, headers=auth)).json()["items"]
        listed = [(i["alert"], i["acknowledged_by"]) for i in items]
        if listed == expected:
            return
        assert time.monotonic() < given_up, f"{url} lists {listed}, not {expected}"
        await asyncio.sleep(0.1)


async def test_an_ack_at_the_other_instance_is_applied_by_the_owner(
    tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone
) -> None:
    homes = write_homes(tmp_path / "homes", HOMES, phone)
    a_settings = cluster_settings(homes, cluster.urls, database, PARTITIONS, "a")
    b_settings = cluster_settings(homes, cluster.urls, database, PARTITIONS, "b")
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(running(a_settings))
        b = await stack.enter_async_context(running(b_settings))
        assert a.cluster is not None and b.cluster is not None
        await eventually(lambda: len(a.cluster.state.held) == len(b.cluster.state.held) == 2, 60,
                         "the partitions were not shared")
        await add_account(database, "sam", "carer", "sams-long-password", tuple(HOMES), "Sam")
        home = next(h for h in HOMES if partition_of(h, PARTITIONS) in b.cluster.state.held)
        publish_mqtt(cluster, [f"zigbee2mqtt/{home}/bed"], b'{"occupancy": true}')
        publish_mqtt(cluster, [f"zigbee2mqtt/{home}/bed"], b'{"occupancy": false}')
        await eventually(lambda: calls(phone) == [home], 45, "the owner did not call Sam")
        alert = b.runtime.open_alerts()[0]["alert"]
        assert home not in a.runtime.homes, "the other instance must not run the home"
        async with httpx.AsyncClient(timeout=15) as client:
            auth = await sign_in(client, api(a), "sam", "sams-long-password")
            listed = (await client.get(f"{api(a)}/homes", headers=auth)).json()["items"]
            assert [item["home"] for item in listed] == sorted(HOMES), "GET /homes shows only a's homes"
            assert {item["person"] for item in listed} == {f"P {h}" for h in HOMES}
            one = await client.get(f"{api(a)}/homes/{home}", headers=auth)
            assert one.status_code == 200 and one.json()["home"] == home, one.text
            await until_listed(client, f"{api(a)}/alerts", auth, [(alert, None)])  # a lists b's open alert
            reply = await client.post(f"{api(a)}/alerts/{alert}/ack", headers=auth)
            assert reply.status_code == 200, reply.text
            assert reply.json()["steps"] == ["acknowledged"]
            assert b.runtime.open_alerts()[0]["acknowledged_by"] == "Sam"
            await until_listed(client, f"{api(a)}/alerts", auth, [(alert, "Sam")])  # its step, stored

            stored = f"SELECT count(*) FROM inputs WHERE kind = 'ack' AND alert = '{alert}'"
            assert scalar(database, stored) == 1, "answered before the acknowledgement was stored"
            done = await client.post(f"{api(a)}/alerts/{alert}/resolve", headers=auth,
                                     json={"outcome": "false_alarm", "note": "back in bed"})
            assert done.status_code == 200 and done.json()["steps"] == ["resolved"], done.text
            assert b.runtime.open_alerts() == []
            await until_listed(client, f"{api(a)}/alerts", auth, [])
            again = await client.post(f"{api(b)}/alerts/{alert}/ack", headers=auth)
            assert again.status_code == 409, "an alert no longer open cannot be acknowledged"


async def test_a_home_created_at_the_other_instance_runs_at_its_owner_only(
    tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone
) -> None:
    homes = write_homes(tmp_path / "homes", HOMES, phone)
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(running(cluster_settings(homes, cluster.urls, database,
                                                                     PARTITIONS, "a")))
        b = await stack.enter_async_context(running(cluster_settings(homes, cluster.urls, database,
                                                                     PARTITIONS, "b")))
        assert a.cluster is not None and b.cluster is not None
        await eventually(lambda: len(a.cluster.state.held) == len(b.cluster.state.held) == 2, 60,
                         "the partitions were not shared")
        await add_account(database, "ada", "admin", "adas-long-password")
        new = next(f"new-{i}" for i in range(100) if partition_of(f"new-{i}", PARTITIONS) in b.cluster.state.held)
        async with httpx.AsyncClient(timeout=15) as client:
            auth = await sign_in(client, api(a), "ada", "adas-long-password")
            reply = await client.post(f"{api(a)}/homes", headers=auth,
                                      json={"config": home_config(new, phone), "why": "new client"})
            assert reply.status_code == 201, reply.text
            assert new in b.runtime.homes, "answered before the owner ran the new home"
            changed = home_config(new, phone)
            changed["person"]["name"] = "Renamed"
            reply = await client.put(f"{api(a)}/homes/{new}", headers=auth,
                                     json={"config": changed, "why": "name"})
            assert reply.status_code == 200, reply.text
            assert b.runtime.homes[new].config.person.name == "Renamed", "answered before the owner applied it"
        assert new not in a.runtime.homes, "a home must not run on two instances"
        publish_mqtt(cluster, [f"zigbee2mqtt/{new}/bed"], b'{"occupancy": true}')
        publish_mqtt(cluster, [f"zigbee2mqtt/{new}/bed"], b'{"occupancy": false}')
        await eventually(lambda: calls(phone) == [new], 45, "the new home's contact was not called once")
