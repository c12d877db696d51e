"""A real three-node NATS cluster (JetStream + MQTT) on free loopback ports, for the tests.

Started from `gateway.cluster_config`, the same renderer as `deploy/nats/`, so
the tests exercise the deployed mapping. The shared NATS on 4222 is never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.cluster_config import NodePorts, NodeSpec, render_node
from tests.conftest import free_port, port_open

NATS_SERVER = os.environ.get("TECMON_NATS_SERVER") or shutil.which("nats-server") or "/usr/bin/nats-server"
"""Debian's nats-server; `TECMON_NATS_SERVER` names another build (the crash-window trials of newer versions)."""


def nats_server_version() -> str:
    out = subprocess.run([NATS_SERVER, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().removeprefix("nats-server: ") or "unknown"


@dataclass
class NatsCluster:
    root: Path
    partitions: int
    prefix: str = "zigbee2mqtt"
    nodes: list[NodeSpec] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, partitions: int, size: int = 3) -> NatsCluster:
        root.mkdir(parents=True, exist_ok=True)
        cluster = cls(root, partitions)
        for i in range(size):
            ports = NodePorts(free_port(), free_port(), free_port(), free_port())
            cluster.nodes.append(NodeSpec(f"n{i + 1}", "127.0.0.1", ports, str(root / f"n{i + 1}")))
        return cluster

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{n.ports.client}" for n in self.nodes]

    def node(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)

    def start(self, name: str | None = None) -> None:
        for node in self.nodes if name is None else [self.node(name)]:
            conf = self.root / f"{node.name}.conf"
            conf.write_text(render_node(node, self.nodes, self.prefix, self.partitions))
            log = open(self.root / f"{node.name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            self.procs[node.name] = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=log, stderr=log)
        self.wait_ready()

    def wait_ready(self, seconds: float = 30.0) -> None:
        """Every running node answers MQTT and its JetStream has a meta leader."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            gone = [n for n in self.procs if not self.running(n)]
            if gone:
                pytest.fail(f"NATS node(s) {gone} exited; logs in {self.root}")
            if all(self._ready(n) for n in self.nodes if self.running(n.name)):
                return
            time.sleep(0.1)
        pytest.fail(f"NATS cluster not ready in {seconds}s; logs in {self.root}")

    def _ready(self, node: NodeSpec) -> bool:
        if not port_open("127.0.0.1", node.ports.mqtt):
            return False
        info = self.monitor(node.name, "jsz")
        return bool(info and info.get("meta_cluster", {}).get("leader"))

    def monitor(self, name: str, endpoint: str) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.node(name).ports.monitor}/{endpoint}"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                loaded: dict[str, Any] = json.loads(response.read())
                return loaded
        except OSError:
            return None

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def stop(self, name: str, hard: bool = False, lame_duck: bool = True) -> None:
        """A graceful stop (lame duck mode, or a plain SIGTERM shutdown) or a kill -9.

        Returns at once; `wait_stopped` waits for the process to end.
        """
        proc = self.procs[name]
        if hard or not lame_duck:
            proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            return
        proc.send_signal(signal.SIGUSR2)  # lame duck: its leaders move away, then it may go
        deadline = time.monotonic() + 15
        while self.leads_streams(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)

    def stream_messages(self) -> int:
        """How many messages the ingest stream holds, as JetStream's API says."""
        return asyncio.run(stream_state_of(self)).messages

    def leads_streams(self, name: str) -> bool:
        info = self.monitor(name, "jsz?accounts=true&streams=true") or {}
        streams = [s for a in info.get("account_details", []) for s in a.get("stream_detail", [])]
        return any(s.get("cluster", {}).get("leader") == name for s in streams)

    def wait_stopped(self, name: str) -> None:
        self.procs[name].wait(timeout=30)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _through_election(cluster: NatsCluster, ask: Callable[[Any], Awaitable[Any]], what: str) -> Any:
    """`ask(link)`, asked again for up to 10 s while a leader election makes JetStream's API fail."""
    from gateway.nats import NatsLink

    link = NatsLink(cluster.urls)
    await link.connect()
    try:
        for _ in range(40):
            with contextlib.suppress(Exception):
                return await ask(link)
            await asyncio.sleep(0.25)
        raise AssertionError(f"the ingest stream {what}")
    finally:
        await link.close()


async def stream_state_of(cluster: NatsCluster) -> Any:
    """The ingest stream's state (`gateway.nats.StreamState`), asked again through an election."""
    return await _through_election(cluster, lambda link: link.stream_state(), "never answered")


async def stream_payloads(cluster: NatsCluster, start_seq: int, count: int) -> list[bytes]:
    """The payloads of `count` messages from `start_seq` on, read back again through an election."""

    async def read(link: Any) -> list[bytes]:
        return [m.payload async for m in link.read_all(count, start_seq=start_seq, idle_s=2.0)]

    return list(await _through_election(cluster, read, "could not be read back"))


def publish_mqtt(cluster: NatsCluster, topics: list[str], payload: bytes | list[bytes], node: str | None = None,
                 client_id: str = "tecmon-test-publisher", per_second: float | None = None, qos: int = 1) -> int:
    """Publish each topic at `qos` (1, or 2 where the server has it) over MQTT 3.1.1, round-robin
    over the running nodes (or to `node`), at most `per_second`; returns how many the server
    acknowledged (PUBACK, or PUBCOMP at QoS 2)."""
    return len(publish_mqtt_acked(cluster, topics, payload, node, client_id, per_second, qos))


def publish_mqtt_acked(cluster: NatsCluster, topics: list[str], payload: bytes | list[bytes],
                       node: str | None = None, client_id: str = "tecmon-test-publisher",
                       per_second: float | None = None, qos: int = 1) -> list[int]:
    """As `publish_mqtt`; returns the indices of the messages the server acknowledged."""
    import paho.mqtt.client as mqtt

    names = [node] if node else [n.name for n in cluster.nodes if cluster.running(n.name)]
    clients = []
    for name in names:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{client_id}-{name}",
                             protocol=mqtt.MQTTv311)
        client.connect("127.0.0.1", cluster.node(name).ports.mqtt)
        client.loop_start()
        clients.append(client)
    acked: list[int] = []
    try:
        infos = []
        for i, topic in enumerate(topics):
            body = payload[i] if isinstance(payload, list) else payload
            infos.append(clients[i % len(clients)].publish(topic, body, qos=qos))
            if per_second:
                time.sleep(1.0 / per_second)
        deadline = time.monotonic() + 30  # one overall wait: a stuck session must not stall for hours
        for i, info in enumerate(infos):
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
            if info.is_published():
                acked.append(i)
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
    return acked
