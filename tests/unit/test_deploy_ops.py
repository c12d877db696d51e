"""The deployment's monitoring, Dockerfile and systemd unit, and the real tools where they are installed."""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.metrics import METRIC_NAMES
from tests.unit.deploy_support import (
    BRIDGE_USER,
    CONFIG_IN_CONTAINER,
    DEPLOY,
    PROMETHEUS_BUILTINS,
    ROOT,
    _no_tecmon_env,  # noqa: F401  (autouse: no TECMON_* leaks in)
    acl,
    alert_rules,
    assert_query_uses_known_metrics,
    dashboard,
    dashboard_queries,
    docker_instruction,
    exec_form,
    exec_start,
    healthcheck_command,
    homes,
    load_yaml,
    metric_types,
    metrics_in,
    mosquitto_conf,
    mount_of,
    panels,
    ports,
    read,
    service,
    settings,
    systemd_unit,
)
from tests.unit.test_deploy import home_topics

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
