"""What the deployment tests share: deploy/ read and parsed, and small helpers.

The tests (test_deploy*.py) check that every file parses, and that the files agree with each other and with the code.

Ports, hosts, paths and credentials are written in several places (compose,
tecmon.yaml, mosquitto.conf, prometheus.yml, Grafana provisioning, the
Dockerfile, the systemd unit); these tests fail when one of them drifts. Where
the real tool is installed (mosquitto, mosquitto_passwd, openssl, promtool,
systemd-analyze) the files are also checked by it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from alerts.homeconfig import HomeConfig, load_home_config
from gateway.metrics import METRIC_NAMES, Metrics
from gateway.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONFIG_IN_CONTAINER = "/etc/tecmon/tecmon.yaml"
HOMES_IN_CONTAINER = "/etc/tecmon/homes"
BRIDGE_USER = "z2m-{home}"
OPERATOR_PROVIDED = {"./mosquitto/passwd", "./prometheus/tecmon-metrics-token"}  # made on the host, never committed
OTHER_TECMON_ENV = {"PGPASSWORD"}  # read by libpq on tecmon's behalf
NIGHT_S = 12 * 3600
NIGHT_MESSAGES = 12 * 60 * 100  # 12 h x 60 messages an hour x 100 homes, at least
PROMETHEUS_BUILTINS = {"up"}
HOME_SUFFIXES = (".yaml", ".yml", ".json")


# --------------------------------------------------------------------------- loading


def read(rel: str) -> str:
    return (DEPLOY / rel).read_text(encoding="utf-8")


def load_yaml(rel: str) -> Any:
    return yaml.safe_load(read(rel))


@pytest.fixture(autouse=True)
def _no_tecmon_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment overrides the file: tests see only what they set."""
    for name in list(os.environ):
        if name.upper().startswith("TECMON_"):
            monkeypatch.delenv(name)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml("compose.yaml")
    return data


def service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    assert name in services, f"compose.yaml has no service {name!r}"
    return services[name]


def settings() -> Settings:
    return load_settings(DEPLOY / "tecmon.yaml")


def home_files() -> list[Path]:
    """What the service loads from a homes directory."""
    return sorted(p for p in (DEPLOY / "homes").iterdir() if p.suffix in HOME_SUFFIXES)


def homes() -> list[HomeConfig]:
    return [load_home_config(p) for p in home_files()]


def expand(text: str) -> str:
    """Compose interpolation with every variable unset: `${VAR:-default}` -> default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", text)


# --------------------------------------------------------------------------- compose parts


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: int
    target: int


def ports(svc: dict[str, Any]) -> list[Port]:
    out = []
    for spec in svc.get("ports", []):
        host_ip, published, target = expand(str(spec)).split("/")[0].rsplit(":", 2)
        out.append(Port(host_ip, int(published), int(target)))
    return out


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith(".")


def mounts(svc: dict[str, Any]) -> list[Mount]:
    out = []
    for spec in svc.get("volumes", []):
        source, target, *mode = str(spec).split(":")
        out.append(Mount(source, target, mode == ["ro"]))
    return out


def mount_of(svc: dict[str, Any], source: str) -> Mount:
    found = [m for m in mounts(svc) if m.source == source]
    assert found, f"{source} is not mounted"
    return found[0]


def under_a_mount(svc: dict[str, Any], path: str) -> Mount | None:
    for m in mounts(svc):
        if path == m.target or path.startswith(m.target.rstrip("/") + "/"):
            return m
    return None


def env_files(svc: dict[str, Any]) -> list[str]:
    value = svc.get("env_file", [])
    return [value] if isinstance(value, str) else list(value)


def healthcheck_command(svc: dict[str, Any]) -> str:
    test = svc["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


# --------------------------------------------------------------------------- other formats


def env_assignments(text: str) -> dict[str, str]:
    """NAME=value lines of an env file, commented-out examples included; outer quotes removed."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
        if m:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1)] = value
    return out


@dataclass
class Listener:
    port: int
    options: dict[str, list[str]] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return "certfile" in self.options


@dataclass
class MosquittoConf:
    lines: list[tuple[str, list[str]]]
    globals: dict[str, list[str]]
    listeners: list[Listener]

    def value(self, key: str) -> str:
        assert key in self.globals, f"mosquitto.conf does not set {key}"
        return self.globals[key][0]


