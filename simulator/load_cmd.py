"""`tecmon sim load`: N homes' traffic at a target aggregate rate, to MQTT or a file.

Reports the achieved rate (messages acknowledged by the broker per second of
wall time), which is what says whether a target was really reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from simulator.load import LoadPlan, load_home, run_load, shared_counter, simulated_messages
from simulator.personas import get_persona
from simulator.progress import Progress, Summary, wanted
from simulator.publisher import parse_address


def write_homes(directory: str, count: int, template: Any) -> None:
    """One home YAML per load home, so a gateway can be started with all of them."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        home = load_home(index, template)
        data = home.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        (folder / f"{home.home}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _to_file(plan: LoadPlan, template: Any, out: str) -> Summary:
    started = time.monotonic()
    start = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    count = 0
    with open(out, "w", encoding="utf-8") as handle:
        for message in simulated_messages(plan, template, start):
            payload = json.loads(message.payload)
            line = {"ts": message.ts.isoformat(), "topic": message.topic, "payload": payload}
            handle.write(json.dumps(line) + "\n")
            count += 1
    return Summary(f"load -> {out}", count, plan.homes, time.monotonic() - started)


def _watch(counter: Any, bar: Progress, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        bar.update(counter.value)


def _to_broker(plan: LoadPlan, template: Any, address: str, show: bool) -> Summary:
    host, port = parse_address(address)
    counter = shared_counter()
    bar = Progress(plan.rate * plan.duration, "msgs", sys.stderr, show)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(counter, bar, stop), daemon=True)
    watcher.start()
    try:
        result = run_load(plan, template, host, port, counter)
    finally:
        stop.set()
        watcher.join()
    bar.finish()
    print(f"load: target {plan.rate:,.0f} msg/s, achieved {result.rate:,.0f} msg/s "
          f"({result.messages:,} messages acknowledged in {result.seconds:.2f} s, "
          f"{plan.workers} process(es) x {plan.clients} connection(s), QoS {plan.qos})",
          file=sys.stderr)
    return Summary(f"load -> {address}", result.messages, plan.homes, result.seconds)


def run(args: argparse.Namespace) -> int:
    if not args.mqtt and not args.out:
        print("tecmon sim load: give --mqtt HOST:PORT or --out FILE", file=sys.stderr)
        return 2
    template = get_persona(args.persona).home()
    plan = LoadPlan(args.homes, args.rate, args.duration, args.prefix, args.seed,
                    args.workers, args.clients, 1, args.client)
    if args.write_homes:
        write_homes(args.write_homes, args.homes, template)
    if args.out:
        print(_to_file(plan, template, args.out).text(), file=sys.stderr)
    if args.mqtt:
        print(_to_broker(plan, template, args.mqtt, wanted(args.progress, sys.stderr)).text(),
              file=sys.stderr)
    return 0


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "load", help="many homes' traffic at a target rate, reporting the achieved rate")
    parser.add_argument("--homes", type=_positive(int), default=1000, help="number of homes")
    parser.add_argument("--rate", type=_positive(float), default=1000.0,
                        help="target messages per second, all homes together")
    parser.add_argument("--duration", type=_positive(float), default=10.0, help="seconds")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="publish to this broker (QoS 1)")
    parser.add_argument("--out", metavar="FILE.jsonl", help="write the load as replay JSONL instead")
    parser.add_argument("--workers", type=_positive(int), default=1, help="publishing processes")
    parser.add_argument("--clients", type=_positive(int), default=4, help="connections per process")
    parser.add_argument("--client", choices=("wire", "aiomqtt"), default="wire",
                        help="wire: lean batched publisher (default); aiomqtt: for comparison")
    parser.add_argument("--persona", default="julie", help="whose home's devices each home has")
    parser.add_argument("--prefix", default="zigbee2mqtt", help="topic prefix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-homes", metavar="DIR", help="also write each home's YAML here")
    parser.add_argument("--progress", action="store_true", help="draw a progress bar on stderr")
    parser.set_defaults(func=run)
