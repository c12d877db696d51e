"""The broker's security, on a real Mosquitto: TLS, one account per home, and the ACL that deploy/ ships.

A private Mosquitto (never the shared one on 1883) gets a TLS listener with a
certificate from a CA made here, a password file, and deploy/mosquitto/acl with
homes A and B added by `tecmon deploy mqtt-user`. Then the gateway's own client
(`gateway.mqtt.MqttSource` / `make_client`) connects over TLS and the accounts
are tried against what the README promises.

Absence is proven without sleeping: every forbidden publish is QoS 1, so once
its PUBACK is back the broker has finished with it (routed or dropped); a
permitted control message is then sent and awaited, and a forbidden message
would have been queued to the subscriber before that control.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from gateway.clock import SystemClock
from gateway.deploy_cli import bridge_user, set_password
from gateway.mqtt import Inbound, MqttSource, make_client
from gateway.settings import MqttSettings
from tests.conftest import eventually, free_port, wait_for_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREFIX = "zigbee2mqtt"  # the prefix deploy/mosquitto/acl is written for
GATEWAY_USER = "tecmon"
HOME_A, HOME_B = "home-a", "home-b"
WAIT_S = 10.0


# --------------------------------------------------------------------------- certificates


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)


def make_ca(directory: Path, common: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA valid for a day: (certificate file, key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{common}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(directory: Path, ca_key: ec.EllipticCurvePrivateKey,
                     ca: x509.Certificate) -> tuple[Path, Path]:
    """The broker's certificate for 127.0.0.1 and localhost, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


# --------------------------------------------------------------------------- the broker


@dataclass
class SecureBroker:
    port: int
    ca_file: Path
    other_ca_file: Path  # a CA the broker's certificate is not from
    passwords: dict[str, str]
    log: Path


