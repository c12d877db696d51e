"""deploy/nats/compose.yaml agrees with the node files and with the server version measured.

Nothing here can start the containers (no container runtime in the test
environment); these checks catch what would keep the cluster from coming up:
a health check the image cannot run, gateways told another partition count
or other node names than the nodes have.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from gateway.cluster_config import DEFAULT_PARTITIONS, compose_nodes
from tests.unit.deploy_support import DEPLOY

COMPOSE = DEPLOY / "nats" / "compose.yaml"


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"])


def nats_services() -> dict[str, Any]:
    return {name: svc for name, svc in services().items() if name.startswith("nats")}


def test_the_nodes_are_the_ones_the_files_are_rendered_for() -> None:
    assert sorted(nats_services()) == sorted(node.name for node in compose_nodes())
    for name, svc in nats_services().items():
        assert svc["command"] == ["-c", f"/etc/nats/{name}.conf"]
        assert f"./{name}.conf:/etc/nats/{name}.conf:ro" in svc["volumes"]


def test_the_nats_image_can_run_its_health_check() -> None:
    """The plain `nats` image is built from scratch: no shell, no wget. The alpine variant has both."""
    for svc in nats_services().values():
        assert svc["healthcheck"]["test"][:2] == ["CMD", "wget"]
        assert svc["image"].endswith("-alpine"), svc["image"]


def test_the_nats_image_is_a_version_with_mqtt_qos_2() -> None:
    """QoS 2 on a hub's bridge is one of the crash-window mitigations (README); NATS has it from 2.10."""
    for svc in nats_services().values():
        found = re.fullmatch(r"nats:(\d+)\.(\d+)(\.\d+)?-alpine", svc["image"])
        assert found, svc["image"]
        assert (int(found[1]), int(found[2])) >= (2, 10)


def test_the_gateways_are_told_the_nodes_and_the_partition_count_of_the_files() -> None:
    gateways = {name: svc for name, svc in services().items() if name.startswith("gateway")}
    assert len(gateways) >= 2
    urls = [f"nats://{node.host}:{node.ports.client}" for node in compose_nodes()]
    for svc in gateways.values():
        env = svc["environment"]
        assert json.loads(env["TECMON_NATS__SERVERS"]) == urls
        assert int(env["TECMON_NATS__PARTITIONS"]) == DEFAULT_PARTITIONS
        assert env["TECMON_INGEST"] == "nats"
