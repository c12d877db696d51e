"""`tecmon deploy mqtt-user`: the ACL block and password entry match deploy/mosquitto's layout."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from gateway import deploy_cli
from gateway.cli import main
from gateway.deploy_cli import DeployError, acl_block, add_block, has_block, set_password

DEPLOY_ACL = Path(__file__).resolve().parents[2] / "deploy/mosquitto/acl"


def test_the_block_is_the_one_the_readme_shows() -> None:
    assert acl_block("ahmed-4-mill-lane") == (
        "# home: ahmed-4-mill-lane\n"
        "user z2m-ahmed-4-mill-lane\n"
        "topic readwrite zigbee2mqtt/ahmed-4-mill-lane/#\n"
    )


def test_the_committed_acl_holds_exactly_this_block_for_its_home() -> None:
    assert acl_block("julie-12-oak-road") in DEPLOY_ACL.read_text(encoding="utf-8")


def test_a_prefix_is_used_as_given() -> None:
    assert acl_block("h1", "site/z2m").splitlines()[-1] == "topic readwrite site/z2m/h1/#"


@pytest.mark.parametrize("home", [
    "", "a/b", "+", "#", "a+", "julie#", "..", ".hidden", "-a", "a b", "a\nuser tecmon", "a\tb",
    "é", "x" * 101, "a:b",
])
def test_a_home_id_that_would_widen_or_break_the_acl_is_refused(home: str) -> None:
    with pytest.raises(DeployError):
        acl_block(home)


@pytest.mark.parametrize("prefix", ["", "z2m/#", "z2m/+", "/z2m", "z2m/", "a b"])
def test_a_prefix_with_wildcards_or_empty_levels_is_refused(prefix: str) -> None:
    with pytest.raises(DeployError):
        acl_block("h1", prefix)


def test_the_block_is_added_once(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("user tecmon\ntopic read zigbee2mqtt/+/#", encoding="utf-8")  # no final newline
    assert add_block(acl, "home-a") is True
    assert add_block(acl, "home-a") is False
    assert add_block(acl, "home-b") is True
    text = acl.read_text(encoding="utf-8")
    assert text == (
        "user tecmon\ntopic read zigbee2mqtt/+/#\n\n"
        + acl_block("home-a") + "\n" + acl_block("home-b")
    )
    assert has_block(text, "home-a") and not has_block(text, "home")


def entries(passwd: Path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in passwd.read_text().splitlines() if line)


def test_the_password_file_is_made_private_and_an_entry_replaced(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    set_password(passwd, "z2m-home-a", "first-password")
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    first = entries(passwd)["z2m-home-a"]
    set_password(passwd, "z2m-home-a", "second-password")
    set_password(passwd, "z2m-home-b", "other-password")
    after = entries(passwd)
    assert set(after) == {"z2m-home-a", "z2m-home-b"}
    assert after["z2m-home-a"] != first
    assert "password" not in passwd.read_text(), "stored as hashes only"


def test_a_password_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError):
        set_password(tmp_path / "passwd", "z2m-a", "one\ntwo")


def test_a_missing_tool_is_named(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="not installed"):
        set_password(tmp_path / "passwd", "z2m-a", "pw-long-enough", tool="no-such-mosquitto-passwd")


def test_the_command_prints_the_block_and_shows_a_generated_password_once_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    assert main(["deploy", "mqtt-user", "home-a", "--passwd", str(passwd), "--acl", str(acl)]) == 0
    out, err = capsys.readouterr()
    assert out == acl_block("home-a"), "stdout is only the block, so it can be appended to an ACL"
    *_, note, password = err.strip().splitlines()
    assert note == "password for z2m-home-a, shown once (for the bridge's configuration):"
    assert len(password) >= 32 and password.isascii() and " " not in password
    assert password not in out
    assert acl.read_text(encoding="utf-8") == acl_block("home-a")
    assert set(entries(passwd)) == {"z2m-home-a"}


def test_the_password_can_come_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    monkeypatch.setattr(deploy_cli, "set_password", lambda _f, _u, pw: seen.append(pw))
    monkeypatch.setattr("sys.stdin", io.StringIO("chosen-password\n"))
    assert main(["deploy", "mqtt-user", "home-a", "--passwd", str(tmp_path / "p"), "--password-stdin"]) == 0
    assert seen == ["chosen-password"]
    out, err = capsys.readouterr()
    assert "chosen-password" not in out + err


@pytest.mark.parametrize("argv", [
    ["deploy", "mqtt-user", "a/#"],
    ["deploy", "mqtt-user", "home-a", "--password-stdin"],
    ["deploy", "mqtt-user", "home-a", "--prefix", "z/#"],
])
def test_usage_errors_exit_2_and_print_no_block(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "tecmon deploy mqtt-user:" in err
