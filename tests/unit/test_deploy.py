"""deploy/: every file parses, and the files agree with each other and with the code.

Ports, hosts, paths and credentials are written in several places (compose,
tecmon.yaml, mosquitto.conf, prometheus.yml, Grafana provisioning, the
Dockerfile, the systemd unit); these tests fail when one of them drifts. Where
the real tool is installed (mosquitto, mosquitto_passwd, openssl, promtool,
systemd-analyze) the files are also checked by it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel, SecretStr

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
    from gateway.store.writer import store_metrics

    metrics = Metrics()
    store_metrics(metrics)  # the store writer registers its own on the same registry
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


# =========================================================================== tests: files parse


@pytest.mark.parametrize("rel", [
    "compose.yaml", "tecmon.yaml", "prometheus/prometheus.yml", "prometheus/alerts.yml",
    "prometheus/alerts_test.yml", "grafana/provisioning/datasources/prometheus.yml",
    "grafana/provisioning/dashboards/tecmon.yml",
])
def test_yaml_files_parse_to_mappings(rel: str) -> None:
    assert isinstance(load_yaml(rel), dict)


def test_the_dashboard_is_json_with_panels() -> None:
    data = dashboard()
    assert data["uid"] and list(panels(data))


def test_the_sample_configuration_loads() -> None:
    cfg = settings()
    assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.qos == 1 and cfg.mqtt.protocol == "5"
    assert cfg.mqtt.tls is False and cfg.mqtt.password is None, "secrets come from the environment"
    assert cfg.database_url == "postgresql://tecmon@timescaledb:5432/tecmon"
    assert cfg.homes == [Path(HOMES_IN_CONTAINER)]
    assert (cfg.api.host, cfg.api.port) == ("0.0.0.0", 8080)
    assert cfg.service_contacts, "device offline and low battery need someone to tell"


def test_the_commented_tls_keys_are_real_settings_for_the_tls_listener(tmp_path: Path) -> None:
    text = re.sub(r"^(\s+)# ([a-z_]+: \S+)", r"\1\2", read("tecmon.yaml"), flags=re.MULTILINE)
    (tmp_path / "tecmon.yaml").write_text(text, encoding="utf-8")
    cfg = load_settings(tmp_path / "tecmon.yaml")
    assert cfg.mqtt.tls and cfg.mqtt.ca_file is not None
    tls_ports = {li.port for li in mosquitto_conf().listeners if li.tls}
    assert cfg.mqtt.port in tls_ports


@pytest.mark.parametrize("path", home_files(), ids=lambda p: p.name)
def test_each_home_validates_and_is_named_after_its_id(path: Path) -> None:
    cfg = load_home_config(path)
    assert path.stem == cfg.home


def test_there_is_a_home_and_ids_are_unique() -> None:
    ids = [h.home for h in homes()]
    assert ids and len(ids) == len(set(ids))


# =========================================================================== tests: compose


def test_compose_services_and_images() -> None:
    services = compose()["services"]
    assert set(services) >= {"mosquitto", "timescaledb", "tecmon", "prometheus", "grafana"}
    assert service("mosquitto")["image"].startswith("eclipse-mosquitto:2")
    assert service("timescaledb")["image"] == "timescale/timescaledb:latest-pg16"
    build = service("tecmon")["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).is_file()
    for name, svc in services.items():
        assert svc.get("restart") == "unless-stopped", name


def test_every_published_port_is_on_localhost_by_default() -> None:
    for name, svc in compose()["services"].items():
        for port in ports(svc):
            assert port.host_ip == "127.0.0.1", f"{name}: {port}"


def test_interpolated_variables_all_have_defaults() -> None:
    text = read("compose.yaml")
    assert "${" not in expand(text), "a variable without a default makes `up` depend on a .env"


@pytest.mark.parametrize("name", ["mosquitto", "timescaledb", "tecmon"])
def test_stateful_services_have_healthchecks(name: str) -> None:
    assert healthcheck_command(service(name))


def test_tecmon_waits_for_a_healthy_broker_and_database() -> None:
    depends = service("tecmon")["depends_on"]
    assert depends == {"mosquitto": {"condition": "service_healthy"},
                       "timescaledb": {"condition": "service_healthy"}}


def test_tecmon_port_and_healthcheck_match_the_api_settings() -> None:
    api = settings().api
    tecmon = service("tecmon")
    assert {p.target for p in ports(tecmon)} == {api.port}
    assert f"127.0.0.1:{api.port}/healthz" in healthcheck_command(tecmon)
    assert api.host not in ("127.0.0.1", "localhost"), "Prometheus scrapes from another container"


def test_tecmon_mounts_config_and_homes_where_it_reads_them() -> None:
    tecmon = service("tecmon")
    config = mount_of(tecmon, "./tecmon.yaml")
    assert config.target == CONFIG_IN_CONTAINER and config.read_only
    homes_mount = mount_of(tecmon, "./homes")
    assert [Path(homes_mount.target)] == settings().homes and homes_mount.read_only


def test_bind_mount_sources_exist() -> None:
    for name, svc in compose()["services"].items():
        for m in mounts(svc):
            if m.is_bind and m.source not in OPERATOR_PROVIDED:
                assert (DEPLOY / m.source).exists(), f"{name}: {m.source}"


def test_named_volumes_are_declared() -> None:
    declared = set(compose().get("volumes") or {})
    for svc in compose()["services"].values():
        for m in mounts(svc):
            if not m.is_bind:
                assert m.source in declared, m.source


def test_env_files_have_examples_and_are_not_committed() -> None:
    for name, svc in compose()["services"].items():
        for env_file in env_files(svc):
            assert (DEPLOY / f"{env_file}.example").is_file(), f"{name}: {env_file}.example"
            assert_git_ignored(DEPLOY / env_file)


def test_operator_files_are_not_committed() -> None:
    for rel in [*OPERATOR_PROVIDED, "./mosquitto/certs/server.key"]:
        assert_git_ignored(DEPLOY / rel)


def assert_git_ignored(path: Path) -> None:
    assert (ROOT / ".git").exists(), "these checks need the git work tree"
    result = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
    assert result.returncode == 0, f"{path.relative_to(ROOT)} would be committed"


def test_the_database_url_matches_the_timescaledb_service() -> None:
    url = urlsplit(settings().database_url)
    env = service("timescaledb")["environment"]
    assert url.scheme == "postgresql" and url.hostname == "timescaledb" and url.port == 5432
    assert url.username == env["POSTGRES_USER"] and url.path.lstrip("/") == env["POSTGRES_DB"]
    assert url.password is None, "the password comes from PGPASSWORD"
    assert "POSTGRES_PASSWORD" in env_assignments(read("timescaledb.env.example"))
    assert "PGPASSWORD" in env_assignments(read("tecmon.env.example"))
    assert f"-U {env['POSTGRES_USER']}" in healthcheck_command(service("timescaledb"))


# =========================================================================== tests: environment


def tecmon_env_names() -> dict[str, str]:
    """Every TECMON_* name written in deploy/ or the Dockerfile -> the file it appears in."""
    found: dict[str, str] = {}
    files = [p for p in DEPLOY.rglob("*") if p.is_file()] + [ROOT / "Dockerfile"]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="ignore")
        for name in re.findall(r"\bTECMON_[A-Z][A-Z0-9_]*[A-Z0-9]\b", text):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_tecmon_env_names_are_found() -> None:
    assert "TECMON_MQTT__PASSWORD" in tecmon_env_names()


@pytest.mark.parametrize("name", sorted(tecmon_env_names()))
def test_every_tecmon_env_name_is_a_settings_field(name: str) -> None:
    assert settings_path(name), f"{name} ({tecmon_env_names()[name]}) is not a field of gateway.settings.Settings"


@pytest.mark.parametrize(("env_name", "dotted"), [
    ("TECMON_MQTT__PASSWORD", "mqtt.password"),
    ("TECMON_DATABASE_URL", "database_url"),
    ("TECMON_API__PORT", "api.port"),
    ("TECMON_MQTT__PASWORD", None),
    ("TECMON_MQTT", "mqtt"),
    ("TECMON_DATABASE_URL__HOST", None),
])
def test_env_names_map_to_settings_paths(env_name: str, dotted: str | None) -> None:
    assert settings_path(env_name) == dotted


@pytest.mark.parametrize(("name", "value"), sorted(env_assignments(read("tecmon.env.example")).items()))
def test_each_env_example_line_loads(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    if not name.startswith("TECMON_"):
        assert name in OTHER_TECMON_ENV, f"{name}: neither a TECMON_ setting nor one tecmon's libraries read"
        return
    monkeypatch.setenv(name, value)
    dotted = settings_path(name)
    assert dotted
    loaded = value_at(settings(), dotted)
    if isinstance(loaded, SecretStr):
        loaded = loaded.get_secret_value()
    if isinstance(loaded, str | int | float | Path):
        assert str(loaded) == value


# =========================================================================== tests: broker


def test_broker_listeners_match_published_ports_and_the_gateway() -> None:
    conf = mosquitto_conf()
    listener_ports = {li.port for li in conf.listeners}
    assert listener_ports == {1883, 8883}
    assert {p.target for p in ports(service("mosquitto"))} == listener_ports
    mqtt = settings().mqtt
    plain = {li.port for li in conf.listeners if not li.tls}
    assert mqtt.port in plain and not mqtt.tls
    assert f"-p {next(iter(plain))}" in healthcheck_command(service("mosquitto"))


def test_broker_requires_authentication_and_acl() -> None:
    conf = mosquitto_conf()
    assert conf.value("allow_anonymous") == "false"
    assert conf.globals.get("per_listener_settings", ["false"]) == ["false"]
    mosquitto = service("mosquitto")
    for key, source in (("password_file", "./mosquitto/passwd"), ("acl_file", "./mosquitto/acl")):
        m = mount_of(mosquitto, source)
        assert conf.value(key) == m.target and m.read_only
    conf_mount = mount_of(mosquitto, "./mosquitto/mosquitto.conf")
    assert conf_mount.target == "/mosquitto/config/mosquitto.conf"


def test_the_tls_listener_files_are_mounted() -> None:
    tls = [li for li in mosquitto_conf().listeners if li.tls]
    assert [li.port for li in tls] == [8883]
    for key in ("certfile", "keyfile"):
        path = tls[0].options[key][0]
        m = under_a_mount(service("mosquitto"), path)
        assert m is not None and m.source == "./mosquitto/certs", path


def test_the_broker_keeps_a_night_of_messages() -> None:
    conf = mosquitto_conf()
    assert conf.value("persistence") == "true"
    location = conf.value("persistence_location")
    m = under_a_mount(service("mosquitto"), location)
    assert m is not None and not m.is_bind, "persistence belongs on a named volume"
    queued = int(conf.value("max_queued_messages"))
    assert queued >= NIGHT_MESSAGES
    queued_bytes = int(conf.globals.get("max_queued_bytes", ["0"])[0])
    assert queued_bytes == 0 or queued_bytes >= queued * 512, "the byte limit would bite first"
    mqtt = settings().mqtt
    assert mqtt.session_expiry_s >= NIGHT_S
    assert duration_s(conf.value("persistent_client_expiration")) >= mqtt.session_expiry_s


# =========================================================================== tests: ACL


def test_acl_has_no_anonymous_or_pattern_rules() -> None:
    parsed = acl()
    assert parsed.anonymous == [], "rules before the first `user` apply to anonymous clients"
    assert parsed.patterns == [], "pattern rules apply to every user"
    assert not any(a == "deny" for rules in parsed.users.values() for a, _ in rules)


def test_the_gateway_reads_every_home_and_writes_nothing() -> None:
    mqtt = settings().mqtt
    parsed = acl()
    user = mqtt.username
    assert user is not None and user in parsed.users, f"no ACL block for the gateway user {user}"
    assert parsed.users[user] == [("read", f"{mqtt.prefix}/+/#")]


def test_every_home_has_exactly_one_bridge_user_and_no_more() -> None:
    bridges = set(acl().users) - {settings().mqtt.username}
    assert bridges == {BRIDGE_USER.format(home=h.home) for h in homes()}


def home_topics(cfg: HomeConfig, prefix: str) -> list[str]:
    base = f"{prefix}/{cfg.home}"
    return [t for d in cfg.devices for t in (f"{base}/{d.id}", f"{base}/{d.id}/availability")]


@pytest.mark.parametrize("home", homes(), ids=lambda h: h.home)
def test_a_bridge_writes_only_its_own_base_topic(home: HomeConfig) -> None:
    prefix = settings().mqtt.prefix
    parsed = acl()
    bridge = BRIDGE_USER.format(home=home.home)
    assert parsed.filters(bridge, "write") == [f"{prefix}/{home.home}/#"]
    assert all(topic_matches(f"{prefix}/{home.home}/#", f) for f in parsed.filters(bridge, "read"))


@pytest.mark.parametrize("home", homes(), ids=lambda h: h.home)
def test_each_device_topic_is_written_by_its_bridge_alone_and_read_by_the_gateway(home: HomeConfig) -> None:
    mqtt = settings().mqtt
    parsed = acl()
    for topic in home_topics(home, mqtt.prefix):
        writers = {u for u in parsed.users if any(topic_matches(f, topic) for f in parsed.filters(u, "write"))}
        readers = {u for u in parsed.users if any(topic_matches(f, topic) for f in parsed.filters(u, "read"))}
        assert writers == {BRIDGE_USER.format(home=home.home)}, topic
        assert readers == {mqtt.username, BRIDGE_USER.format(home=home.home)}, topic


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), [
    ("zigbee2mqtt/+/#", "zigbee2mqtt/julie/bed", True),
    ("zigbee2mqtt/+/#", "zigbee2mqtt/julie/bed/availability", True),
    ("zigbee2mqtt/julie/#", "zigbee2mqtt/julie", True),
    ("zigbee2mqtt/julie/#", "zigbee2mqtt/julie-2/bed", False),
    ("zigbee2mqtt/+/#", "other/julie/bed", False),
    ("zigbee2mqtt/+", "zigbee2mqtt/julie/bed", False),
])
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


# =========================================================================== tests: Prometheus and Grafana


def test_prometheus_scrapes_tecmon_metrics() -> None:
    config = load_yaml("prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["tecmon"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"tecmon:{settings().api.port}"]


def prometheus_port() -> int:
    args = service("prometheus")["command"]
    listen = [a for a in args if a.startswith("--web.listen-address=")]
    return int(listen[0].rsplit(":", 1)[1]) if listen else 9090


def test_prometheus_files_are_mounted_where_its_config_points() -> None:
    prometheus = service("prometheus")
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mount_of(prometheus, "./prometheus/prometheus.yml").target == config_arg.split("=", 1)[1]
    rule_files = load_yaml("prometheus/prometheus.yml")["rule_files"]
    assert rule_files == [mount_of(prometheus, "./prometheus/alerts.yml").target]
    assert {p.target for p in ports(prometheus)} == {prometheus_port()}


def test_grafana_datasource_points_at_prometheus() -> None:
    sources = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert [urlsplit(s["url"]).netloc for s in sources] == [f"prometheus:{prometheus_port()}"]


def test_grafana_dashboards_are_provisioned_from_the_mounted_folder() -> None:
    grafana = service("grafana")
    provider = load_yaml("grafana/provisioning/dashboards/tecmon.yml")["providers"][0]
    assert mount_of(grafana, "./grafana/dashboards").target == provider["options"]["path"]
    assert mount_of(grafana, "./grafana/provisioning").target == "/etc/grafana/provisioning"
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert Path(home).parent == Path(provider["options"]["path"])
        assert (DEPLOY / "grafana/dashboards" / Path(home).name).is_file()


def test_dashboard_panels_use_the_provisioned_datasource() -> None:
    uids = {s["uid"] for s in load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]}
    data = dashboard()
    ids = [p["id"] for p in panels(data)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(data):
        for target in [panel, *panel.get("targets", [])]:
            if "datasource" in target:
                assert target["datasource"]["uid"] in uids, panel["title"]


def test_dashboard_queries_use_only_exposed_metrics() -> None:
    for expr in dashboard_queries():
        assert_query_uses_known_metrics(expr)


@pytest.mark.parametrize("required", [
    "tecmon_events_total", "tecmon_dead_letters_total", "tecmon_alerts_raised_total",
    "tecmon_trigger_to_notification_seconds_bucket", "tecmon_deliveries_failed_total",
    "tecmon_mqtt_connected", "tecmon_homes_loaded",
])
def test_dashboard_shows(required: str) -> None:
    assert any(required in metrics_in(e) for e in dashboard_queries())


def test_dashboard_shows_latency_p50_and_p99() -> None:
    quantiles = {m for e in dashboard_queries() for m in re.findall(r"histogram_quantile\(\s*([0-9.]+)", e)}
    assert {"0.5", "0.99"} <= quantiles


def test_metric_names_are_what_the_registry_exposes() -> None:
    assert set(metric_types()) == set(METRIC_NAMES)


@pytest.mark.parametrize(("expr", "ok"), [
    ("rate(tecmon_events_total[5m])", True),
    ("rate(tecmon_events[5m])", False),
    ("tecmon_trigger_to_notification_seconds", False),
    ("histogram_quantile(0.5, sum by (le) (rate(tecmon_trigger_to_notification_seconds_bucket[5m])))", True),
    ("histogram_quantile(0.5, rate(tecmon_trigger_to_notification_seconds_bucket[5m]))", False),
    ('up{job="tecmon"}', True),
])
def test_query_checking(expr: str, ok: bool) -> None:
    if ok:
        assert_query_uses_known_metrics(expr)
    else:
        with pytest.raises(AssertionError):
            assert_query_uses_known_metrics(expr)


@pytest.mark.parametrize("name", [
    "TecmonDown", "TecmonMqttDisconnected", "TecmonDeliveriesFailing", "TecmonDeadLettersRising",
])
def test_the_essential_alerts_exist(name: str) -> None:
    assert name in {r["alert"] for r in alert_rules()}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_rules_are_complete_and_use_exposed_metrics(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"]
    assert_query_uses_known_metrics(rule["expr"])
    builtins = {b for b in PROMETHEUS_BUILTINS if re.search(rf"\b{b}\{{", rule["expr"])}
    assert metrics_in(rule["expr"]) or builtins, f"{rule['expr']}: no metric"
    for job in re.findall(r'job="([^"]+)"', rule["expr"]):
        jobs = {j["job_name"] for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
        assert job in jobs


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


# =========================================================================== real tools, where installed


def tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        pytest.fail(f"{name} is not installed; it is part of this machine's base image")
    return found


def test_systemd_analyze_knows_every_key(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    text = read("systemd/tecmon.service").replace(exec_start()[0], "/bin/true")
    unit = tmp_path / "tecmon.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if str(unit) in line]
    assert not complaints, "\n".join(complaints)


def run_ok(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- a private broker


@dataclass
class Broker:
    ports: dict[int, int]  # listener port in mosquitto.conf -> port of this test broker
    passwords: dict[str, str]
    ca_file: Path
    log: Path
    proc: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run([tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return cert, key


def password_file(path: Path, users: list[str]) -> dict[str, str]:
    passwd = tool("mosquitto_passwd")
    path.touch()
    passwords = {user: f"pw-{i}-{os.getpid()}" for i, user in enumerate(users)}
    for user, password in passwords.items():
        subprocess.run([passwd, "-b", str(path), user, password], check=True, capture_output=True)
    return passwords


def private_conf(tmp_path: Path, port_map: dict[int, int], cert: Path, key: Path) -> str:
    """mosquitto.conf with every path moved into tmp_path and every listener on a free local port."""
    replacements = {"password_file": tmp_path / "passwd", "acl_file": tmp_path / "acl",
                    "certfile": cert, "keyfile": key, "cafile": cert}
    out = [f"user {getpass.getuser()}"]
    for key_word, args in mosquitto_conf().lines:
        if key_word == "listener":
            out.append(f"listener {port_map[int(args[0])]} 127.0.0.1")
        elif key_word in replacements:
            out.append(f"{key_word} {replacements[key_word]}")
        elif key_word == "persistence_location":
            out.append(f"persistence_location {tmp_path}/")
        elif key_word == "log_dest":
            out.append("log_dest stdout")
        else:
            assert not any(a.startswith("/") for a in args), f"unhandled path in mosquitto.conf: {key_word}"
            out.append(" ".join([key_word, *args]))
    return "\n".join(out) + "\n"


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"mosquitto is not listening on {port}:\n{log.read_text(errors='replace')}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    mosquitto = tool("mosquitto")
    cert, key = self_signed_cert(tmp_path)
    passwords = password_file(tmp_path / "passwd", [*acl().users, "intruder"])
    shutil.copy(DEPLOY / "mosquitto/acl", tmp_path / "acl")
    port_map = {li.port: free_port() for li in mosquitto_conf().listeners}
    assert not set(port_map.values()) & {1883, 8883}, "never the shared broker's ports"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(private_conf(tmp_path, port_map, cert, key), encoding="utf-8")
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        for port in port_map.values():
            wait_listening(port, proc, log)
        yield Broker(port_map, passwords, cert, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_mosquitto_starts_with_this_config(broker: Broker) -> None:
    assert broker.proc.poll() is None, broker.log.read_text(errors="replace")
    for port in broker.ports.values():
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


def test_the_tls_listener_completes_a_handshake(broker: Broker) -> None:
    tls_port = broker.ports[next(li.port for li in mosquitto_conf().listeners if li.tls)]
    context = ssl.create_default_context(cafile=str(broker.ca_file))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_compose_healthcheck_passes_against_the_broker(broker: Broker) -> None:
    tool("mosquitto_sub")
    plain = next(li.port for li in mosquitto_conf().listeners if not li.tls)
    command = healthcheck_command(service("mosquitto")).replace(f"-p {plain}", f"-p {broker.ports[plain]}")
    assert subprocess.run(["sh", "-c", command], check=False, timeout=30).returncode == 0


class Client:
    """A paho MQTT 5 client that records deliveries and PUBACK reason codes."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.received: list[str] = []
        self.acks: dict[int, Any] = {}
        self.connack: Any = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{user}-{os.getpid()}", protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connected.wait(5), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self._connected.set()

    def subscribe(self, topic_filter: str) -> None:
        self.client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(5), "no SUBACK"

    def publish(self, topic: str) -> str:
        info = self.client.publish(topic, b'{"occupancy": true}', qos=1)
        info.wait_for_publish(5)
        deadline = time.monotonic() + 5
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return str(self.acks.get(info.mid))

    def wait_for(self, topic: str) -> None:
        deadline = time.monotonic() + 5
        while topic not in self.received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert topic in self.received, f"{topic} never arrived; got {self.received}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def clients(broker: Broker, users: list[str | None]) -> Iterator[list[Client]]:
    port = broker.ports[next(li.port for li in mosquitto_conf().listeners if not li.tls)]
    opened: list[Client] = []
    try:
        for user in users:
            opened.append(Client(port, user, broker.passwords.get(user) if user else None))
        yield opened
    finally:
        for c in opened:
            c.close()


