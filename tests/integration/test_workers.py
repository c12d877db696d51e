"""`tecmon serve --workers 2` against the real Mosquitto and PostgreSQL, with a real SIGKILL.

Each worker owns its partition's homes; the parent answers the API for all of
them and hands acknowledgements to the owner. A worker killed outright is
restarted by the parent: its homes come back from the store (the open,
acknowledged alert, which a resolution sent while it was down then closes),
and a press made while it was down, which waited in its persistent MQTT
session, is still called in.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.partitions import partition_of
from tests.conftest import Phone, add_account, eventually, free_port, sign_in
from tests.integration.test_recovery import ROOT, ServeProcess, home, publish

pytestmark = pytest.mark.integration
PASSWORD = "a long passphrase for the workers test"
HOMES = ("ann", "bob", "cat", "dan", "eve", "fay")


def button_home(name: str, phone: Phone) -> dict[str, Any]:
    config = home(name, phone, "30m")
    config["devices"].append({"id": "button", "profile": "aqara-wxkg11lm", "kind": "button"})
    return config


class WorkersProcess(ServeProcess):
    """`tecmon serve --workers 2`; worker pids are read from the parent's log."""

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--workers", "2", "--config", str(self.config)],
                cwd=ROOT, env=env, stdout=log, stderr=log)

    def worker_pids(self, index: int) -> list[int]:
        pattern = rf"worker {index} of 2 running as pid (\d+)"
        return [int(pid) for pid in re.findall(pattern, self.log.read_text())]


@dataclass
class Running:
    process: WorkersProcess
    prefix: str
    auth: dict[str, str]
    client: httpx.AsyncClient
    homes: Path

    async def open_alerts(self) -> list[dict[str, Any]]:
        reply = await self.client.get(f"{self.process.api}/alerts", headers=self.auth)
        reply.raise_for_status()
        alerts: list[dict[str, Any]] = reply.json()["items"]
        return alerts


@pytest.fixture
async def running(tmp_path: Path, database: str, phone: Phone, mosquitto: tuple[str, int]) -> AsyncIterator[Running]:
    homes = tmp_path / "homes"
    homes.mkdir()
    for name in HOMES:
        (homes / f"{name}.yaml").write_text(yaml.safe_dump(button_home(name, phone)))
    await add_account(database, "root", "admin", PASSWORD)
    prefix = f"w{uuid.uuid4().hex[:8]}"
    settings = {"mqtt": {"prefix": prefix, "client_id": f"tecmon-{prefix}"}, "database_url": database,
                "homes": [str(homes)], "api": {"host": "127.0.0.1", "port": free_port()},
                "store_flush_s": 0.1, "notify": {"timeout_s": 5, "retries": 0}, "config_poll_s": 0.3}
    process = WorkersProcess(tmp_path, settings)
    process.start()
    async with httpx.AsyncClient(timeout=10) as client:
        await eventually(lambda: process._healthy(), 60, "the workers never connected")
        auth = await sign_in(client, process.api, "root", PASSWORD)
        yield Running(process, prefix, auth, client, homes)
    process.stop()


async def until(condition: Callable[[], Awaitable[bool]], seconds: float, why: str) -> None:
    """`eventually`, for a condition that asks the API."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(why)
        await asyncio.sleep(0.1)


def owned_by(index: int) -> list[str]:
    return [h for h in HOMES if partition_of(h, 2) == index]


async def test_a_killed_worker_is_restarted_with_its_homes_and_its_queue(running: Running, phone: Phone) -> None:
    first, second = owned_by(1)[:2]
    other = owned_by(0)[0]
    await publish(running.prefix, f"{first}/button", {"action": "single"})
    await eventually(lambda: phone.for_(f"sam-{first}"), 15, "the worker never called Sam")
    alerts: list[dict[str, Any]] = []

    async def listed() -> bool:
        alerts[:] = [a for a in await running.open_alerts() if a["home"] == first]
        return bool(alerts)

    await until(listed, 10, "the parent's API never listed the worker's alert")
    alert = alerts[0]["alert"]
    reply = await running.client.post(f"{running.process.api}/alerts/{alert}/ack", headers=running.auth)
    assert reply.status_code == 200, reply.text
    assert "acknowledged" in reply.json()["steps"]

    async def acknowledged_in_record() -> bool:
        detail = await running.client.get(f"{running.process.api}/alerts/{alert}", headers=running.auth)
        return any(s["step"] == "acknowledged" for s in detail.json().get("steps", []))

    await until(acknowledged_in_record, 10, "the owning worker never applied the acknowledgement")

    [pid] = running.process.worker_pids(1)
    os.kill(pid, signal.SIGKILL)
    await eventually(lambda: not running.process._healthy(), 10, "the parent never noticed")
    body = {"outcome": "false_alarm", "note": "pressed it by mistake"}
    reply = await running.client.post(f"{running.process.api}/alerts/{alert}/resolve", json=body,
                                      headers=running.auth)  # its owner is down: it waits for it
    assert reply.status_code == 200, reply.text
    await publish(running.prefix, f"{second}/button", {"action": "single"})  # waits in the session
    await publish(running.prefix, f"{other}/button", {"action": "single"})  # the other worker's home
    await eventually(lambda: phone.for_(f"sam-{other}"), 15, "the other worker stopped working")

    await eventually(lambda: len(running.process.worker_pids(1)) == 2, 30, "worker 1 was not restarted")
    await eventually(lambda: phone.for_(f"sam-{second}"), 30, "the press made while it was down was lost")

    async def resolved_in_record() -> bool:
        detail = await running.client.get(f"{running.process.api}/alerts/{alert}", headers=running.auth)
        return any(s["step"] == "resolved" for s in detail.json().get("steps", []))

    await until(resolved_in_record, 30, "the restarted worker did not rebuild the alert and apply the resolution")

    async def no_longer_listed() -> bool:  # the parent lists states as the worker last pushed them
        return first not in {a["home"] for a in await running.open_alerts()}

    await until(no_longer_listed, 30, "the parent kept listing the resolved alert")
    calls = [b for b in phone.for_(f"sam-{first}") if b.get("type") == "warning"]
    assert len(calls) == 1, phone.for_(f"sam-{first}")  # rebuilt, not called again

async def test_a_new_home_file_reaches_its_owner_which_subscribes_to_it(running: Running, phone: Phone) -> None:
    name = next(f"new-{n}" for n in range(100) if partition_of(f"new-{n}", 2) == 1)
    (running.homes / f"{name}.yaml").write_text(yaml.safe_dump(button_home(name, phone)))

    async def listed() -> bool:
        reply = await running.client.get(f"{running.process.api}/homes/{name}", headers=running.auth)
        return reply.status_code == 200

    await until(listed, 15, "the parent never loaded the new home file")
    await asyncio.sleep(1.0)  # the owner's SUBSCRIBE follows the parent's forwarding
    for _ in range(20):
        await publish(running.prefix, f"{name}/button", {"action": "single"})
        if phone.for_(f"sam-{name}"):
            break
        await asyncio.sleep(0.5)
    await eventually(lambda: phone.for_(f"sam-{name}"), 10, "the owning worker never heard the new home")
