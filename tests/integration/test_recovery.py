"""A restart at 3 a.m. must not lose an alert, and must not call anyone twice.

`tecmon serve` runs as a real process against the real Mosquitto and the real
PostgreSQL (a database of its own, created and dropped here), and is killed
with SIGKILL: no chance to flush or say goodbye.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import psycopg
import pytest
import yaml

from tests.conftest import Phone, eventually, free_port
from tests.support.serve import ROOT, ServeProcess  # noqa: F401  (ROOT: others import it from here)

pytestmark = pytest.mark.integration
SHARED_PG = "postgresql://postgres@127.0.0.1:5432/test"


def home(name: str, phone: Phone, out_of_bed: str) -> dict[str, Any]:
    now = datetime.now(ZoneInfo("UTC"))
    return {
        "home": name, "timezone": "UTC", "person": {"name": name.capitalize()},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"}],
        "routine": {"night": {"from": (now - timedelta(hours=2)).strftime("%H:%M"),
                              "to": (now + timedelta(hours=4)).strftime("%H:%M")},
                    "out_of_bed": {"alert_after": out_of_bed}},
        "contacts": [{"name": "Sam", "notify": [phone.url(f"sam-{name}")]},
                     {"name": "Night responder", "notify": [phone.url(f"night-{name}")]}],
        "escalation": {"ack_within": "5m", "repeat_every": "5m"},
    }


async def publish(prefix: str, topic: str, payload: dict[str, Any]) -> None:
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(f"{prefix}/{topic}", json.dumps(payload), qos=1)


def stored(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture
async def serve(tmp_path: Path, database: str, phone: Phone, mosquitto: tuple[str, int]) -> AsyncIterator[Any]:
    homes = tmp_path / "homes"
    homes.mkdir()
    (homes / "ann.yaml").write_text(yaml.safe_dump(home("ann", phone, "1s")))
    (homes / "bob.yaml").write_text(yaml.safe_dump(home("bob", phone, "8s")))
    prefix = f"r{uuid.uuid4().hex[:8]}"
    settings = {"mqtt": {"prefix": prefix, "client_id": f"tecmon-{prefix}"}, "database_url": database,
                "homes": [str(homes)], "api": {"host": "127.0.0.1", "port": free_port()},
                "store_flush_s": 0.1, "notify": {"timeout_s": 5, "retries": 0}}
    process = ServeProcess(tmp_path, settings)
    process.start()
    yield process, prefix, database
    process.stop()


async def test_sigkill_with_a_timer_pending_loses_no_alert_and_repeats_none(serve: Any, phone: Phone) -> None:
    process, prefix, database = serve
    # Ann's alert is raised and delivered before the crash.
    await publish(prefix, "ann/bed", {"occupancy": True})
    await publish(prefix, "ann/bed", {"occupancy": False})
    await eventually(lambda: phone.for_("sam-ann"), 10, "Ann's alert was never delivered")
    await eventually(lambda: stored(database, "select count(*) from alert_steps where home='ann'") >= 2, 10,
                "Ann's alert steps were not recorded")
    # Bob leaves bed; his 8 s out-of-bed timer is pending when the service dies.
    await publish(prefix, "bob/bed", {"occupancy": True})
    await publish(prefix, "bob/bed", {"occupancy": False})
    left = time.monotonic()
    await eventually(lambda: stored(database, "select count(*) from events where home='bob'") == 2, 10,
                "Bob's events were not recorded")
    process.kill()
    assert phone.for_("sam-bob") == []
    process.start()
    await eventually(lambda: phone.for_("sam-bob"), 20, "Bob's alert was lost in the crash")
    called = next(t for t, path, _ in phone.received if path == "/sam-bob")
    assert called - left >= 7.9, "raised before its deadline"
    assert called - left < 8 + 15, "not raised at or right after its deadline"
    await asyncio.sleep(3)
    assert len(phone.for_("sam-bob")) == 1, "Bob's alert was sent twice"
    assert len(phone.for_("sam-ann")) == 1, "Ann's alert was sent again after the restart"
    steps = stored(database, "select count(*) from alert_steps where home='ann' and step='notified'")
    assert steps == 1


async def test_deadline_passed_while_down_is_raised_at_once_and_marked_late(serve: Any, phone: Phone) -> None:
    process, prefix, database = serve
    await publish(prefix, "bob/bed", {"occupancy": True})
    await publish(prefix, "bob/bed", {"occupancy": False})
    await eventually(lambda: stored(database, "select count(*) from events where home='bob'") == 2, 10,
                "Bob's events were not recorded")
    process.kill()
    await asyncio.sleep(9)  # the deadline passes while nothing is running
    restarted = time.monotonic()
    process.start()
    await eventually(lambda: phone.for_("sam-bob"), 10, "the overdue alert was not raised at start")
    called = next(t for t, path, _ in phone.received if path == "/sam-bob")
    assert called - restarted < 10
    assert phone.for_("sam-bob")[0]["title"].endswith("(late)")
    # raised and notified, both recorded as late (the record follows within a flush interval)
    await eventually(
        lambda: stored(database, "select count(*) from alert_steps where home='bob' and late") >= 2,
        10, "the late steps were not recorded as late",
    )
