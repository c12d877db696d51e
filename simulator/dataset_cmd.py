"""`tecmon sim dataset ...`: recorded datasets turned into replay JSONL.

`tecmon sim dataset ordonez --sensors OrdonezA_Sensors.txt --out a.jsonl`
writes lines that `tecmon replay --config ordonez-a.home.yaml --events a.jsonl`
reads. Output goes to a file or, with `--out -`, to stdout so the two commands
can be piped; the summary and progress lines go to stderr for the same reason.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, TextIO

from alerts.homeconfig import HomeConfig, load_home_config
from simulator.ordonez import DatasetError, ReplayLine, convert_ordonez, write_jsonl

EXIT_OK, EXIT_USAGE = 0, 2
BUNDLED_MAP = "ordonez-a.map.yaml"


def register(commands: Any) -> None:
    dataset: argparse.ArgumentParser = commands.add_parser(
        "dataset", help="convert a recorded dataset to replay JSONL"
    )
    sources = dataset.add_subparsers(dest="dataset", required=True)
    ordonez = sources.add_parser(
        "ordonez", help="Ordóñez ADL binary-sensor dataset (UCI), e.g. OrdonezA_Sensors.txt"
    )
    ordonez.add_argument("--sensors", required=True, metavar="PATH", help="the *_Sensors.txt file")
    ordonez.add_argument("--map", metavar="PATH", help=f"device map YAML (default: bundled {BUNDLED_MAP})")
    ordonez.add_argument("--home-config", metavar="HOME.yaml",
                         help="check the map against this home and use its id in topics")
    ordonez.add_argument("--out", default="-", metavar="FILE", help="JSONL output, or - for stdout (default)")
    ordonez.add_argument("--prefix", default="zigbee2mqtt", help="MQTT topic prefix (default zigbee2mqtt)")
    ordonez.set_defaults(func=cmd_ordonez)


def cmd_ordonez(args: argparse.Namespace) -> int:
    home: HomeConfig | None = load_home_config(args.home_config) if args.home_config else None
    try:
        if args.map:
            lines = convert_ordonez(Path(args.sensors), Path(args.map), home, args.prefix)
        else:
            with as_file(files("simulator") / "data" / BUNDLED_MAP) as bundled:
                lines = convert_ordonez(Path(args.sensors), bundled, home, args.prefix)
    except (DatasetError, OSError) as exc:
        print(f"tecmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.out == "-":
        _write(lines, sys.stdout, "stdout")
    else:
        with open(args.out, "w", encoding="utf-8") as out:
            _write(lines, out, args.out)
    return EXIT_OK


def _write(lines: Iterable[ReplayLine], out: TextIO, name: str) -> None:
    def progress(count: int, ts: str) -> None:
        print(f"ordonez: {count} events written, up to {ts}", file=sys.stderr, flush=True)

    summary = write_jsonl(lines, out, progress)
    print(f"ordonez: {summary.describe()} -> {name}", file=sys.stderr)
