"""PostgreSQL goes away for a minute while events flow and an alert falls due.

The alert must still reach the carer (the safety path never waits on
storage), and once the database is back every event published is stored.
The database is a private cluster started for this test; the shared one is
never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import psycopg
import pytest
import yaml

from gateway.service import Service
from gateway.settings import Settings
from tests.conftest import Phone, free_port
from tests.integration.test_recovery import home
from tests.store_contract import PrivatePostgres

pytestmark = pytest.mark.integration
OUTAGE_S = float(os.environ.get("TECMON_TEST_OUTAGE_S", "60"))


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    yield pg
    pg.remove()


def stored_events(url: str) -> int:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("select count(*) from events").fetchone()
        return int(row[0]) if row else 0


async def test_alerts_go_out_and_nothing_is_lost_while_postgres_is_down(
    tmp_path: Path, cluster: PrivatePostgres, phone: Phone, mosquitto: tuple[str, int]
) -> None:
    homes = tmp_path / "homes"
    homes.mkdir()
    (homes / "ann.yaml").write_text(yaml.safe_dump(home("ann", phone, "20s")))
    prefix = f"o{uuid.uuid4().hex[:8]}"
    settings = Settings(mqtt={"prefix": prefix, "client_id": f"tecmon-{prefix}"}, database_url=cluster.url,
                        homes=[homes], api={"host": "127.0.0.1", "port": free_port()},
                        store_flush_s=0.2, notify={"timeout_s": 5, "retries": 0})
    service, stop = Service(settings), asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while not service.mqtt_state["connected"]:
        await asyncio.sleep(0.05)
    published = 0
    async with aiomqtt.Client(*mosquitto, protocol=aiomqtt.ProtocolVersion.V5) as client:

        async def send(payload: dict[str, object]) -> None:
            nonlocal published
            await client.publish(f"{prefix}/ann/bed", json.dumps(payload), qos=1)
            published += 1

        await send({"occupancy": True})
        await asyncio.to_thread(cluster.stop)
        outage_began = time.monotonic()
        await send({"occupancy": False})  # the out-of-bed alert falls due 20 s later, mid-outage
        while time.monotonic() - outage_began < OUTAGE_S:
            await send({"occupancy": False, "battery": 90 - published % 5})  # events keep flowing
            await asyncio.sleep(0.5)
        delivered_during_outage = bool(phone.for_("sam-ann"))
        await asyncio.to_thread(cluster.start)
    deadline = time.monotonic() + 30
    while stored_events(cluster.url) < service.events_ingested and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    stop.set()
    await task
    assert delivered_during_outage, "the alert waited for the database"
    assert service.writer.buffered == 0
    # every message applied: one bed event each, plus a battery reading on the repeated ones
    assert stored_events(cluster.url) == service.events_ingested
    assert service.events_ingested == 2 + 2 * (published - 2)
