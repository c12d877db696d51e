"""`tecmon sim scenario NAME`: one night with an injected incident, plus its ground truth.

Also holds the output options shared with `tecmon sim persona`: a replay
JSONL file (`--out`, ground truth beside it as `*.expected.jsonl`), an MQTT
broker (`--mqtt`, at `--speed`), or standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from simulator.groundtruth import Expected
from simulator.personas import resolve_home
from simulator.progress import Progress, Summary, wanted
from simulator.publisher import parse_address, publish_lines
from simulator.scenarios import ScenarioError, all_scenarios, generate


def expected_path(out: str) -> Path:
    """`night.jsonl` -> `night.expected.jsonl`."""
    path = Path(out)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + ".expected.jsonl")


def add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE.jsonl", help="write replay JSONL here")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="publish to this MQTT broker")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="with --mqtt: 1 = real time, 60 = a minute a second, 0 = flat out")
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=1, help="MQTT QoS (default 1)")
    parser.add_argument("--topic-prefix", metavar="BASE",
                        help="with --mqtt: publish under this base topic instead of the lines' own")
    parser.add_argument("--progress", action="store_true", help="draw a progress bar on stderr")


def add_night_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="same seed, same night (default 0)")
    parser.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the evening the night starts on (default 2026-01-11)")
    parser.add_argument("--prefix", default="zigbee2mqtt", help="topic prefix in the lines")


def deliver(lines: list[str], args: argparse.Namespace, what: str, homes: int,
            expected: Sequence[Expected] | None = None, started: float | None = None) -> int:
    """Write and/or publish the lines, then print the summary; returns the exit code."""
    started = time.monotonic() if started is None else started
    if args.out:
        Path(args.out).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        if expected is not None:
            text = "".join(json.dumps(e.line(), ensure_ascii=False) + "\n" for e in expected)
            expected_path(args.out).write_text(text, encoding="utf-8")
    if args.mqtt:
        host, port = parse_address(args.mqtt)
        bar = Progress(len(lines), "msgs", sys.stderr, wanted(args.progress, sys.stderr))
        report = asyncio.run(publish_lines(lines, host, port, args.speed, args.qos,
                                           args.topic_prefix, bar.update))
        bar.finish()
        print(f"published {report.messages:,} messages to {args.mqtt} at "
              f"{report.rate:,.0f} msg/s", file=sys.stderr)
    if not args.out and not args.mqtt:
        sys.stdout.write("".join(line + "\n" for line in lines))
    print(Summary(what, len(lines), homes, time.monotonic() - started).text(), file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    known = all_scenarios()
    if args.list or not args.name:
        width = max(len(name) for name in known)
        for name, chosen in sorted(known.items()):
            print(f"{name:<{width}}  {chosen.summary}")
        return 0 if args.list else 2
    started = time.monotonic()
    try:
        home, persona = resolve_home(args.home, args.persona)
        made = generate(args.name, home, persona, args.seed, args.date, args.prefix)
    except ScenarioError as exc:
        print(f"tecmon sim scenario: {exc}", file=sys.stderr)
        return 2
    if args.out:
        config = Path(args.home) if Path(args.home).is_file() else persona.home_file.resolve()
        print(f"ground truth: {len(made.expected)} lifecycle line(s) -> "
              f"{expected_path(args.out)}; check with: tecmon replay --config {config} "
              f"--events {args.out}", file=sys.stderr)
    what = f"scenario {made.name} ({home.home}, seed {args.seed})"
    return deliver(made.lines, args, what, 1, made.expected, started)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "scenario", help="a night with an injected incident, and the alerts it must raise")
    parser.add_argument("name", nargs="?", help="the scenario (see --list)")
    parser.add_argument("--list", action="store_true", help="list the built-in scenarios")
    parser.add_argument("--home", default="julie",
                        help="a persona's bundled home (julie, arthur, maya) or a home YAML path")
    parser.add_argument("--persona", help="whose habits to simulate (default: the home's own)")
    add_night_args(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)
