"""A misbehaving hub: garbage at the broker's full rate, for the flood test and benchmark.

`python -m tests.flood_hub --port P --prefix X --home H --seconds S [--progress FILE]`

It frames MQTT 3.1.1 QoS 0 PUBLISH packets itself and writes them in batches
on a blocking socket, so it sends as fast as the broker takes them (well over
10,000 messages a second); TCP slows it when the broker cannot keep up. The
garbage cycles through what a broken or hostile hub sends: payloads that are
not JSON on its own devices, homes nobody configured, topics of the wrong
depth, garbage on its own button's topic (which the gateway's urgent session
carries), and now and then a payload far larger than any device state. It prints
one JSON line at the end: `{"sent", "seconds", "per_s"}`; with `--progress` it
also writes the running count there about every 50 ms, so a test can tell how
much of the flood was sent before a given moment.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import time
from pathlib import Path

from simulator.wire import DISCONNECT, _varint, connect_packet

PUBLISH_QOS0 = 0x30
BATCH = 200
HUGE_EVERY = 500  # one message in this many carries a 200 KB payload


def publish(topic: str, payload: bytes) -> bytes:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw + payload
    return bytes([PUBLISH_QOS0]) + _varint(len(body)) + body


def garbage(prefix: str, home: str) -> list[bytes]:
    """One cycle of the garbage, framed once: the flood only repeats it."""
    packets = []
    for n in range(50):
        packets += [
            publish(f"{prefix}/{home}/bed", b"\xff\xfe not json %d" % n),
            publish(f"{prefix}/{home}/hall-motion", b"{\"occupancy\": tru"),
            publish(f"{prefix}/nobody-{n}/bed", b"{\"occupancy\": true}"),
            publish(f"{prefix}/{home}/bed/x/y/z", b"{}"),
            publish(f"{prefix}/{home}/ok-button", b"<button>%d</button>" % n),
        ]
    return packets


def flood(host: str, port: int, prefix: str, home: str, seconds: float, progress: Path | None) -> dict[str, float]:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(f"flood-{os.getpid()}"))
    sock.recv(4)  # CONNACK
    huge = publish(f"{prefix}/{home}/hall-motion", b"{\"x\": \"" + b"A" * 200_000 + b"\"}")
    cycle = itertools.cycle(garbage(prefix, home))
    sent, began = 0, time.monotonic()
    ends, told = began + seconds, began
    while (now := time.monotonic()) < ends:
        batch = [next(cycle) for _ in range(BATCH)]
        if sent % HUGE_EVERY < BATCH:
            batch[0] = huge
        sock.sendall(b"".join(batch))
        sent += BATCH
        if progress is not None and now - told > 0.05:
            progress.write_text(str(sent))
            told = now
    elapsed = time.monotonic() - began
    if progress is not None:
        progress.write_text(str(sent))
    sock.sendall(bytes([DISCONNECT, 0]))
    sock.close()
    return {"sent": sent, "seconds": round(elapsed, 2), "per_s": round(sent / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="zigbee2mqtt")
    parser.add_argument("--home", required=True)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--progress", type=Path)
    args = parser.parse_args()
    print(json.dumps(flood(args.host, args.port, args.prefix, args.home, args.seconds, args.progress)))


if __name__ == "__main__":
    main()
