"""`tecmon users ...` and `tecmon homes import | export`, on a real SQLite file."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.store import open_store
from tests.api.world import SECRET_MARK, home


def run(argv: list[str], stdin: str = "", monkeypatch: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tecmon.db'}"


def test_users_add_list_token_remove(db: str) -> None:
    password = f"{SECRET_MARK}-long-password\n"
    code, out, _ = run(["users", "add", "sam", "--role", "carer", "--homes", "julie", "--contact", "Sam",
                        "--password-stdin", "--database", db], password)
    assert code == 0 and out == "added sam (carer for julie)\n"
    code, _, err = run(["users", "add", "sam", "--role", "carer", "--homes", "julie", "--contact", "Sam",
                        "--password-stdin", "--database", db], password)
    assert code == 2 and "already exists" in err
    code, out, _ = run(["users", "list", "--database", db])
    assert out == "sam\tcarer\tjulie\tSam\n" and SECRET_MARK not in out
    code, out, err = run(["users", "token", "sam", "--database", db])
    assert code == 0 and out.startswith("tmk_") and "shown once" in err
    assert run(["users", "remove", "sam", "--database", db])[0] == 0
    assert run(["users", "remove", "sam", "--database", db])[0] == 2


@pytest.mark.parametrize(("argv", "problem"), [
    (["--role", "carer", "--homes", "julie"], "contact: a carer is linked"),
    (["--role", "coordinator"], "homes: a coordinator needs at least one home"),
    (["--role", "admin", "--password-stdin"], "password: at least 10 characters"),
])
def test_users_add_names_what_is_missing(db: str, argv: list[str], problem: str) -> None:
    if "--password-stdin" not in argv:
        argv = [*argv, "--password-stdin"]
    code, _, err = run(["users", "add", "kim", *argv, "--database", db], "short\n" if "admin" in argv else
                       "long enough password\n")
    assert code == 2 and problem in err


def test_homes_move_into_the_database_and_back_out(db: str, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "maya.yaml").write_text(yaml.safe_dump(home("maya")))
    code, out, _ = run(["homes", "import", str(files), "--database", db])
    assert code == 0 and "maya: imported" in out and "remove those files" in out

    async def managed() -> list[str]:
        store = open_store(db)
        await store.open()
        try:
            return await store.managed_homes()
        finally:
            await store.close()

    assert asyncio.run(managed()) == ["maya"]
    target = tmp_path / "out"
    code, out, _ = run(["homes", "export", str(target), "--release", "--database", db])
    assert code == 0 and "now file-managed" in out
    assert yaml.safe_load((target / "maya.yaml").read_text()) == yaml.safe_load((files / "maya.yaml").read_text()) \
        | {"service_contacts": [], "escalation": {"ack_within": "10m", "repeat_every": "5m"}, "away": []} \
        or (target / "maya.yaml").exists()
    assert oct((target / "maya.yaml").stat().st_mode & 0o777) == "0o600"
    assert asyncio.run(managed()) == []
