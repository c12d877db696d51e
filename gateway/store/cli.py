"""`tecmon db ...`: schema upgrades, retention, and the audit history of home configurations.

Every command takes `--database URL`; without it, `TECMON_DATABASE_URL`, then
the service default `sqlite:///tecmon.db`. Passwords in URLs are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from gateway.store import open_store
from gateway.store.base import ConfigVersion, Store, StoreUnavailable
from gateway.store.migrations import LATEST
from gateway.store.writer import prune_cutoffs

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = Any

DEFAULT_URL = "sqlite:///tecmon.db"
EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE = 0, 1, 2


def redact_url(url: str) -> str:
    """`postgresql://tecmon:secret@db/tecmon` -> `postgresql://tecmon:***@db/tecmon`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_store(args: argparse.Namespace, work: Callable[[Store, TextIO], Awaitable[int]]) -> int:
    """Open (and so migrate) the store, run `work`, close; report an unreachable database plainly."""
    url = args.database or os.environ.get("TECMON_DATABASE_URL") or DEFAULT_URL
    try:
        store = open_store(url, event_retention_days=getattr(args, "events_days", 90))
    except ValueError as exc:
        print(f"tecmon db: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> int:
        await store.open()
        try:
            return await work(store, sys.stdout)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StoreUnavailable as exc:
        print(f"tecmon db: cannot use {redact_url(url)}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def cmd_upgrade(args: argparse.Namespace) -> int:
    async def work(store: Store, out: TextIO) -> int:
        out.write(f"schema version {await store.schema_version()} (latest {LATEST}); "
                  f"events layout: {store.time_layout}\n")
        return EXIT_OK

    return with_store(args, work)


def cmd_status(args: argparse.Namespace) -> int:
    async def work(store: Store, out: TextIO) -> int:
        status = {"schema_version": await store.schema_version(), "latest": LATEST,
                  "events_layout": store.time_layout, "rows": await store.counts()}
        out.write(json.dumps(status, indent=2) + "\n")
        return EXIT_OK

    return with_store(args, work)


def cmd_prune(args: argparse.Namespace) -> int:
    try:
        cutoffs = prune_cutoffs(datetime.now(UTC), args.events_days, args.alerts_days)
    except ValueError as exc:
        print(f"tecmon db prune: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def work(store: Store, out: TextIO) -> int:
        deleted = await store.prune(*cutoffs)
        out.write(json.dumps({"events_before": cutoffs[0].isoformat(),
                              "alerts_before": cutoffs[1].isoformat(), "deleted": deleted}) + "\n")
        return EXIT_OK

    return with_store(args, work)


def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths whose values differ, so an auditor sees what a version changed."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            found += changed_paths(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if before == after else [path or "(whole)"]


def _history_lines(versions: list[ConfigVersion]) -> list[str]:
    lines: list[str] = []
    previous: dict[str, Any] | None = None
    for v in versions:
        changed = "first version" if previous is None else ", ".join(changed_paths(previous, v.config))
        lines.append(f"v{v.version}  {v.saved_at.astimezone(UTC).isoformat()}  by {v.saved_by}"
                     f"  why: {v.why or '-'}  changed: {changed or 'nothing'}")
        previous = v.config
    return lines


def cmd_config_history(args: argparse.Namespace) -> int:
    async def work(store: Store, out: TextIO) -> int:
        versions = await store.home_config_history(args.home)
        if args.show is not None:
            chosen = [v for v in versions if v.version == args.show]
            if not chosen:
                print(f"tecmon db: {args.home} has no version {args.show}", file=sys.stderr)
                return EXIT_USAGE
            out.write(json.dumps(chosen[0].config, indent=2, ensure_ascii=False) + "\n")
        elif args.json:
            for v in versions:
                line = {"home": v.home, "version": v.version, "saved_at": v.saved_at.isoformat(),
                        "saved_by": v.saved_by, "why": v.why, "config": v.config}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        else:
            out.write(f"{args.home}: {len(versions)} version(s)\n")
            out.writelines(line + "\n" for line in _history_lines(versions))
        return EXIT_OK

    return with_store(args, work)


def database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help="sqlite:///PATH or postgresql://... (default: $TECMON_DATABASE_URL, "
                             f"then {DEFAULT_URL})")


def register(subparsers: SubParsers) -> None:
    """Add `tecmon db` and its commands to the main parser."""
    db = subparsers.add_parser("db", help="the database: schema upgrades, retention, configuration history")
    sub = db.add_subparsers(dest="db_command", required=True)

    upgrade = sub.add_parser("upgrade", help="create or migrate the schema (safe to repeat)")
    database_option(upgrade)
    upgrade.add_argument("--events-days", type=int, default=90,
                         help="raw-event retention for a TimescaleDB retention policy (default 90)")
    upgrade.set_defaults(func=cmd_upgrade)

    status = sub.add_parser("status", help="schema version, events layout and row counts")
    database_option(status)
    status.set_defaults(func=cmd_status)

    prune = sub.add_parser("prune", help="delete raw events and alert records past their retention")
    database_option(prune)
    prune.add_argument("--events-days", type=int, default=90, help="keep raw sensor events (default 90)")
    prune.add_argument("--alerts-days", type=int, default=730,
                       help="keep alert steps, attempts, carer inputs and dead letters (default 730)")
    prune.set_defaults(func=cmd_prune)

    history = sub.add_parser("config-history", help="every saved version of a home's configuration")
    history.add_argument("home", metavar="HOME")
    database_option(history)
    history.add_argument("--show", type=int, metavar="VERSION", help="print that version's configuration")
    history.add_argument("--json", action="store_true", help="one JSON line per version")
    history.set_defaults(func=cmd_config_history)

    from gateway.store.import_events import add_parser as add_import_events
    add_import_events(sub)