def deploy_user(home: str, passwd: Path, acl: Path, password: str | None) -> str:
    """`tecmon deploy mqtt-user` as an operator runs it; returns the password it set."""
    argv = [sys.executable, "-m", "gateway.cli", "deploy", "mqtt-user", home,
            "--passwd", str(passwd), "--acl", str(acl)]
    if password is not None:
        argv.append("--password-stdin")
    done = subprocess.run(argv, input=(password or "") + "\n", capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"user {bridge_user(home)}" in done.stdout
    return password if password is not None else done.stderr.strip().splitlines()[-1]


def broker_conf(directory: Path, port: int, cert: Path, key: Path) -> Path:
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nprotocol mqtt\ncertfile {cert}\nkeyfile {key}\ntls_version tlsv1.2\n"
        f"allow_anonymous false\npassword_file {directory / 'passwd'}\nacl_file {directory / 'acl'}\n"
        f"persistence false\nlog_dest file {directory / 'mosquitto.log'}\nconnection_messages true\n"
        # Started as root, Mosquitto would switch to its own user and could not read this directory.
        "user root\n",
        encoding="utf-8",
    )
    return conf


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """One broker for the module: every client has an id of its own, so tests do not share sessions."""
    tmp_path = tmp_path_factory.mktemp("secure-broker")
    ca_file, ca_key, ca = make_ca(tmp_path, "tecmon-test-ca")
    other_ca_file, _, _ = make_ca(tmp_path, "someone-else-ca")
    cert, key = make_server_cert(tmp_path, ca_key, ca)
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    shutil.copy(ROOT / "deploy/mosquitto/acl", acl)  # the gateway's block, as shipped
    passwords = {GATEWAY_USER: f"gw-{uuid.uuid4().hex}"}
    set_password(passwd, GATEWAY_USER, passwords[GATEWAY_USER])
    passwords[HOME_A] = deploy_user(HOME_A, passwd, acl, None)  # a generated password
    passwords[HOME_B] = deploy_user(HOME_B, passwd, acl, f"b-{uuid.uuid4().hex}")
    port = free_port()
    assert port not in (1883, 8883)
    conf = broker_conf(tmp_path, port, cert, key)
    process = subprocess.Popen(["mosquitto", "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for_port("127.0.0.1", port):
            log = tmp_path / "mosquitto.log"
            pytest.fail(f"private Mosquitto did not start: {log.read_text() if log.exists() else ''}")
        yield SecureBroker(port, ca_file, other_ca_file, passwords, tmp_path / "mosquitto.log")
    finally:
        process.terminate()
        process.wait(timeout=10)


# --------------------------------------------------------------------------- clients


def gateway_settings(broker: SecureBroker, **overrides: Any) -> MqttSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": broker.port, "tls": True, "ca_file": broker.ca_file,
        "username": GATEWAY_USER, "password": broker.passwords[GATEWAY_USER], "prefix": PREFIX,
        "client_id": f"tecmon-{uuid.uuid4().hex[:8]}", "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
    }
    values.update(overrides)
    return MqttSettings(**values)


@contextlib.asynccontextmanager
async def gateway(broker: SecureBroker) -> AsyncIterator[list[Inbound]]:
    """The gateway's MQTT edge, connected and subscribed; yields what it has received so far."""
    received: list[Inbound] = []
    up = asyncio.Event()
    source = MqttSource(gateway_settings(broker), SystemClock(), on_connection=lambda c: up.set() if c else None)

    async def consume() -> None:
        async for inbound in source.messages():
            received.append(inbound)

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(up.wait(), WAIT_S)
        yield received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass
class Account:
    """Any account's client (a home's bridge, or the gateway's user): records deliveries and PUBACKs."""

    broker: SecureBroker
    user: str
    password: str
    received: list[tuple[str, bytes]] = field(default_factory=list)
    acks: dict[int, str] = field(default_factory=dict)
    subacks: list[int] = field(default_factory=list)
    connack: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.user}-{uuid.uuid4().hex[:6]}",
                                  protocol=paho.MQTTv5)
        self.client.tls_set(ca_certs=str(self.broker.ca_file))
        self.client.username_pw_set(self.user, self.password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "connack", str(rc))
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, str(rc))
        self.client.on_subscribe = lambda _c, _u, mid, _rc, _p: self.subacks.append(mid)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.broker.port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.received.append((message.topic, message.payload))

    def got(self, payload: bytes) -> bool:
        with self.lock:
            return any(p == payload for _, p in self.received)

    async def subscribe(self, topic_filter: str) -> None:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        await eventually(lambda: mid in self.subacks, WAIT_S, f"no SUBACK for {topic_filter}")

    async def publish(self, topic: str, payload: bytes) -> str:
        """QoS 1; returns the broker's PUBACK reason ('Success' or 'Not authorized')."""
        info = self.client.publish(topic, payload, qos=1)
        await eventually(lambda: info.mid in self.acks, WAIT_S, f"no PUBACK for {topic}")
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.asynccontextmanager
async def accounts(broker: SecureBroker, *users: str) -> AsyncIterator[list[Account]]:
    """Connected clients; a home's key (HOME_A) means that home's bridge user."""
    opened = []
    try:
        for user in users:
            name = GATEWAY_USER if user == GATEWAY_USER else bridge_user(user)
            client = Account(broker, name, broker.passwords[user])
            client.start()
            opened.append(client)
            await eventually(lambda c=client: c.connack is not None, WAIT_S, f"no CONNACK for {name}")
            assert client.connack == "Success", f"{name}: {client.connack}"
        yield opened
    finally:
        for client in opened:
            client.close()


def marker(what: str) -> bytes:
    return f'{{"occupancy": true, "marker": "{what}-{uuid.uuid4().hex[:8]}"}}'.encode()


def payloads(received: list[Inbound]) -> list[bytes]:
    return [m.payload for m in received]


# --------------------------------------------------------------------------- tests


async def test_the_gateway_connects_over_tls_with_its_own_account_and_receives_device_topics(
    broker: SecureBroker,
) -> None:
    async with gateway(broker) as received, accounts(broker, HOME_A, HOME_B) as (bridge_a, bridge_b):
        state, availability = marker("a-state"), b"online"
        assert await bridge_a.publish(f"{PREFIX}/{HOME_A}/bed", state) == "Success"
        assert await bridge_a.publish(f"{PREFIX}/{HOME_A}/bed/availability", availability) == "Success"
        from_b = marker("b-state")
        assert await bridge_b.publish(f"{PREFIX}/{HOME_B}/front-door", from_b) == "Success"
        await eventually(lambda: {state, availability, from_b} <= set(payloads(received)), WAIT_S,
                         f"the gateway did not receive every home's messages: {received}")
        assert {m.topic for m in received} == {
            f"{PREFIX}/{HOME_A}/bed", f"{PREFIX}/{HOME_A}/bed/availability", f"{PREFIX}/{HOME_B}/front-door"}


