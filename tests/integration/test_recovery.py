"""A restart at 3 a.m. must not lose an alert, and must not call anyone twice.

`tecmon serve` runs as a real process against the real Mosquitto and the real
PostgreSQL (a database of its own, created and dropped here), and is killed
with SIGKILL: no chance to flush or say goodbye. Snapshots are taken every
half second, so each restart starts from snapshots and replays what followed.
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


def home(name: str, phone: Phone, out_of_bed: str, ack_within: str = "5m") -> dict[str, Any]:
    now = datetime.now(ZoneInfo("UTC"))
    return {
        "home": name, "timezone": "UTC", "person": {"name": name.capitalize()},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"}],
        "routine": {"night": {"from": (now - timedelta(hours=2)).strftime("%H:%M"),
                              "to": (now + timedelta(hours=4)).strftime("%H:%M")},
                    "out_of_bed": {"alert_after": out_of_bed}},
        "contacts": [{"name": "Sam", "notify": [phone.url(f"sam-{name}")]},
                     {"name": "Night responder", "notify": [phone.url(f"night-{name}")]}],
        "escalation": {"ack_within": ack_within, "repeat_every": "5m"},
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
    process, prefix = start_serve(tmp_path, database, phone, snapshot_every_s=0.5)
    yield process, prefix, database
    process.stop()


def start_serve(tmp_path: Path, database: str, phone: Phone, snapshot_every_s: float) -> tuple[ServeProcess, str]:
    homes = tmp_path / "homes"
    homes.mkdir()
    (homes / "ann.yaml").write_text(yaml.safe_dump(home("ann", phone, "1s")))
    (homes / "bob.yaml").write_text(yaml.safe_dump(home("bob", phone, "8s")))
    (homes / "cat.yaml").write_text(yaml.safe_dump(home("cat", phone, "1s", ack_within="8s")))
    prefix = f"r{uuid.uuid4().hex[:8]}"
    settings = {"mqtt": {"prefix": prefix, "client_id": f"tecmon-{prefix}"}, "database_url": database,
                "homes": [str(homes)], "api": {"host": "127.0.0.1", "port": free_port()},
                "store_flush_s": 0.1, "notify": {"timeout_s": 5, "retries": 0},
                "snapshot_every_s": snapshot_every_s}
    process = ServeProcess(tmp_path, settings)
    process.start()
    return process, prefix


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
    assert called > restarted  # at start (the wait above bounds it), never by a stopwatch: a start can be slow
    assert phone.for_("sam-bob")[0]["title"].endswith("(late)")
    # raised and notified, both recorded as late (the record follows within a flush interval)
    await eventually(
        lambda: stored(database, "select count(*) from alert_steps where home='bob' and late") >= 2,
        10, "the late steps were not recorded as late",
    )


def snapshot_holds_an_alert(url: str, name: str) -> bool:
    sql = f"select count(*) from home_snapshots where home='{name}' and state like '%\"notified\":[[\"Sam\"%'"
    return stored(url, sql) == 1


async def test_a_snapshot_taken_mid_alert_resumes_the_escalation_after_sigkill(serve: Any, phone: Phone) -> None:
    process, prefix, database = serve
    await publish(prefix, "cat/bed", {"occupancy": True})
    await publish(prefix, "cat/bed", {"occupancy": False})
    await eventually(lambda: phone.for_("sam-cat"), 10, "Cat's alert was never delivered")
    notified = next(t for t, path, _ in phone.received if path == "/sam-cat")
    await eventually(lambda: snapshot_holds_an_alert(database, "cat"), 10,
                     "no snapshot was taken with Cat's alert open and Sam called")
    process.kill()  # the escalation to the night responder is pending, 8 s after Sam's call
    assert phone.for_("night-cat") == []
    process.start()
    await eventually(lambda: phone.for_("night-cat"), 30, "the escalation was lost in the crash")
    del notified  # when the phone heard it is not when the step was taken: the record says that
    gap = ("select coalesce((extract(epoch from (select max(at) from alert_steps where home='cat' and step='escalated')"
           " - (select min(at) from alert_steps where home='cat' and step='notified')) * 1000)::bigint, 0)")
    await eventually(lambda: stored(database, gap) > 0, 10, "the escalation was not recorded")
    assert stored(database, gap) >= 7900, "escalated before ack_within (8 s) had passed"
    assert "from snapshots" in process.log.read_text()
    rebuilt = [line for line in process.log.read_text().splitlines() if "rebuilt" in line][-1]
    assert "(0 from snapshots" not in rebuilt, rebuilt
    await asyncio.sleep(3)
    assert len(phone.for_("sam-cat")) == 1, "Sam was called again after the restart"
    assert len(phone.for_("night-cat")) == 1, "the night responder was called twice"
    steps = stored(database, "select count(*) from alert_steps where home='cat' and step='escalated'")
    assert steps == 1


async def test_a_clean_stop_snapshots_every_home_and_the_next_start_uses_them(
    tmp_path: Path, database: str, phone: Phone, mosquitto: tuple[str, int]
) -> None:
    process, prefix = start_serve(tmp_path, database, phone, snapshot_every_s=3600)  # no round meanwhile
    try:
        await publish(prefix, "bob/bed", {"occupancy": True})
        await eventually(lambda: stored(database, "select count(*) from events where home='bob'") == 1, 10,
                         "Bob's event was not recorded")
        assert stored(database, "select count(*) from home_snapshots") == 0
        process.stop()
        assert stored(database, "select count(*) from home_snapshots") == 3
        process.start()
        rebuilt = [line for line in process.log.read_text().splitlines() if "rebuilt" in line][-1]
        assert "(3 from snapshots, 0 snapshots ignored) from 0 events" in rebuilt, rebuilt
    finally:
        process.stop()
