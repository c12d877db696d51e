"""`tecmon demo`: the whole system on one machine, with nothing to install.

An embedded MQTT broker (amqtt, MQTT 3.1.1), the gateway exactly as
`tecmon serve` runs it, two "phones" (a local HTTP sink that apprise's
`json://` posts to), and the simulator playing a night of Julie's with short
thresholds so the alert arrives within a couple of minutes: she gets up, moves
about the hall, and does not go back to bed. Nobody answers the first call, so
it escalates; the night responder acknowledges through the API; Julie goes
back to bed and everyone is told it is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

import yaml

from alerts.events import EventKind, SensorEvent
from device_profiles import get_profile
from gateway.service import Service, install_stop_signals
from gateway.settings import Settings

HOME = "julie-12-oak-road"
PROFILES = {
    "bed": ("tuya-ts0601-bed", EventKind.BED),
    "hall-motion": ("aqara-rtcgq11lm", EventKind.MOTION),
    "front-door": ("aqara-mccgq11lm", EventKind.DOOR),
    "ok-button": ("aqara-wxkg11lm", EventKind.BUTTON),
}

# (seconds after start, device, value): Julie's night, compressed.
STORY: list[tuple[float, str, bool]] = [
    (1, "bed", True),
    (4, "bed", False),
    (6, "hall-motion", True),
    (25, "hall-motion", True),
    (45, "hall-motion", True),
    (65, "hall-motion", True),
    (85, "hall-motion", True),
    (100, "bed", True),
]
ACK_AT = 90.0  # the night responder acknowledges through the API


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seconds(value: float, speed: float) -> str:
    return f"{max(1, round(value / speed))}s"


def demo_home(now_local: datetime, speed: float = 1.0) -> dict[str, Any]:
    """Julie's home with the night around 'now' and thresholds in seconds, not minutes."""
    start = (now_local - timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + timedelta(hours=6)).strftime("%H:%M")
    return {
        "home": HOME,
        "timezone": "Europe/London",
        "person": {
            "name": "Julie",
            "in_my_words": "I get up for the loo once or twice and sometimes make tea.",
        },
        "devices": [
            {
                "id": d,
                "profile": p,
                "kind": k.value,
                "room": "hall" if d != "bed" else "bedroom",
                **({"exit": True} if d == "front-door" else {}),
            }
            for d, (p, k) in PROFILES.items()
        ],
        "routine": {
            "night": {"from": start, "to": end},
            "out_of_bed": {"alert_after": _seconds(60, speed)},
            "exit_door": {"alert_if_not_back_within": _seconds(30, speed)},
            "still_while_up": {"alert_after": _seconds(45, speed)},
        },
        "escalation": {"ack_within": _seconds(20, speed), "repeat_every": _seconds(30, speed)},
    }