LISTENER_OPTIONS = {"protocol", "certfile", "keyfile", "cafile", "capath", "tls_version", "require_certificate",
                    "ciphers", "use_identity_as_username", "socket_domain", "bind_interface"}


def mosquitto_conf(text: str | None = None) -> MosquittoConf:
    lines = []
    for raw in (text if text is not None else read("mosquitto/mosquitto.conf")).splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            key, *args = raw.split()
            lines.append((key, args))
    conf = MosquittoConf(lines, {}, [])
    for key, args in lines:
        if key == "listener":
            conf.listeners.append(Listener(int(args[0])))
        elif key in LISTENER_OPTIONS and conf.listeners:
            conf.listeners[-1].options[key] = args
        elif key not in ("log_type",):
            conf.globals[key] = args
    return conf


def duration_s(text: str) -> int:
    m = re.fullmatch(r"(\d+)([hdwmy])", text)
    assert m, f"not a mosquitto duration: {text}"
    return int(m.group(1)) * {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}[m.group(2)]


@dataclass
class Acl:
    users: dict[str, list[tuple[str, str]]]
    anonymous: list[tuple[str, str]]
    patterns: list[str]

    def filters(self, user: str, access: str) -> list[str]:
        return [t for a, t in self.users.get(user, []) if a == access or a == "readwrite"]


def acl() -> Acl:
    parsed = Acl({}, [], [])
    current: list[tuple[str, str]] = parsed.anonymous
    for raw in read("mosquitto/acl").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, rest = line.split(None, 1)
        if key == "user":
            assert rest not in parsed.users, f"user {rest} has two blocks"
            current = parsed.users.setdefault(rest, [])
        elif key == "topic":
            access, topic = rest.split(None, 1) if rest.split()[0] in ("read", "write", "readwrite", "deny") \
                else ("readwrite", rest)
            current.append((access, topic))
        elif key == "pattern":
            parsed.patterns.append(rest)
        else:
            raise AssertionError(f"unexpected ACL line: {line}")
    return parsed


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching with + and #."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, f in enumerate(f_parts):
        if f == "#":
            return True
        if i >= len(t_parts) or (f != "+" and f != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def systemd_unit(text: str | None = None) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (text if text is not None else read("systemd/tecmon.service")).splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def docker_instruction(name: str) -> list[str]:
    return [rest for word, rest in dockerfile() if word == name]


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list), f"not exec form: {text}"
    return [str(v) for v in value]


def exec_start() -> list[str]:
    return systemd_unit()["Service"]["ExecStart"][0].split()


def settings_path(env_name: str) -> str | None:
    """`TECMON_MQTT__PASSWORD` -> `mqtt.password` if Settings has that field, else None."""
    parts = env_name.upper().removeprefix("TECMON_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return None
        if i < len(parts) - 1:
            nested = info.annotation
            if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
                return None
            model = nested
    return ".".join(parts)


def value_at(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------- metrics in queries


def metric_types() -> dict[str, str]:
    """Exposed name in METRIC_NAMES -> counter/gauge/histogram, from the real registry."""
    from gateway.notify_metrics import notify_metrics
    from gateway.store.writer import store_metrics

    metrics = Metrics()
    store_metrics(metrics)  # the store writer and the notifier register their own on the same registry
    notify_metrics(metrics)
    types = {}
    for family in metrics.registry.collect():
        exposed = family.name + "_total" if family.type == "counter" else family.name
        types[exposed] = family.type
    return types


def allowed_series() -> set[str]:
    types = metric_types()
    out = set()
    for name in METRIC_NAMES:
        if types.get(name) == "histogram":
            out |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            out.add(name)
    return out


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(tecmon_[a-z0-9_]+)", expr))


def assert_query_uses_known_metrics(expr: str) -> None:
    unknown = metrics_in(expr) - allowed_series()
    assert not unknown, f"{expr}: not exposed by gateway.metrics: {sorted(unknown)}"
    if "histogram_quantile" in expr:
        assert re.search(r"_bucket\b", expr) and re.search(r"\bby \(([^)]*\b)?le\b", expr), \
            f"{expr}: histogram_quantile needs the _bucket series summed by le"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read("grafana/dashboards/tecmon.json"))
    return data


def panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in container.get("panels", []):
        yield panel
        yield from panels(panel)


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in panels(dashboard()) for t in p.get("targets", []) if t.get("expr")]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml("prometheus/alerts.yml")["groups"] for rule in group["rules"]]
