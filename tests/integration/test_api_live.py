"""Through a real `tecmon serve` (a process of its own) and the real Mosquitto and PostgreSQL:
a coordinator changes a routine through the API and the very next alert follows it.

Accounts are made with the real `tecmon users add`, as an operator would.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Phone, eventually, free_port, sign_in
from tests.integration.test_recovery import ROOT, ServeProcess, home, publish

pytestmark = pytest.mark.integration
PASSWORD = "coordinator-SECRET-pw-1"


def users_add(database: str, name: str, role: str, homes: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "add", name, "--role", role,
                           "--homes", homes, "--password-stdin", "--database", database],
                          input=PASSWORD + "\n", text=True, capture_output=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
async def served(tmp_path: Path, database: str, phone: Phone, mosquitto: tuple[str, int]) -> AsyncIterator[Any]:
    (tmp_path / "homes").mkdir()
    prefix = f"a{uuid.uuid4().hex[:8]}"
    users_add(database, "ana", "coordinator", "cleo")
    settings = {"mqtt": {"prefix": prefix, "client_id": f"tecmon-{prefix}"}, "database_url": database,
                "homes": [str(tmp_path / "homes")], "api": {"host": "127.0.0.1", "port": free_port()},
                "store_flush_s": 0.1, "notify": {"timeout_s": 5, "retries": 0}}
    serve = ServeProcess(tmp_path, settings)
    serve.start()
    try:
        yield serve, prefix
    finally:
        serve.stop()


async def test_a_routine_changed_through_the_api_changes_the_next_alert(served: Any, phone: Phone) -> None:
    serve, prefix = served
    async with httpx.AsyncClient(base_url=serve.api, timeout=10) as client:
        auth = await sign_in(client, serve.api, "ana", PASSWORD)
        created = await client.post("/homes", headers=auth,
                                    json={"config": home("cleo", phone, "2s"), "why": "set up with Cleo"})
        assert created.status_code == 201, created.text
        await publish(prefix, "cleo/bed", {"occupancy": True})
        await publish(prefix, "cleo/bed", {"occupancy": False})
        await eventually(lambda: phone.for_("sam-cleo"), 15, "the 2 s routine never called Sam")

        changed = home("cleo", phone, "5s")
        reply = await client.put("/homes/cleo", headers=auth, json={"config": changed, "why": "Cleo wants longer"})
        assert reply.status_code == 200 and reply.json()["version"] == 2
        await publish(prefix, "cleo/bed", {"occupancy": True})  # back in bed: the first alert clears
        await eventually(lambda: len(phone.for_("sam-cleo")) == 2, 15, "Sam was not told it is over")
        await publish(prefix, "cleo/bed", {"occupancy": False})
        await eventually(lambda: len(phone.for_("sam-cleo")) == 3, 20, "the 5 s routine never called Sam")

        history: list[dict[str, Any]] = []

        async def recorded() -> int:
            history[:] = (await client.get("/alerts", headers=auth, params={"state": "all"})).json()["items"]
            return len(history)

        for _ in range(300):  # the record is written a moment after the call
            if await recorded() == 2:
                break
            await asyncio.sleep(0.1)
        assert len(history) == 2, history
        second = (await client.get(f"/alerts/{history[0]['alert']}", headers=auth)).json()
        assert "5 seconds" in second["reason"], second["reason"]
        first = (await client.get(f"/alerts/{history[1]['alert']}", headers=auth)).json()
        assert "2 seconds" in first["reason"], first["reason"]
        versions = (await client.get("/homes/cleo/versions", headers=auth)).json()
        assert [(v["version"], v["saved_by"], v["why"]) for v in versions] == [
            (1, "ana", "set up with Cleo"), (2, "ana", "Cleo wants longer")]
    assert "coordinator-SECRET" not in serve.log.read_text()
