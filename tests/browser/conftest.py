"""The pages in a real browser: Debian's Chromium driven by Playwright, against a real `tecmon serve`.

One `tecmon serve` process for the whole session (SQLite, the real Mosquitto,
a local phone sink for notifications), with two homes: `rose`, managed in the
database with 15 stored nights of history (so the what-if preview has
something to count), and `ivy`, a home file with a two-second out-of-bed rule
so that a live alert arrives while a test watches.

Chromium is Debian's own (`/usr/bin/chromium`), installed with apt-get when
missing; never a browser downloaded by Playwright.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Phone, add_account, free_port, start_phone
from tests.integration.test_recovery import ROOT, ServeProcess

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "out" / "screenshots"
PASSWORD = "browser-SECRET-pw-1"
USERS = {"ana": ("coordinator", ("rose", "ivy"), None), "sam": ("carer", ("rose", "ivy"), "Sam"),
         "eve": ("engineer", (), None)}
DEVICES = [
    {"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed", "room": "bedroom"},
    # The stored nights are the bed's alone: no movement, no hourly reports. A hall sensor silent
    # for a fortnight would be a notice (motion_silent), which is not what these pages test.
    {"id": "hall-motion", "profile": "aqara-rtcgq11lm", "kind": "motion", "room": "hall",
     "expect_movement_every": "0m"},
    {"id": "front-door", "profile": "aqara-mccgq11lm", "kind": "door", "room": "hall", "exit": True},
    {"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button", "room": "bedroom"},
    {"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"},  # to ask first
]


@dataclass
class Served:
    url: str
    prefix: str
    phone: Phone
    night_from: datetime  # tonight's window start (UTC): the stored nights start at this time of day

    def publish(self, home: str, device: str, payload: Any) -> None:
        """A Zigbee2MQTT message on the real Mosquitto, as the home's coordinator would send it."""
        from simulator.publisher import Message, publish_messages

        body = payload if isinstance(payload, str) else json.dumps(payload)
        message = Message(datetime.now(UTC), f"{self.prefix}/{home}/{device}", body.encode())
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
            pool.submit(asyncio.run, publish_messages([message], "127.0.0.1", 1883, speed=0, qos=1)).result()


def night(now: datetime) -> dict[str, str]:
    """A night window around now (UTC): the live alert falls inside it, and so do the stored nights'."""
    return {"from": (now - timedelta(hours=3)).strftime("%H:%M"), "to": (now + timedelta(hours=3)).strftime("%H:%M")}


def home(name: str, person: str, phone: Phone, routine: dict[str, Any], words: str) -> dict[str, Any]:
    return {"home": name, "timezone": "UTC", "person": {"name": person, "in_my_words": words},
            "devices": DEVICES, "routine": routine,
            "contacts": [{"name": "Sam", "notify": [phone.url(f"sam-{name}")]},
                         {"name": "Night responder", "notify": [phone.url(f"night-{name}")]}],
            "escalation": {"ack_within": "10m", "repeat_every": "5m"}}


def history_lines(prefix: str, start: datetime, nights: int = 15) -> list[str]:
    """Each night an hour after the window opens: in bed, then up for 30 minutes, then back; up
    for the day half an hour after the window closes (so no bed says occupied for 16 hours)."""
    out = []
    for n in range(1, nights + 1):
        at = start - timedelta(days=n) + timedelta(hours=1)
        for offset, occupied in ((0, True), (60, False), (90, True), (330, False)):
            out.append(json.dumps({"ts": (at + timedelta(minutes=offset)).isoformat(),
                                   "topic": f"{prefix}/rose/bed", "payload": {"occupancy": occupied}}))
    return sorted(out, key=lambda line: json.loads(line)["ts"])


def chromium() -> str:
    if not CHROMIUM.exists():
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing and apt-get could not install it")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API holds an event loop in this thread while it runs, so it must
    be stopped before the async tests of other modules run."""
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, headless=True)
        yield launched
        launched.close()


def _prepare(workdir: Path, prefix: str, phone: Phone, now: datetime) -> tuple[dict[str, Any], str]:
    database = f"sqlite:///{workdir / 'tecmon.db'}"
    for name, (role, homes, contact) in USERS.items():
        asyncio.run(add_account(database, name, role, PASSWORD, homes, contact))
    (workdir / "homes").mkdir()
    ivy = home("ivy", "Ivy", phone, {"night": night(now), "out_of_bed": {"alert_after": "2s"},
                                     "device_offline_after": "1s"}, "I sleep through, mostly.")
    (workdir / "homes" / "ivy.yaml").write_text(yaml.safe_dump(ivy))
    rose = home("rose", "Rose", phone, {"night": night(now), "out_of_bed": {"alert_after": "45m"}},
                "I get up for the loo and sometimes sit in the kitchen for half an hour.")
    (workdir / "rose.yaml").write_text(yaml.safe_dump(rose))
    (workdir / "rose.jsonl").write_text("\n".join(history_lines(prefix, _start(now))) + "\n")
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "import-events", "--database", database,
                           "--config", str(workdir / "rose.yaml"), "--prefix", prefix,
                           str(workdir / "rose.jsonl")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    settings = {"mqtt": {"prefix": prefix, "client_id": f"tecmon-{prefix}"}, "database_url": database,
                "homes": [str(workdir / "homes")], "api": {"host": "127.0.0.1", "port": free_port()},
                "store_flush_s": 0.1, "recovery_window_h": 0.01, "config_poll_s": 1,
                "notify": {"timeout_s": 5, "retries": 0}}
    return settings, json.dumps(rose)


def _start(now: datetime) -> datetime:
    start = now - timedelta(hours=3)
    return start.replace(second=0, microsecond=0)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, mosquitto: tuple[str, int]) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("browser")
    prefix = f"b{uuid.uuid4().hex[:8]}"
    phone = Phone(free_port())
    server = start_phone(phone)
    now = datetime.now(UTC)
    settings, rose = _prepare(workdir, prefix, phone, now)
    serve = ServeProcess(workdir, settings)
    serve.start()
    try:
        with httpx.Client(base_url=serve.api, timeout=10) as client:
            token = client.post("/auth/token", data={"username": "ana", "password": PASSWORD}).json()
            created = client.post("/homes", headers={"Authorization": f"Bearer {token['access_token']}"},
                                  json={"config": json.loads(rose), "why": "set up with Rose and Sam"})
            assert created.status_code == 201, created.text
        yield Served(serve.api, prefix, phone, _start(now))
    finally:
        serve.stop()
        server.shutdown()
        if SHOTS.exists():
            shutil.copy(serve.log, SHOTS / "serve.log")


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """`new_page(width, height)`: a fresh context (no cookies) per call, closed after the test;
    any script error or refused resource (a CSP violation) fails the test."""
    contexts: list[Any] = []
    problems: list[str] = []

    def make(width: int = 1024, height: int = 800) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def sign_in(page: Any, served: Served, name: str, path: str = "/") -> None:
    page.goto(served.url + path)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Any, name: str) -> None:
    """The whole page, and its first screen alone (small enough for the README's docs/screenshots)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SHOTS / f"{name}.top.png"))


def axe_check(page: Any, name: str, strict: bool = False) -> None:
    """No serious or critical accessibility violation (axe-core); `strict`: no violation at all."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in results.response["violations"] if strict or v["impact"] in ("serious", "critical")]
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.axe.txt").write_text(results.generate_snapshot() or "no violations\n")
    assert not bad, f"{name}: {bad}"