class _Phone(BaseHTTPRequestHandler):
    out: TextIO = sys.stdout

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        with contextlib.suppress(ValueError):
            note = json.loads(body)
            who = self.path.strip("/").replace("-", " ")
            self.out.write(f"        📱 {who}'s phone: {note.get('title')}\n")
            link = next((w for w in str(note.get("message", "")).split() if "/ack/" in w), None)
            if link:
                self.out.write(f"           tap to acknowledge: {link}\n")
            self.out.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def phones(port: int, out: TextIO) -> Iterator[None]:
    _Phone.out = out
    server = ThreadingHTTPServer(("127.0.0.1", port), _Phone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()


async def start_broker(port: int) -> Any:
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    return broker


async def play_story(port: int, service: Service, out: TextIO, speed: float = 1.0) -> None:
    """Publish the night as Zigbee2MQTT would, then acknowledge like a carer would."""
    import aiomqtt

    loop = asyncio.get_running_loop()
    begin = loop.time()
    async with aiomqtt.Client("127.0.0.1", port, identifier="tecmon-demo-sim") as client:
        for offset, device, value in STORY:
            await asyncio.sleep(max(0.0, begin + offset / speed - loop.time()))
            profile, kind = PROFILES[device]
            event = SensorEvent(HOME, device, kind, value, service.clock.now())
            payload = get_profile(profile).bind(kind).encode(event)
            await client.publish(f"zigbee2mqtt/{HOME}/{device}", json.dumps(payload), qos=1)
            out.write(f"  sim   {device} -> {json.dumps(payload)}\n")
            if offset < ACK_AT <= _next_offset(offset):
                await asyncio.sleep(max(0.0, begin + ACK_AT / speed - loop.time()))
                await loop.run_in_executor(None, _acknowledge, service, out)


def _next_offset(offset: float) -> float:
    later = [o for o, _, _ in STORY if o > offset]
    return later[0] if later else offset


def _acknowledge(service: Service, out: TextIO) -> None:
    """The night responder signs in and acknowledges, as a phone app would."""
    alerts = service.runtime.open_alerts()
    if not alerts:
        return
    api = service.settings.api
    base = f"http://{api.host}:{api.port}"
    form = urllib.parse.urlencode({"username": "night", "password": DEMO_PASSWORDS["night"]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/auth/token", form), timeout=5) as response:
        token = json.loads(response.read())["access_token"]
    url = f"{base}/alerts/{alerts[0]['alert']}/ack"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, b"{}", headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        out.write(f"  api   POST {url} (signed in as night) -> {response.status}\n")


DEMO_PASSWORDS: dict[str, str] = {}
DEMO_USERS = (
    ("root", "admin", None, "the administrator"),
    ("ana", "coordinator", None, "the care coordinator"),
    ("sam", "carer", "Sam (daughter)", "Julie's daughter"),
    ("night", "carer", "Night responder", "the night responder"),
)


async def add_demo_users(service: Service, out: TextIO) -> None:
    """A coordinator and two carers with fresh passwords, printed once so a person can sign in."""
    await service.store.open()
    for name, role, contact, who in DEMO_USERS:
        DEMO_PASSWORDS[name] = secrets.token_urlsafe(9)
        await service.accounts.add_user(name, role, (HOME,), contact, DEMO_PASSWORDS[name])
        out.write(f"  sign in as {name:<6} password {DEMO_PASSWORDS[name]}   ({who}, {role})\n")


def print_line(out: TextIO, zone: Any) -> Any:
    def show(line: dict[str, Any]) -> None:
        at = datetime.fromisoformat(line["at"]).astimezone(zone).strftime("%H:%M:%S")
        who = f" -> {line['contact']}" if line["contact"] else ""
        out.write(f"{at}  {line['step'].upper():<12} {line['kind']}{who}\n          {line['reason']}\n")
        out.flush()

    return show


async def run_live_demo(out: TextIO, exit_when_done: bool, speed: float = 1.0) -> int:
    """`speed` compresses the night further (the tests run it ten times faster)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/London")
    broker_port, phone_port, api_port = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tecmon-demo-"))
    home = demo_home(datetime.now(zone), speed)
    home["contacts"] = [
        {"name": "Sam (daughter)", "notify": [f"json://127.0.0.1:{phone_port}/Sam"]},
        {"name": "Night responder", "notify": [f"json://127.0.0.1:{phone_port}/Night-responder"]},
    ]
    (workdir / "julie.yaml").write_text(yaml.safe_dump(home, sort_keys=False))
    settings = Settings(
        mqtt={"host": "127.0.0.1", "port": broker_port, "protocol": "3.1.1", "client_id": "tecmon-demo"},
        database_url=f"sqlite:///{workdir / 'tecmon.db'}",
        homes=[workdir],
        api={"host": "127.0.0.1", "port": api_port},
        public_url=f"http://127.0.0.1:{api_port}",  # acknowledgement links in the messages open here
        notify={"timeout_s": 5, "retries": 1},
    )
    stop = asyncio.Event()
    install_stop_signals(stop)
    broker = await start_broker(broker_port)
    service = Service(settings, on_line=print_line(out, zone))
    out.write(
        f"tecmon demo: broker mqtt://127.0.0.1:{broker_port} (embedded), home files in {workdir}\n"
        f"  pages    http://127.0.0.1:{api_port}/         (sign in with a name and password below)\n"
        f"  API      http://127.0.0.1:{api_port}/alerts   (sign in first; POST /alerts/<id>/ack)\n"
        f"  metrics  http://127.0.0.1:{api_port}/metrics  (as root, the admin)\n"
        f"  Julie gets up and does not go back to bed: {_seconds(60, speed)} out of bed raises an alert.\n"
    )
    await add_demo_users(service, out)
    out.write(
        f"  e.g.  curl -s -d username=sam -d password={DEMO_PASSWORDS['sam']} "
        f"http://127.0.0.1:{api_port}/auth/token\n\n"
    )
    with phones(phone_port, out):
        runner = asyncio.create_task(service.run(stop))
        await asyncio.sleep(1.0)
        await play_story(broker_port, service, out, speed)
        await asyncio.sleep(3.0)
        out.write(
            "\nThe night is over. "
            + (
                "Stopping.\n"
                if exit_when_done
                else "The service keeps running: try the URLs above. Ctrl-C stops everything.\n"
            )
        )
        out.flush()
        if exit_when_done:
            stop.set()
        await runner
    await broker.shutdown()
    out.write("Stopped cleanly.\n")
    return 0
