"""Help press to the phone while a storm of device notices is being sent.

`python -m tests.benchmarks.notice_storm [--quick]`

A regional outage: 5,000 homes' bed sensors report offline at once, and each
home's engine raises a device notice for its service contact. The runtime,
dispatcher and real notifier (apprise, default settings) run in this process
as `tecmon serve` wires them, without MQTT (messages go straight to
`Runtime.ingest`; the MQTT path is measured by `tests.benchmarks.latency`).
Two local HTTP sinks that apprise's `json://` URLs post to: the service's
(answers each notice after `NOTICE_DELAY_S`, as a busy service does) and the
carers' phone. While the notices are going out, help presses in other homes
(each home pressed once) go to their carer's phone; latency is from just
before the press is ingested to the phone receiving the POST, on this
process's `time.monotonic()`. A press that never arrives counts as
infinitely late.

Two figures: every home with a service contact of its own (5,000 notices,
5,000 sends: nothing can be batched, the worst case for the queue), and
every home with one of 10 service contacts (the notices batched per contact).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.homeconfig import parse_home_config
from alerts.notify import Notifier
from gateway.clock import SystemClock
from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.runtime import Runtime
from tests.benchmarks.ingest import percentile, quiet_service_logs
from tests.conftest import Phone, free_port, start_phone

Record = dict[str, Any]
TARGET_MS = 1000.0
NOTICE_DELAY_S = 0.02
ARRIVAL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Plan:
    storm_homes: int
    probes: int
    probe_every_s: float
    service_contacts: int | None  # None: one per home


FULL = [Plan(5000, 100, 0.05, None), Plan(5000, 100, 0.05, 10)]
QUICK = [Plan(500, 10, 0.05, None), Plan(500, 10, 0.05, 10)]


@dataclass
class ServiceSink:
    """The service contacts' endpoint: answers 200 after a short delay, counts what it got."""

    port: int = field(default_factory=free_port)
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ThreadingHTTPServer:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(NOTICE_DELAY_S)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with sink.lock:
                    sink.received += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def storm_home(i: int, plan: Plan, sink: ServiceSink) -> dict[str, Any]:
    contact = i if plan.service_contacts is None else i % plan.service_contacts
    return {
        "home": f"storm-{i}", "timezone": "Europe/London", "person": {"name": f"Person {i}"},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed", "heartbeat": "0m"}],
        "routine": {"night": {"from": "00:00", "to": "23:59"}, "device_offline_after": "0m"},
        "contacts": [{"name": "Family", "notify": ["json://127.0.0.1:9/unused"]}],
        "service_contacts": [{"name": f"Engineer {contact}",
                              "notify": [f"json://127.0.0.1:{sink.port}/eng-{contact}"]}],
    }


def probe_home(i: int, phone: Phone) -> dict[str, Any]:
    return {
        "home": f"probe-{i}", "timezone": "Europe/London", "person": {"name": f"Probe {i}"},
        "devices": [{"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button"}],
        "routine": {"night": {"from": "00:00", "to": "23:59"}},
        "contacts": [{"name": "Carer", "notify": [phone.url(f"probe-{i}")]}],
    }


def arrival(phone: Phone, who: str) -> float | None:
    with phone.lock:
        return next((at for at, path, _ in phone.received if path.strip("/") == who), None)


async def probe(runtime: Runtime, phone: Phone, plan: Plan) -> list[float]:
    """Press each probe home once, `probe_every_s` apart; milliseconds to the phone, each."""
    clock, pressed = runtime.clock, {}
    for i in range(plan.probes):
        pressed[i] = time.monotonic()
        runtime.ingest(Inbound(f"zigbee2mqtt/probe-{i}/ok-button", b'{"action": "single"}', clock.now(), 1))
        await asyncio.sleep(plan.probe_every_s)
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while time.monotonic() < deadline and any(arrival(phone, f"probe-{i}") is None for i in pressed):
        await asyncio.sleep(0.05)
    return [((got - at) * 1000.0) if (got := arrival(phone, f"probe-{i}")) is not None else math.inf
            for i, at in pressed.items()]


async def storm(plan: Plan) -> Record:
    phone, sink = Phone(free_port()), ServiceSink()
    servers = [start_phone(phone), sink.start()]
    clock, metrics = SystemClock(), Metrics()
    runtime = Runtime(clock, metrics)
    for i in range(plan.storm_homes):
        runtime.set_home(parse_home_config(storm_home(i, plan, sink), "bench"))
    for i in range(plan.probes):
        runtime.set_home(parse_home_config(probe_home(i, phone), "bench"))
    notifier = Notifier(clock=clock.now, metrics=metrics)
    dispatcher = Dispatcher(runtime, notifier, metrics, clock, deque(maxlen=100))
    tasks = [asyncio.create_task(dispatcher.run()), asyncio.create_task(runtime.run_timers())]
    try:
        await notifier.warm_up()
        for i in range(plan.storm_homes):
            runtime.ingest(Inbound(f"zigbee2mqtt/storm-{i}/bed/availability", b"offline", clock.now(), 1))
        while sink.received == 0:
            await asyncio.sleep(0.01)
        before = sink.received
        latencies = await probe(runtime, phone, plan)
        after = sink.received
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in list(dispatcher._tasks):
            task.cancel()
        notifier.close()
        for server in servers:
            server.shutdown()
    return {"latencies_ms": latencies, "notices_sent_before_probes": before,
            "notices_sent_when_probes_done": after, "notices_held_for_batches": dispatcher.batcher.held()}


def record(plan: Plan, result: Record) -> Record:
    latencies = result.pop("latencies_ms")
    p99 = percentile(latencies, 0.99)
    contacts = "its own service contact" if plan.service_contacts is None else \
        f"one of {plan.service_contacts} service contacts (batched)"
    return {
        "name": f"help press -> phone while {plan.storm_homes:,} device notices are sent, each home "
                f"with {contacts}, p99",
        "value": round(p99, 1) if math.isfinite(p99) else p99, "unit": "ms", "target": f"< {TARGET_MS:g}",
        "pass": p99 < TARGET_MS,
        "detail": {"p50_ms": round(statistics.median(latencies), 1), "max_ms": max(latencies),
                   "probes": len(latencies), "lost": sum(1 for v in latencies if not math.isfinite(v)),
                   "notice_delay_s": NOTICE_DELAY_S, "path": "Runtime.ingest -> engine -> Dispatcher -> "
                   "Notifier (apprise json://) -> local HTTP phone; no MQTT", **result},
    }


async def run(quick: bool = False) -> list[Record]:
    out = []
    with quiet_service_logs():
        for plan in QUICK if quick else FULL:
            out.append(record(plan, await storm(plan)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 homes and 10 presses, to check it works")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick)), indent=2, default=str))


if __name__ == "__main__":
    main()
