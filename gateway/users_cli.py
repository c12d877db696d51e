"""`tecmon users ...` and `tecmon homes import | export`: accounts and where homes are defined.

Both work on the database directly (`--database URL`, or `TECMON_DATABASE_URL`),
so the first admin can be made before the service has ever run. Passwords
are read from standard input, never from the command line, where `ps` and
shell history would see them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import yaml

from alerts.homeconfig import ConfigError, load_home_config, parse_home_config
from gateway.accounts import AccountError, Accounts
from gateway.home_admin import is_tombstone
from gateway.homes import home_file_times
from gateway.settings import AuthSettings
from gateway.store.accounts import ROLES, AccountExists
from gateway.store.base import Store
from gateway.store.cli import EXIT_OK, EXIT_USAGE, SubParsers, database_option, with_store


def _now() -> datetime:
    return datetime.now(UTC)


def _accounts(store: Store) -> Accounts:
    return Accounts(store, AuthSettings(), _now)


def cmd_add(args: argparse.Namespace) -> int:
    if not args.password_stdin:
        print("tecmon users add: pass --password-stdin and the password on standard input", file=sys.stderr)
        return EXIT_USAGE
    password = sys.stdin.readline().rstrip("\r\n")
    homes = tuple(h.strip() for h in (args.homes or "").split(",") if h.strip())

    async def work(store: Store, out: TextIO) -> int:
        try:
            user = await _accounts(store).add_user(args.name, args.role, homes, args.contact, password)
        except (AccountError, AccountExists) as exc:
            print(f"tecmon users add: {exc}", file=sys.stderr)
            return EXIT_USAGE
        scope = f" for {', '.join(user.homes)}" if user.homes else ""
        out.write(f"added {user.name} ({user.role}{scope})\n")
        return EXIT_OK

    return with_store(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    async def work(store: Store, out: TextIO) -> int:
        for user in await store.list_users():
            line = {"name": user.name, "role": user.role, "homes": list(user.homes), "contact": user.contact}
            plain = f"{user.name}\t{user.role}\t{','.join(user.homes) or '-'}\t{user.contact or '-'}"
            out.write((json.dumps(line) if args.json else plain) + "\n")
        return EXIT_OK

    return with_store(args, work)


def cmd_remove(args: argparse.Namespace) -> int:
    async def work(store: Store, out: TextIO) -> int:
        if not await store.remove_user(args.name):
            print(f"tecmon users remove: no user called {args.name!r}", file=sys.stderr)
            return EXIT_USAGE
        out.write(f"removed {args.name} and their machine tokens\n")
        return EXIT_OK

    return with_store(args, work)


def cmd_token(args: argparse.Namespace) -> int:
    async def work(store: Store, out: TextIO) -> int:
        try:
            token = await _accounts(store).new_machine_token(args.name)
        except AccountError as exc:
            print(f"tecmon users token: {exc}", file=sys.stderr)
            return EXIT_USAGE
        out.write(token + "\n")
        print("This token is shown once; it is stored only as a digest.", file=sys.stderr)
        return EXIT_OK

    return with_store(args, work)


def cmd_import(args: argparse.Namespace) -> int:
    """Every home file in DIR into the database; the files must then be removed or moved away."""
    paths = sorted(home_file_times([Path(args.directory)]))

    async def work(store: Store, out: TextIO) -> int:
        status = EXIT_OK
        for path in paths:
            try:
                # moved between sources as the service accepted it; it checks contacts on load
                cfg = load_home_config(path, service_fallback=True)
            except ConfigError as exc:
                print(f"{path}: not imported: {'; '.join(exc.problems)}", file=sys.stderr)
                status = EXIT_USAGE
                continue
            data = cfg.model_dump(mode="json", by_alias=True)
            await store.set_managed(cfg.home, True, _now())
            why = f"imported from {path.name}"
            version = await store.save_home_config(cfg.home, data, args.by, why, _now())
            out.write(f"{cfg.home}: imported from {path} as version {version}\n")
        if paths:
            out.write("Now remove those files (or point `homes` elsewhere): a home has one source, and "
                      "a file for a database home is refused.\n")
        return status

    return with_store(args, work)


def cmd_export(args: argparse.Namespace) -> int:
    """Every database home to DIR as YAML; with --release they go back to being file homes."""
    target = Path(args.directory)
    target.mkdir(parents=True, exist_ok=True)

    async def work(store: Store, out: TextIO) -> int:
        for home in await store.managed_homes():
            latest = await store.home_config_version(home)
            if latest is None or is_tombstone(latest):
                continue
            parse_home_config(latest.config, f"database:{home}", service_fallback=True)  # only a valid home
            path = target / f"{home}.yaml"
            text = yaml.safe_dump(latest.config, sort_keys=False, allow_unicode=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)  # it holds the contacts' notification URLs
            if args.release:
                await store.set_managed(home, False, _now())
            out.write(f"{home}: version {latest.version} written to {path}"
                      f"{' (now file-managed)' if args.release else ''}\n")
        return EXIT_OK

    return with_store(args, work)


def register(subparsers: SubParsers) -> None:
    users = subparsers.add_parser("users", help="accounts: add, list, remove, machine tokens")
    sub = users.add_subparsers(dest="users_command", required=True)
    add = sub.add_parser("add", help="add an account (password on standard input)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--homes", metavar="H1,H2", help="a coordinator's caseload or a carer's homes")
    add.add_argument("--contact", metavar="NAME", help="a carer's entry in the homes' contacts")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=cmd_add)
    listing = sub.add_parser("list", help="every account (never a password or hash)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    remove = sub.add_parser("remove", help="remove an account and its machine tokens")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_remove)
    token = sub.add_parser("token", help="a machine token for this account (e.g. Prometheus), shown once")
    token.add_argument("name")
    token.set_defaults(func=cmd_token)
    for parser in (add, listing, remove, token):
        database_option(parser)

    homes = subparsers.add_parser("homes", help="move homes between files and the database")
    hsub = homes.add_subparsers(dest="homes_command", required=True)
    imp = hsub.add_parser("import", help="home files in DIR into the database (edited through the API)")
    imp.add_argument("directory", metavar="DIR")
    imp.add_argument("--by", default="tecmon homes import", help="recorded as who made the change")
    imp.set_defaults(func=cmd_import)
    exp = hsub.add_parser("export", help="database homes to DIR as YAML files")
    exp.add_argument("directory", metavar="DIR")
    exp.add_argument("--release", action="store_true",
                     help="hand the homes back to their files (the database stops managing them)")
    exp.set_defaults(func=cmd_export)
    for parser in (imp, exp):
        database_option(parser)
