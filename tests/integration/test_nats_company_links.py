"""Company mode and one-tap acknowledgement links reach the owner: sent to the instance that
does not run the home, they are applied by the one that does, and answered once applied."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.ack_links import AckLinks
from gateway.partitions import partition_of
from gateway.service import Service
from gateway.settings import Settings
from tests.conftest import Phone, add_account, eventually, sign_in
from tests.integration.nats_cluster import NatsCluster, publish_mqtt
from tests.integration.nats_gateways import scalar
from tests.integration.nats_homes import calls, cluster_settings, home_config
from tests.integration.test_nats_commands import PARTITIONS, api, cluster  # noqa: F401  (fixture)
from tests.integration.test_nats_ingest import running

pytestmark = [pytest.mark.integration, pytest.mark.cluster_pair]
HOMES = [f"home-{i}" for i in range(12)]


@contextlib.asynccontextmanager
async def two_instances(tmp_path: Path, nats: NatsCluster, database: str,
                        phone: Phone) -> AsyncIterator[tuple[Service, Service]]:
    """Instances a and b sharing HOMES (each with company mode), the partitions split between them."""
    homes = tmp_path / "homes"
    homes.mkdir()
    for home in HOMES:
        config = home_config(home, phone)
        config["devices"].append({"id": "button", "profile": "aqara-wxkg11lm", "kind": "button"})
        config["routine"]["company"] = {"action": "double", "for": "2h"}
        (homes / f"{home}.yaml").write_text(yaml.safe_dump(config))
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(running(settings(homes, nats, database, "a")))
        b = await stack.enter_async_context(running(settings(homes, nats, database, "b")))
        assert a.cluster is not None and b.cluster is not None
        await eventually(lambda: len(a.cluster.state.held) == len(b.cluster.state.held) == 2, 60,
                         "the partitions were not shared")
        await add_account(database, "sam", "carer", "sams-long-password", tuple(HOMES), "Sam")
        yield a, b


def settings(homes: Path, nats: NatsCluster, database: str, instance: str) -> Settings:
    plain = cluster_settings(homes, nats.urls, database, PARTITIONS, instance)
    return plain.model_copy(update={"public_url": f"http://127.0.0.1:{plain.api.port}"})


def owned_by(service: Service) -> str:
    assert service.cluster is not None
    return next(h for h in HOMES if partition_of(h, PARTITIONS) in service.cluster.state.held)


async def test_company_started_at_the_other_instance_is_applied_by_the_owner(
    tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone  # noqa: F811
) -> None:
    async with two_instances(tmp_path, cluster, database, phone) as (a, b):
        home = owned_by(b)
        assert home not in a.runtime.homes, "the other instance must not run the home"
        async with httpx.AsyncClient(timeout=15) as client:
            auth = await sign_in(client, api(a), "sam", "sams-long-password")
            reply = await client.post(f"{api(a)}/homes/{home}/company", headers=auth, json={"on": True})
            assert reply.status_code == 200, reply.text
            assert reply.json()["company"] is True and reply.json()["until"], reply.text
            state = b.runtime.homes[home].state
            assert state.company_until is not None
            assert reply.json()["until"] == state.company_until.isoformat(), "the owner's state, answered"
            stored = f"SELECT count(*) FROM inputs WHERE kind = 'company' AND home = '{home}'"
            assert scalar(database, stored) == 1, "answered before the company input was stored"
            off = await client.post(f"{api(a)}/homes/{home}/company", headers=auth, json={"on": False})
            assert off.status_code == 200 and off.json() == {"home": home, "company": False, "until": None}
            assert scalar(database, stored) == 2
            missing = await client.post(f"{api(a)}/homes/nowhere/company", headers=auth, json={"on": True})
            assert missing.status_code in (403, 404), missing.text


async def test_an_ack_link_used_at_the_other_instance_is_applied_by_the_owner_once(
    tmp_path: Path, cluster: NatsCluster, database: str, phone: Phone  # noqa: F811
) -> None:
    async with two_instances(tmp_path, cluster, database, phone) as (a, b):
        home = owned_by(b)
        publish_mqtt(cluster, [f"zigbee2mqtt/{home}/bed"], b'{"occupancy": true}')
        publish_mqtt(cluster, [f"zigbee2mqtt/{home}/bed"], b'{"occupancy": false}')
        await eventually(lambda: calls(phone) == [home], 45, "the owner did not call Sam")
        alert = b.runtime.open_alerts()[0]["alert"]
        link = AckLinks(b.accounts, b.settings.public_url, 120).link(alert, "Sam")  # as in Sam's call
        assert link is not None
        token = link.rsplit("/", 1)[1]
        stored = f"SELECT count(*) FROM inputs WHERE kind = 'ack' AND alert = '{alert}'"
        async with httpx.AsyncClient(timeout=15) as client:
            page = await client.get(f"{api(a)}/ack/{token}")
            assert page.status_code == 200 and f"P {home}" in page.text, page.text
            done = await client.post(f"{api(a)}/ack/{token}")
            assert done.status_code == 200 and "nobody else will be called" in done.text, done.text
            assert b.runtime.open_alerts()[0]["acknowledged_by"] == "Sam", "not applied by the owner"
            assert scalar(database, stored) == 1, "answered before the acknowledgement was stored"
            for instance in (a, b):  # the used-link record is shared: once, at either instance
                again = await client.post(f"{api(instance)}/ack/{token}")
                assert again.status_code == 410, again.text
            assert scalar(database, stored) == 1
            assert calls(phone) == [home] and calls(phone, "Night") == [], "escalated after the ack"
            page = await client.get(f"{api(a)}/ack/{token}")
            assert f"/ack/{token}/resolve" in page.text, "the acknowledged link does not offer to resolve"
            closed = await client.post(f"{api(a)}/ack/{token}/resolve",
                                       data={"outcome": "false_alarm", "note": "back in bed"})
            assert closed.status_code == 200, closed.text
            assert b.runtime.open_alerts() == [], "the owner did not resolve it"
            after = await client.post(f"{api(b)}/ack/{token}/resolve", data={"outcome": "false_alarm"})
            assert after.status_code in (409, 410), after.text
        await eventually(lambda: calls(phone) == [home, home], 45, "Sam was not told it is all clear, once")
        assert calls(phone, "Night") == []
