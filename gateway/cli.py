"""The `tecmon` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from alerts.decisions import Decision
from alerts.describe import explain
from alerts.homeconfig import ConfigError, HomeConfig, load_home_config
from gateway.replay import BadLine, lifecycle_line, parse_timestamp, run_replay

EXIT_OK, EXIT_USAGE, EXIT_BAD_LINES = 0, 2, 3


def _load_homes(paths: Sequence[str]) -> list[HomeConfig]:
    # replay calls nobody: a home that names no contact can still be replayed
    homes = [load_home_config(p, service_fallback=True) for p in paths]
    seen: set[str] = set()
    for cfg in homes:
        if cfg.home in seen:
            raise ConfigError(cfg.home, [f"home: {cfg.home!r} is configured twice"])
        seen.add(cfg.home)
    return homes


def _open_events(path: str) -> TextIO:
    return sys.stdin if path == "-" else open(path, encoding="utf-8")


def cmd_replay(args: argparse.Namespace) -> int:
    homes = _load_homes(args.config)
    until = parse_timestamp(args.until, "--until") if args.until else None
    out = sys.stdout

    def emit(decision: Decision) -> None:
        out.write(json.dumps(lifecycle_line(decision), ensure_ascii=False) + "\n")

    with _open_events(args.events) as lines:
        report = run_replay(homes, lines, emit, until=until, prefix=args.prefix)
    for number, reason in report.problems:
        print(f"{args.events}:{number}: {reason}; line skipped", file=sys.stderr)
    return EXIT_BAD_LINES if report.problems else EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    status = EXIT_OK
    fallback = False
    if args.settings:
        from gateway.settings import load_settings

        fallback = bool(load_settings(args.settings).service_contacts)
    for path in args.files:
        try:
            cfg = load_home_config(path, service_fallback=fallback)
        except ConfigError as exc:
            status = EXIT_USAGE
            print(f"{path}: NOT OK")
            for problem in exc.problems:
                print(f"  {problem}")
            continue
        print(f"{path}: OK")
        for line in explain(cfg):
            print(f"  {line}")
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    if args.replay:
        from simulator.demo import run_demo

        return run_demo(sys.stdout)
    from gateway.demo import run_live_demo

    return asyncio.run(run_live_demo(sys.stdout, exit_when_done=args.exit_when_done))


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.service import serve
    from gateway.settings import load_settings
    from gateway.workers import default_workers, serve_workers

    settings = load_settings(args.config)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = default_workers(settings) if args.workers is None else args.workers
    if workers > 1 and settings.ingest == "nats":
        print("tecmon serve: --workers is for one box; with ingest: nats run more instances instead",
              file=sys.stderr)
        return EXIT_USAGE
    if workers < 1:
        print("tecmon serve: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    asyncio.run(serve(settings) if workers == 1 else serve_workers(settings, workers))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tecmon", description="Night-time routines applied to home sensors, for carers."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser("replay", help="run the engine at simulated time over recorded messages")
    replay.add_argument(
        "--config",
        action="append",
        required=True,
        metavar="HOME.yaml",
        help="a home configuration (repeat for several homes)",
    )
    replay.add_argument("--events", required=True, metavar="EVENTS.jsonl", help="input lines, or -")
    replay.add_argument("--until", metavar="TS", help="fire timers up to this time (ISO-8601 with offset)")
    replay.add_argument("--prefix", default="zigbee2mqtt", help="MQTT topic prefix (default zigbee2mqtt)")
    replay.set_defaults(func=cmd_replay)

    check = sub.add_parser("check-config", help="validate home configurations and explain them")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument(
        "--settings", metavar="tecmon.yaml",
        help="service settings: their service_contacts count for homes that name no contacts",
    )
    check.set_defaults(func=cmd_check_config)

    demo = sub.add_parser("demo", help="the whole system on this machine: broker, gateway, simulator")
    demo.add_argument("--replay", action="store_true", help="only print an example night's timeline")
    demo.add_argument("--exit-when-done", action="store_true", help="stop when the night is over")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the gateway: MQTT in, alerts out, API and metrics")
    serve.add_argument(
        "--config", metavar="tecmon.yaml", help="service settings (TECMON_* variables override)"
    )
    serve.add_argument(
        "--workers", type=int, metavar="N",
        help="processes that share the homes (default: one per core with PostgreSQL, 1 with SQLite)",
    )
    serve.set_defaults(func=cmd_serve)

    from gateway.deploy_cli import register as add_deploy_parser
    from gateway.store.cli import register as add_db_parser
    from gateway.users_cli import register as add_users_parser
    from simulator.cli import add_sim_parser

    add_db_parser(sub)
    add_deploy_parser(sub)
    add_users_parser(sub)
    add_sim_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"{exc.source}: invalid configuration", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (BadLine, OSError) as exc:
        print(f"tecmon: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
