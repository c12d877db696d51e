"""Company mode and one-tap acknowledgement links reach the owner: sent to the instance that
does not run the home, they are applied by the one that does, and answered once applied."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.partitions import partition_of
from gateway.service import Service
from tests.conftest import Phone, add_account, eventually, sign_in
from tests.integration.nats_cluster import NatsCluster
from tests.integration.nats_gateways import scalar
from tests.integration.nats_homes import cluster_settings, home_config
from tests.integration.test_nats_commands import PARTITIONS, api, cluster  # noqa: F401  (fixture)
from tests.integration.test_nats_ingest import running

pytestmark = pytest.mark.integration
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
        a = await stack.enter_async_context(running(cluster_settings(homes, nats.urls, database,
                                                                     PARTITIONS, "a")))
        b = await stack.enter_async_context(running(cluster_settings(homes, nats.urls, database,
                                                                     PARTITIONS, "b")))
        assert a.cluster is not None and b.cluster is not None
        await eventually(lambda: len(a.cluster.state.held) == len(b.cluster.state.held) == 2, 20,
                         "the partitions were not shared")
        await add_account(database, "sam", "carer", "sams-long-password", tuple(HOMES), "Sam")
        yield a, b


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
