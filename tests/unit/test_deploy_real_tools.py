"""The deployment's files run by the real tools: systemd-analyze verifies the unit, Mosquitto its config.

A private Mosquitto runs deploy/mosquitto's config and ACL, with a password
file made for the test, on free ports (never the shared broker's); its TLS
listener, the compose health check and the ACL are tried with real MQTT clients.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy_support import (
    BRIDGE_USER,
    DEPLOY,
    _no_tecmon_env,  # noqa: F401  (autouse: no TECMON_* leaks in)
    acl,
    exec_start,
    healthcheck_command,
    homes,
    mosquitto_conf,
    read,
    service,
    settings,
)
from tests.unit.test_deploy import home_topics

# =========================================================================== real tools, where installed


def tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        pytest.fail(f"{name} is not installed; it is part of this machine's base image")
    return found


def test_systemd_analyze_knows_every_key(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    text = read("systemd/tecmon.service").replace(exec_start()[0], "/bin/true")
    unit = tmp_path / "tecmon.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if str(unit) in line]
    assert not complaints, "\n".join(complaints)


# --------------------------------------------------------------------------- a private broker


@dataclass
class Broker:
    ports: dict[int, int]  # listener port in mosquitto.conf -> port of this test broker
    passwords: dict[str, str]
    ca_file: Path
    log: Path
    proc: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return cert, key


def password_file(path: Path, users: list[str]) -> dict[str, str]:
    passwd = tool("mosquitto_passwd")
    path.touch()
    passwords = {user: f"pw-{i}-{os.getpid()}" for i, user in enumerate(users)}
    for user, password in passwords.items():
        subprocess.run([passwd, "-b", str(path), user, password], check=True, capture_output=True)
    return passwords


def private_conf(tmp_path: Path, port_map: dict[int, int], cert: Path, key: Path) -> str:
    """mosquitto.conf with every path moved into tmp_path and every listener on a free local port."""
    replacements = {"password_file": tmp_path / "passwd", "acl_file": tmp_path / "acl",
                    "certfile": cert, "keyfile": key, "cafile": cert}
    out = [f"user {getpass.getuser()}"]
    for key_word, args in mosquitto_conf().lines:
        if key_word == "listener":
            out.append(f"listener {port_map[int(args[0])]} 127.0.0.1")
        elif key_word in replacements:
            out.append(f"{key_word} {replacements[key_word]}")
        elif key_word == "persistence_location":
            out.append(f"persistence_location {tmp_path}/")
        elif key_word == "log_dest":
            out.append("log_dest stdout")
        else:
            assert not any(a.startswith("/") for a in args), f"unhandled path in mosquitto.conf: {key_word}"
            out.append(" ".join([key_word, *args]))
    return "\n".join(out) + "\n"


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"mosquitto is not listening on {port}:\n{log.read_text(errors='replace')}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    mosquitto = tool("mosquitto")
    cert, key = self_signed_cert(tmp_path)
    passwords = password_file(tmp_path / "passwd", [*acl().users, "intruder"])
    shutil.copy(DEPLOY / "mosquitto/acl", tmp_path / "acl")
    port_map = {li.port: free_port() for li in mosquitto_conf().listeners}
    assert not set(port_map.values()) & {1883, 8883}, "never the shared broker's ports"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(private_conf(tmp_path, port_map, cert, key), encoding="utf-8")
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        for port in port_map.values():
            wait_listening(port, proc, log)
        yield Broker(port_map, passwords, cert, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_mosquitto_starts_with_this_config(broker: Broker) -> None:
    assert broker.proc.poll() is None, broker.log.read_text(errors="replace")
    for port in broker.ports.values():
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


def test_the_tls_listener_completes_a_handshake(broker: Broker) -> None:
    tls_port = broker.ports[next(li.port for li in mosquitto_conf().listeners if li.tls)]
    context = ssl.create_default_context(cafile=str(broker.ca_file))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_compose_healthcheck_passes_against_the_broker(broker: Broker) -> None:
    tool("mosquitto_sub")
    plain = next(li.port for li in mosquitto_conf().listeners if not li.tls)
    command = healthcheck_command(service("mosquitto")).replace(f"-p {plain}", f"-p {broker.ports[plain]}")
    assert subprocess.run(["sh", "-c", command], check=False, timeout=30).returncode == 0


class Client:
    """A paho MQTT 5 client that records deliveries and PUBACK reason codes."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.received: list[str] = []
        self.acks: dict[int, Any] = {}
        self.connack: Any = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{user}-{os.getpid()}", protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connected.wait(5), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self._connected.set()

    def subscribe(self, topic_filter: str) -> None:
        self.client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(5), "no SUBACK"

    def publish(self, topic: str) -> str:
        info = self.client.publish(topic, b'{"occupancy": true}', qos=1)
        info.wait_for_publish(5)
        deadline = time.monotonic() + 5
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return str(self.acks.get(info.mid))

    def wait_for(self, topic: str) -> None:
        deadline = time.monotonic() + 5
        while topic not in self.received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert topic in self.received, f"{topic} never arrived; got {self.received}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def clients(broker: Broker, users: list[str | None]) -> Iterator[list[Client]]:
    port = broker.ports[next(li.port for li in mosquitto_conf().listeners if not li.tls)]
    opened: list[Client] = []
    try:
        for user in users:
            opened.append(Client(port, user, broker.passwords.get(user) if user else None))
        yield opened
    finally:
        for c in opened:
            c.close()


def test_the_acl_holds_on_a_real_broker(broker: Broker) -> None:
    mqtt = settings().mqtt
    home = homes()[0]
    own = home_topics(home, mqtt.prefix)[0]
    bridge = BRIDGE_USER.format(home=home.home)
    with clients(broker, [mqtt.username, bridge, "intruder", None]) as (gateway, z2m, intruder, anonymous):
        assert str(anonymous.connack) == "Not authorized"
        gateway.subscribe(f"{mqtt.prefix}/+/#")
        z2m.subscribe(f"{mqtt.prefix}/{home.home}/#")
        denied = [
            (z2m, f"{mqtt.prefix}/another-home/bed"),
            (intruder, own),
            (gateway, f"{own}/set"),
        ]
        for publisher, topic in denied:
            assert publisher.publish(topic) == "Not authorized", topic
        assert z2m.publish(own) == "Success"
        gateway.wait_for(own)
        z2m.wait_for(own)
        assert gateway.received == [own], "a denied message was delivered"
        assert z2m.received == [own]