@pytest.mark.parametrize("topic", [f"{PREFIX}/{HOME_A}/bed", f"{PREFIX}/{HOME_A}/bed/set"])
async def test_the_gateways_account_cannot_publish_into_a_home(broker: SecureBroker, topic: str) -> None:
    async with gateway(broker) as received, accounts(broker, GATEWAY_USER, HOME_A) as (gw_user, bridge_a):
        await bridge_a.subscribe(f"{PREFIX}/{HOME_A}/#")  # as Zigbee2MQTT does: it would act on /set
        forged = marker("forged-by-gateway")
        assert await gw_user.publish(topic, forged) == "Not authorized"
        control = marker("control")
        assert await bridge_a.publish(f"{PREFIX}/{HOME_A}/bed", control) == "Success"
        await eventually(lambda: bridge_a.got(control), WAIT_S, "the bridge never got the control message")
        await eventually(lambda: control in payloads(received), WAIT_S, "the gateway never got the control")
        assert not bridge_a.got(forged), "the gateway's account commanded a home's devices"
        assert forged not in payloads(received)


async def test_a_home_cannot_publish_into_another_home(broker: SecureBroker) -> None:
    async with gateway(broker) as received, accounts(broker, HOME_A, HOME_B) as (bridge_a, bridge_b):
        await bridge_b.subscribe(f"{PREFIX}/{HOME_B}/#")
        forged = marker("a-into-b")
        assert await bridge_a.publish(f"{PREFIX}/{HOME_B}/bed", forged) == "Not authorized"
        assert await bridge_a.publish(f"{PREFIX}/{HOME_B}/bed/set", forged) == "Not authorized"
        control = marker("a-own")  # same client, so the broker handles it after the forged ones
        assert await bridge_a.publish(f"{PREFIX}/{HOME_A}/bed", control) == "Success"
        await eventually(lambda: control in payloads(received), WAIT_S, "the gateway never got A's control")
        assert forged not in payloads(received), "home A's account spoke for home B"
        assert not any(m.topic.startswith(f"{PREFIX}/{HOME_B}/") for m in received)
        assert not bridge_b.got(forged)


async def test_a_home_cannot_see_another_home(broker: SecureBroker) -> None:
    async with gateway(broker) as received, accounts(broker, HOME_A, HOME_B) as (bridge_a, bridge_b):
        await bridge_a.subscribe(f"{PREFIX}/#")  # granted, but delivery is filtered by the ACL
        private = marker("b-private")
        assert await bridge_b.publish(f"{PREFIX}/{HOME_B}/bed", private) == "Success"
        await eventually(lambda: private in payloads(received), WAIT_S, "the gateway never got B's message")
        control = marker("a-own")  # B's message was routed (PUBACK) before this was sent
        assert await bridge_a.publish(f"{PREFIX}/{HOME_A}/bed", control) == "Success"
        await eventually(lambda: bridge_a.got(control), WAIT_S, "A never got its own control message")
        assert not bridge_a.got(private), "home A read home B's sensors"
        assert all(topic.startswith(f"{PREFIX}/{HOME_A}/") for topic, _ in bridge_a.received)


REFUSED = {
    "anonymous": {"username": None, "password": None},
    "wrong password": {"password": "not-the-password"},
    "another home's password": {"password": "<home-a>"},
    "unknown user": {"username": "intruder", "password": "<home-a>"},
    "does not trust the CA": {"ca_file": "<other-ca>"},
    "no TLS on the TLS port": {"tls": False},
}


def _resolve(broker: SecureBroker, overrides: dict[str, Any]) -> dict[str, Any]:
    places = {"<home-a>": broker.passwords[HOME_A], "<other-ca>": broker.other_ca_file}
    return {key: places.get(value, value) if isinstance(value, str) else value
            for key, value in overrides.items()}


async def test_the_gateways_client_with_its_own_credentials_is_accepted(broker: SecureBroker) -> None:
    """The positive control of the refusals below: the same client, the right settings."""
    async with make_client(gateway_settings(broker)) as client:
        await client.subscribe(f"{PREFIX}/+/+", qos=1)


@pytest.mark.parametrize("overrides", REFUSED.values(), ids=REFUSED.keys())
async def test_a_client_without_the_right_credentials_or_trust_is_refused(
    broker: SecureBroker, overrides: dict[str, Any]
) -> None:
    settings = gateway_settings(broker, **_resolve(broker, overrides))
    with pytest.raises(aiomqtt.MqttError):
        async with make_client(settings) as client:
            await client.subscribe(f"{PREFIX}/+/+", qos=1)


def test_the_broker_is_not_the_shared_one_and_keys_are_private(broker: SecureBroker) -> None:
    assert broker.port not in (1883, 8883)
    assert os.stat(broker.log.parent / "server.key").st_mode & 0o077 == 0
    assert os.stat(broker.log.parent / "passwd").st_mode & 0o077 == 0
