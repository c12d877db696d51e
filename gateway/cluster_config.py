"""The NATS cluster's configuration, written from one place.

The files in `deploy/nats/` and the clusters the tests start come from these
functions, so the subject mapping a test proves is the one deployed. The
mapping is the heart of partitioning: a home publishes
`zigbee2mqtt/<home>/<device>` over MQTT, NATS turns it into the subject
`zigbee2mqtt.<home>.<device>`, and the mapping moves it to
`tecmon.in.<p>.zigbee2mqtt.<home>.<device>` where `<p>` is
`{{partition(N,1)}}`: FNV-1a of the home token, modulo N, the same number
`gateway.partitions.partition_of(home, N)` computes. Only device state and
availability are mapped; `.../set` commands to devices pass through untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

STREAM = "tecmon-in"
SUBJECT_ROOT = "tecmon.in"
DEFAULT_PARTITIONS = 16


@dataclass(frozen=True, slots=True)
class NodePorts:
    client: int
    cluster: int
    mqtt: int
    monitor: int


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    host: str
    ports: NodePorts
    store_dir: str
    bind: str = ""  # the address to listen on, when not `host` (0.0.0.0 in a container)

    @property
    def listen(self) -> str:
        return self.bind or self.host


def partition_subject(partition: int) -> str:
    """Every message of one partition."""
    return f"{SUBJECT_ROOT}.{partition}.>"


def mqtt_topic_of(subject: str) -> str:
    """`tecmon.in.<p>.zigbee2mqtt.h.d` -> `zigbee2mqtt/h/d`: the topic the home published."""
    parts = subject.split(".", 3)
    if len(parts) < 4 or f"{parts[0]}.{parts[1]}" != SUBJECT_ROOT:
        raise ValueError(f"not a partitioned ingest subject: {subject!r}")
    return parts[3].replace(".", "/")


def partition_of_subject(subject: str) -> int:
    return int(subject.split(".", 3)[2])


def mappings(prefix: str, partitions: int) -> dict[str, str]:
    """Source subject -> partitioned destination, for state and availability messages."""
    part = f"{{{{partition({partitions},1)}}}}"
    state = f"{SUBJECT_ROOT}.{part}.{prefix}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}"
    return {
        f"{prefix}.*.*": state,
        f"{prefix}.*.*.availability": f"{state}.availability",
    }


def render_node(node: NodeSpec, peers: list[NodeSpec], prefix: str, partitions: int,
                cluster_name: str = "tecmon") -> str:
    """One node's nats-server configuration (NATS 2.9 syntax)."""
    routes = ",\n    ".join(f"nats://{p.host}:{p.ports.cluster}" for p in peers if p.name != node.name)
    maps = "\n  ".join(f'"{src}": "{dst}"' for src, dst in mappings(prefix, partitions).items())
    return f"""# tecmon NATS node {node.name}: JetStream, MQTT 3.1.1 listener, partition mapping.
server_name: {node.name}
listen: {node.listen}:{node.ports.client}
http: {node.listen}:{node.ports.monitor}
# A graceful stop starts with lame duck mode (SIGUSR2, `nats-server --signal ldm`): stream and
# consumer leaders move to the other nodes while this one still works; see deploy/nats/README.md.
lame_duck_grace_period: "1s"
lame_duck_duration: "30s"

jetstream {{
  store_dir: "{node.store_dir}"
  max_memory_store: 256MB
  max_file_store: 8GB
}}

cluster {{
  name: {cluster_name}
  listen: {node.listen}:{node.ports.cluster}
  routes: [
    {routes}
  ]
}}

mqtt {{
  listen: {node.listen}:{node.ports.mqtt}
  # Sessions and retained messages replicated like the ingest stream.
  stream_replicas: 3
  ack_wait: "30s"
}}

# {partitions} partitions; every node must carry the same mapping and the same N.
mappings {{
  {maps}
}}
"""


def stream_config(partitions: int, max_age_h: float = 48.0) -> dict[str, object]:
    """The one replicated ingest stream, in `nats stream add --config` JSON form.

    Kept 48 h by default: twice the recovery window, so a partition taken over
    can always be consumed from its checkpoint.
    """
    return {
        "name": STREAM,
        "subjects": [f"{SUBJECT_ROOT}.>"],
        "retention": "limits",
        "storage": "file",
        "num_replicas": 3,
        "max_age": int(max_age_h * 3600 * 1_000_000_000),
        "discard": "old",
        "duplicate_window": 120_000_000_000,
        "description": f"tecmon sensor messages in {partitions} partitions",
    }


def compose_nodes() -> list[NodeSpec]:
    """The three nodes of `deploy/nats/compose.yaml`: one container each, same ports inside."""
    ports = NodePorts(client=4222, cluster=6222, mqtt=1883, monitor=8222)
    return [NodeSpec(f"nats{i}", f"nats{i}", ports, "/data", bind="0.0.0.0") for i in (1, 2, 3)]


def deploy_files(prefix: str = "zigbee2mqtt", partitions: int = DEFAULT_PARTITIONS) -> dict[str, str]:
    """`deploy/nats/<file>` -> its content; a test keeps the checked-in files equal to these."""
    nodes = compose_nodes()
    files = {f"{n.name}.conf": render_node(n, nodes, prefix, partitions) for n in nodes}
    files["stream.json"] = json.dumps(stream_config(partitions), indent=2) + "\n"
    return files


if __name__ == "__main__":  # python -m gateway.cluster_config deploy/nats
    import sys
    from pathlib import Path

    for name, text in deploy_files().items():
        (Path(sys.argv[1]) / name).write_text(text, encoding="utf-8")
