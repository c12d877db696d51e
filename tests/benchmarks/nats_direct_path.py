"""The crash window's other half: a direct MQTT QoS 1 subscriber across a kill -9 of a node.

`python -m tests.benchmarks.nats_direct_path`

Homes publish 2,000 numbered bed reports at 500/s through one node; a QoS 1
session subscriber on the partitioned subjects (`tecmon/in/#`) sits on a
third; the node leading the MQTT message stream is killed mid-way. Printed:
how many the publisher had acknowledged, how many distinct ones the
subscriber got. With the stream capture (`tests.benchmarks.cluster`) a kill
-9 of the stream leader loses about 1,200 of 2,000; this path is the
evidence for reading live messages directly as a mitigation (README).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from tests.integration.nats_cluster import NatsCluster, publish_mqtt


def leader_of(cluster: NatsCluster, stream: str) -> str | None:
    for node in cluster.nodes:
        info = cluster.monitor(node.name, "jsz?accounts=true&streams=true") or {}
        for account in info.get("account_details", []):
            for detail in account.get("stream_detail", []):
                if detail["name"] == stream:
                    leader: str | None = detail.get("cluster", {}).get("leader")
                    return leader
    return None


def trial(root: Path, count: int = 2000) -> dict[str, Any]:
    cluster = NatsCluster.create(root, 4)
    cluster.start()
    got: set[bytes] = set()
    lock = threading.Lock()
    try:
        names = [n.name for n in cluster.nodes]
        sub_node = names[2]
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gateway-session",
                          protocol=mqtt.MQTTv311, clean_session=False)

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            with lock:
                got.add(message.payload)

        sub.on_message = on_message
        sub.connect("127.0.0.1", cluster.node(sub_node).ports.mqtt)
        sub.loop_start()
        sub.subscribe("tecmon/in/#", qos=1)
        time.sleep(2)  # the session's assets are made
        leader = leader_of(cluster, "$MQTT_msgs") or names[0]
        victim = leader if leader != sub_node else names[0]
        via = next(n for n in names if n not in (victim, sub_node))
        payloads = [b'{"occupancy": true, "n": %d}' % i for i in range(count)]
        acked: list[int] = []
        thread = threading.Thread(target=lambda: acked.append(publish_mqtt(
            cluster, ["zigbee2mqtt/h/bed"] * count, payloads, node=via, per_second=500)))
        thread.start()
        time.sleep(count / 500 / 2)
        cluster.stop(victim, hard=True)
        thread.join()
        time.sleep(5)
        sub.loop_stop()
        return {"victim": victim, "msgs_leader": leader, "via": via, "subscriber_on": sub_node,
                "acknowledged": acked[0], "received_distinct": len(got)}
    finally:
        cluster.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps([trial(Path(tmp) / f"t{i}") for i in range(2)], indent=2))


if __name__ == "__main__":
    main()
