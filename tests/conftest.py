"""Shared fixtures: the real Mosquitto, private brokers, and a phone that records alerts.

Integration tests use the machine's Mosquitto on 127.0.0.1:1883; if it is
installed but stopped it is started, and if it cannot be reached the test
fails (never skips). Tests that stop or restart a broker start their own on a
free port and leave the shared one alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SHARED_MQTT = ("127.0.0.1", 1883)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.05)
    return False


async def eventually(condition: Any, seconds: float, why: str) -> None:
    """Wait for `condition()` to hold, failing the test with `why` after `seconds`."""
    import asyncio

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(why)
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mosquitto() -> tuple[str, int]:
    """The shared broker, started if it is installed but stopped."""
    if not port_open(*SHARED_MQTT):
        subprocess.run(["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"], check=False)
        wait_for_port(*SHARED_MQTT)
    if not port_open(*SHARED_MQTT):
        pytest.fail("Mosquitto is not reachable on 127.0.0.1:1883 and could not be started")
    return SHARED_MQTT


@dataclass
class PrivateBroker:
    """A Mosquitto of our own, with persistence, that a test may stop and restart."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> Path:
        path = self.directory / "mosquitto.conf"
        path.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.directory}/\n"
            "autosave_interval 1\nmax_queued_messages 100000\nmax_inflight_messages 100\n"
            f"log_dest file {self.directory}/mosquitto.log\n"
            # Started as root, Mosquitto would switch to its own user and then could not
            # write its persistence file into the test's private directory.
            "user root\n"
        )
        return path

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config())],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port("127.0.0.1", self.port):
            pytest.fail(f"private Mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: Mosquitto writes its persistence file
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@dataclass
class Phone:
    """A local HTTP sink that apprise's json:// URLs post to; records what it gets."""

    port: int
    received: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, who: str) -> str:
        return f"json://127.0.0.1:{self.port}/{who}"

    def for_(self, who: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, path, body in self.received if path.strip("/") == who]


def start_phone(sink: Phone) -> ThreadingHTTPServer:
    """Serve the sink on its port in a background thread; call .shutdown() to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()
            with sink.lock:
                sink.received.append((time.monotonic(), self.path, json.loads(body or b"{}")))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _PhoneServer(("127.0.0.1", sink.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _PhoneServer(ThreadingHTTPServer):
    """A listen queue like a real endpoint's: with the default of 5, calls arriving together
    overflowed it and the kernel dropped their SYNs, so the test's phone answered a whole
    second (TCP's first retransmission) late and the delay was the harness's, not tecmon's."""

    request_queue_size = 128


@pytest.fixture
def phone() -> Iterator[Phone]:
    sink = Phone(free_port())
    server = start_phone(sink)
    yield sink
    server.shutdown()


async def add_account(database_url: str, name: str, role: str, password: str, homes: tuple[str, ...] = (),
                      contact: str | None = None) -> None:
    """An account in the database a service will use, as `tecmon users add` makes it."""
    from gateway.accounts import Accounts
    from gateway.settings import AuthSettings
    from gateway.store import open_store

    store = open_store(database_url)
    await store.open()
    try:
        from datetime import UTC, datetime

        await Accounts(store, AuthSettings(), lambda: datetime.now(UTC)).add_user(
            name, role, homes, contact, password)
    finally:
        await store.close()


async def sign_in(client: Any, api: str, name: str, password: str) -> dict[str, str]:
    """Bearer headers for `name`, through POST /auth/token."""
    reply = await client.post(f"{api}/auth/token", data={"username": name, "password": password})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}
