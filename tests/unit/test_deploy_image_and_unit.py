"""The Dockerfile and the systemd unit: both run the same `tecmon serve`, with the config where it is mounted.

The unit runs tecmon as its own locked-down user; the image is not root, has
the health check on the API port, and its build context holds every package.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.deploy_support import (
    CONFIG_IN_CONTAINER,
    ROOT,
    _no_tecmon_env,  # noqa: F401  (autouse: no TECMON_* leaks in)
    docker_instruction,
    exec_form,
    exec_start,
    mount_of,
    service,
    settings,
    systemd_unit,
)

# =========================================================================== tests: Dockerfile and systemd


REQUIRED_UNIT_KEYS = [
    ("Service", "User", "tecmon"),
    ("Service", "Group", "tecmon"),
    ("Service", "EnvironmentFile", "-/etc/tecmon/tecmon.env"),
    ("Service", "Restart", "always"),
    ("Service", "NoNewPrivileges", "yes"),
    ("Service", "ProtectSystem", "strict"),
    ("Service", "ProtectHome", "yes"),
    ("Service", "PrivateTmp", "yes"),
    ("Service", "ReadWritePaths", "/var/lib/tecmon"),
    ("Service", "StateDirectory", "tecmon"),
    ("Service", "CapabilityBoundingSet", ""),
    ("Unit", "StartLimitIntervalSec", "0"),
    ("Install", "WantedBy", "multi-user.target"),
]


@pytest.mark.parametrize(("section", "key", "value"), REQUIRED_UNIT_KEYS)
def test_systemd_unit_has(section: str, key: str, value: str) -> None:
    assert value in systemd_unit().get(section, {}).get(key, []), f"[{section}] {key}={value}"


def test_systemd_unit_runs_serve_with_the_config() -> None:
    assert exec_start() == ["/opt/tecmon/.venv/bin/tecmon", "serve", "--config", CONFIG_IN_CONTAINER]


def test_the_unit_can_write_where_tecmon_keeps_state() -> None:
    service_section = systemd_unit()["Service"]
    assert service_section["WorkingDirectory"] == service_section["ReadWritePaths"]


def test_dockerfile_runs_what_the_unit_runs() -> None:
    entrypoint = exec_form(docker_instruction("ENTRYPOINT")[-1])
    cmd = exec_form(docker_instruction("CMD")[-1])
    assert entrypoint == [Path(exec_start()[0]).name]
    assert cmd == exec_start()[1:]
    assert cmd[cmd.index("--config") + 1] == mount_of(service("tecmon"), "./tecmon.yaml").target


def test_dockerfile_base_user_port_and_healthcheck() -> None:
    assert docker_instruction("FROM")[-1].split()[0] == "python:3.11-slim"
    user = docker_instruction("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    port = settings().api.port
    assert str(port) in docker_instruction("EXPOSE")[-1].split()
    assert f"127.0.0.1:{port}/healthz" in docker_instruction("HEALTHCHECK")[-1]


def pyproject_packages() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = re.search(r"^include\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
    assert include
    return [p.strip().strip("\"'").rstrip("*") for p in include.group(1).split(",") if p.strip()]


def test_the_build_context_holds_every_package() -> None:
    copied = " ".join(docker_instruction("COPY"))
    kept = {line.strip().lstrip("!") for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip().startswith("!")}
    for package in [*pyproject_packages(), "pyproject.toml", "README.md"]:
        assert package in copied, f"Dockerfile does not COPY {package}"
        assert package in kept, f".dockerignore leaves out {package}"