def test_the_acl_holds_on_a_real_broker(broker: Broker) -> None:
    mqtt = settings().mqtt
    home = homes()[0]
    own = home_topics(home, mqtt.prefix)[0]
    bridge = BRIDGE_USER.format(home=home.home)
    with clients(broker, [mqtt.username, bridge, "intruder", None]) as (gateway, z2m, intruder, anonymous):
        assert str(anonymous.connack) == "Not authorized"
        gateway.subscribe(f"{mqtt.prefix}/+/#")
        z2m.subscribe(f"{mqtt.prefix}/{home.home}/#")
        denied = [
            (z2m, f"{mqtt.prefix}/another-home/bed"),
            (intruder, own),
            (gateway, f"{own}/set"),
        ]
        for publisher, topic in denied:
            assert publisher.publish(topic) == "Not authorized", topic
        assert z2m.publish(own) == "Success"
        gateway.wait_for(own)
        z2m.wait_for(own)
        assert gateway.received == [own], "a denied message was delivered"
        assert z2m.received == [own]


def test_prometheus_scrapes_with_the_metrics_token_tecmon_expects() -> None:
    job = {j["job_name"]: j for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}["tecmon"]
    auth = job["authorization"]
    assert auth["type"] == "Bearer"
    assert mount_of(service("prometheus"), "./prometheus/tecmon-metrics-token").target == auth["credentials_file"]
    assert "TECMON_AUTH__METRICS_TOKEN=" in (DEPLOY / "tecmon.env.example").read_text()
