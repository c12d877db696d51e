"""An in-process service for API tests: SQLite, a simulated clock, homes on disk, accounts.

The parts are those `tecmon serve` runs (`gateway.service.Service`), opened
and loaded the same way, without the MQTT and timer tasks: a test steps the
engine by calling the runtime, and reaches the app through httpx's ASGI
transport.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.accounts import hash_password
from gateway.clock import SimClock
from gateway.service import Service
from gateway.settings import Settings
from gateway.store.accounts import UserRow

T0 = datetime(2026, 1, 12, 23, 0, tzinfo=UTC)
PASSWORD = "SECRET-passw0rd-for-tests"
SECRET_MARK = "SECRET"
"""Every secret a test uses carries this mark; no response body or log line may ever show it."""
SECRET_URL = "json://127.0.0.1:9/phone-SECRET-TOKEN-julie"
"""A recognisable notification URL: no response or log line may ever contain its secret part."""


def home(home_id: str, contact: str = "Sam (daughter)", url: str = SECRET_URL) -> dict[str, Any]:
    return {
        "home": home_id, "timezone": "Europe/London",
        "person": {"name": home_id.split("-")[0].title(), "in_my_words": "I make tea some nights."},
        "devices": [
            {"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed", "room": "bedroom"},
            # The tests' nights leave out the Aqara sensors' hourly reports: no heartbeat (0m).
            {"id": "hall-motion", "profile": "aqara-rtcgq11lm", "kind": "motion", "room": "hall",
             "heartbeat": "0m"},
            {"id": "front-door", "profile": "aqara-mccgq11lm", "kind": "door", "room": "hall", "exit": True,
             "heartbeat": "0m"},
            {"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button", "room": "bedroom",
             "heartbeat": "0m"},
        ],
        "routine": {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "45m"}},
        "contacts": [{"name": contact, "notify": [url]}],
    }


USERS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "root": ("admin", (), None),
    "ana": ("coordinator", ("julie",), None),
    "sam": ("carer", ("julie",), "Sam (daughter)"),
    "eve": ("engineer", (), None),
    "olga": ("coordinator", ("arthur",), None),
    "bob": ("carer", ("arthur",), "Bob (son)"),
}


@dataclass
class World:
    service: Service
    client: httpx.AsyncClient
    clock: SimClock
    homes_dir: Path
    users: dict[str, Any] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)

    def token(self, user: str) -> str:
        """A fresh bearer token (signed at the simulated clock's now, so it is never stale)."""
        return self.service.accounts.issue(self.users[user])[0]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    async def login(self, user: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post("/auth/token", data={"username": user, "password": password})

    async def flush(self) -> None:
        """Carry out what the engine decided (record it), as the dispatcher and writer would."""
        while not self.service.runtime.outbox.empty():
            self.service.dispatcher.handle(self.service.runtime.outbox.get_nowait())
        assert await self.service.writer.flush(timeout_s=5)


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@asynccontextmanager
async def api_world(tmp_path: Path, file_homes: tuple[str, ...] = ("julie", "arthur"),
                    **settings: Any) -> AsyncIterator[World]:
    homes_dir = tmp_path / "homes"
    homes_dir.mkdir()
    for home_id in file_homes:
        contact = "Bob (son)" if home_id == "arthur" else "Sam (daughter)"
        (homes_dir / f"{home_id}.yaml").write_text(yaml.safe_dump(home(home_id, contact)))
    clock = SimClock(T0)
    settings.setdefault("notify", {"retries": 0, "timeout_s": 2})
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'tecmon.db'}", homes=[homes_dir],
                               **settings), clock=clock)
    await service.store.open()
    await service._load_from_store()
    service.apply_removed(*service.watcher.scan(lambda cfg: service.apply_home(cfg, starting=True)))
    service.runtime.start_all()
    service.api.ready["recovered"] = True
    for name, (role, homes, contact) in USERS.items():  # one argon2 hash for all: each costs ~0.1 s
        await service.store.add_user(UserRow(name, role, homes, contact, _password_hash(), T0))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=service.app, client=("203.0.113.7", 50000))
    bodies: list[str] = []

    async def keep_body(response: httpx.Response) -> None:
        bodies.append((await response.aread()).decode("utf-8", "replace"))

    async with httpx.AsyncClient(transport=transport, base_url="http://tecmon.test",
                                 event_hooks={"response": [keep_body]}) as client:
        world = World(service, client, clock, homes_dir, bodies=bodies)
        for name in USERS:
            world.users[name] = await service.store.get_user(name)
        yield world
    await service.store.close()
    leaked = [body[:300] for body in bodies if SECRET_MARK in body]
    assert not leaked, f"a response body shows a secret: {leaked}"


def copy_home(home_id: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(home(home_id))
    data.update(changes)
    return data


def message(home_id: str, device: str, payload: dict[str, Any], at: datetime) -> Any:
    from gateway.mqtt import Inbound

    return Inbound(f"zigbee2mqtt/{home_id}/{device}", json.dumps(payload).encode(), at, 1)


async def raise_out_of_bed(world: World, home_id: str = "julie") -> str:
    """Bed occupied, then empty, then 50 minutes pass: out_of_bed_too_long is raised and notified."""
    from datetime import timedelta

    runtime = world.service.runtime
    start = world.clock.now()
    runtime.ingest(message(home_id, "bed", {"occupancy": True}, start))
    runtime.ingest(message(home_id, "bed", {"occupancy": False}, start + timedelta(minutes=1)))
    world.clock.set(start + timedelta(minutes=50))
    runtime.fire_due()
    await world.flush()
    alerts = [a for a in runtime.open_alerts() if a["home"] == home_id]
    assert alerts, "expected an open alert"
    return str(alerts[0]["alert"])
