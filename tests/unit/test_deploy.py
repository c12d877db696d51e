"""The deployment files as shipped: they parse, and compose, environment, broker and ACL agree with each other and with the service's settings."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from alerts.homeconfig import HomeConfig, load_home_config
from gateway.settings import load_settings
from tests.unit.deploy_support import (
    BRIDGE_USER,
    CONFIG_IN_CONTAINER,
    DEPLOY,
    HOMES_IN_CONTAINER,
    NIGHT_MESSAGES,
    NIGHT_S,
    OPERATOR_PROVIDED,
    OTHER_TECMON_ENV,
    ROOT,
    _no_tecmon_env,  # noqa: F401  (autouse: no TECMON_* leaks in)
    acl,
    compose,
    dashboard,
    duration_s,
    env_assignments,
    env_files,
    expand,
    healthcheck_command,
    home_files,
    homes,
    load_yaml,
    mosquitto_conf,
    mount_of,
    mounts,
    panels,
    ports,
    read,
    service,
    settings,
    settings_path,
    topic_matches,
    under_a_mount,
    value_at,
)

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
