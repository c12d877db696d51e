"""`tecmon deploy mqtt-user HOME`: a home bridge's broker account and ACL block.

deploy/mosquitto/README.md describes adding a home by hand: a user
`z2m-<home>` in the password file and a three-line block in the ACL that lets
that user write only below the home's own base topic. Done by hand, a typo in
either line is a home that sends nothing or, worse, a bridge that may write
into someone else's home. This command writes both the same way every time.

The ACL block goes to standard output (or is appended to `--acl FILE`), so
it can be reviewed or redirected; a generated password goes to standard
error, shown once, so `tecmon deploy mqtt-user h >> acl` never puts a secret
into the ACL file.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
BRIDGE_USER = "z2m-{home}"
DEFAULT_PREFIX = "zigbee2mqtt"
HOME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""The rule a home configuration's `home:` follows; it also keeps `+`, `#`, `/` and spaces,
which would widen or break an ACL line, out of the topic."""
PREFIX = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")
PASSWORD_BYTES = 24  # 32 URL-safe characters, 192 bits


class DeployError(Exception):
    """A home id, prefix, password or file this command cannot use, in plain words."""


def check_home(home: str) -> str:
    if not HOME_ID.fullmatch(home):
        raise DeployError(
            f"{home!r} is not a home id: letters, digits, '.', '_' and '-' only, "
            "starting with a letter or digit"
        )
    return home


def bridge_user(home: str) -> str:
    return BRIDGE_USER.format(home=check_home(home))


def acl_block(home: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The block deploy/mosquitto/acl holds for each home, newline-terminated."""
    if not PREFIX.fullmatch(prefix):
        raise DeployError(f"{prefix!r} is not a topic prefix without wildcards")
    return f"# home: {home}\nuser {bridge_user(home)}\ntopic readwrite {prefix}/{home}/#\n"


def has_block(acl_text: str, home: str) -> bool:
    """Whether the ACL already grants this home's bridge (its `user` line is the grant)."""
    return any(line.strip() == f"user {bridge_user(home)}" for line in acl_text.splitlines())


def add_block(acl_file: Path, home: str, prefix: str = DEFAULT_PREFIX) -> bool:
    """Append the home's block unless the file has one already; True when it was added."""
    text = acl_file.read_text(encoding="utf-8") if acl_file.exists() else ""
    if has_block(text, home):
        return False
    separator = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
    with acl_file.open("a", encoding="utf-8") as out:
        out.write(separator + acl_block(home, prefix))
    return True


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def set_password(passwd_file: Path, user: str, password: str, tool: str = "mosquitto_passwd") -> None:
    """Add or replace the user's entry with `mosquitto_passwd -b`, making the file (0600) if new.

    `-b` puts the password on mosquitto_passwd's command line for the instant it runs, where
    another user of this machine could read it in the process list; run this on the broker's
    host or an admin machine, not a shared one.
    """
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise DeployError(f"{tool} is not installed (it ships with Mosquitto: apt install mosquitto-clients)")
    if not password or any(c in password for c in "\r\n\0"):
        raise DeployError("the password is empty or holds a line break")
    if not passwd_file.exists():
        fd = os.open(passwd_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    result = subprocess.run(
        [found, "-b", str(passwd_file), user, password], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().replace(password, "…")
        raise DeployError(f"mosquitto_passwd failed on {passwd_file}: {why}")


def _set_from_args(args: argparse.Namespace, user: str) -> str | None:
    """Set the password `--passwd` asks for; returns it when it was generated (to be shown)."""
    if args.passwd is None:
        if args.password_stdin:
            raise DeployError("--password-stdin needs --passwd FILE to write it to")
        return None
    generated = not args.password_stdin
    password = new_password() if generated else sys.stdin.readline().rstrip("\r\n")
    set_password(Path(args.passwd), user, password)
    print(f"{user}: password set in {args.passwd}", file=sys.stderr)
    return password if generated else None


def cmd_mqtt_user(args: argparse.Namespace) -> int:
    try:
        block = acl_block(args.home, args.prefix)
        user = bridge_user(args.home)
        generated = _set_from_args(args, user)
        if args.acl is not None:
            added = add_block(Path(args.acl), args.home, args.prefix)
            print(f"{args.acl}: {'block added' if added else 'already grants ' + user}", file=sys.stderr)
    except (DeployError, OSError) as exc:
        print(f"tecmon deploy mqtt-user: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, DeployError) else EXIT_FAILED
    if generated is not None:  # last, on a line of its own, so it is easy to copy (and to parse)
        print(f"password for {user}, shown once (for the bridge's configuration):", file=sys.stderr)
        print(generated, file=sys.stderr)
    sys.stdout.write(block)
    return EXIT_OK


def register(subparsers: SubParsers) -> None:
    deploy = subparsers.add_parser("deploy", help="broker accounts and ACLs for homes (deploy/mosquitto)")
    sub = deploy.add_subparsers(dest="deploy_command", required=True)
    user = sub.add_parser(
        "mqtt-user", help="a home bridge's user: print its ACL block, set its password in a password file"
    )
    user.add_argument("home", metavar="HOME", help="the home id, as in its configuration's `home:`")
    user.add_argument("--passwd", metavar="FILE", help="Mosquitto password file to add or update the user in")
    user.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from standard input instead of generating one",
    )
    user.add_argument("--acl", metavar="FILE", help="also append the block to this ACL file, unless present")
    user.add_argument("--prefix", default=DEFAULT_PREFIX, help="MQTT topic prefix (default zigbee2mqtt)")
    user.set_defaults(func=cmd_mqtt_user)
