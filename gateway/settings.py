"""Service configuration: a YAML file, overridden by `TECMON_*` environment variables.

Environment variables win so that secrets (the MQTT password) and
per-deployment addresses never need to be written into the file. Nested keys
use a double underscore: `TECMON_MQTT__HOST`, `TECMON_API__PORT`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from alerts.homeconfig import ConfigError, Contact


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str = "tecmon-gateway"
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    prefix: str = "zigbee2mqtt"
    qos: int = Field(1, ge=0, le=2)
    session_expiry_s: int = Field(
        86400, ge=0, description="how long the broker keeps our queue while we are away"
    )
    keepalive_s: int = Field(30, ge=5)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)


class NatsSettings(_Section):
    """`ingest: nats`: homes publish to a NATS cluster; instances share its partitions (README)."""

    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    partitions: int = Field(16, ge=1, le=1024, description="the N of the cluster's partition mapping")
    instance: str | None = Field(None, description="this instance's name; by default host and process id")
    lease_s: float = Field(5.0, gt=0.5, description="a frozen instance's partitions are taken after this")
    stream_replicas: int = Field(3, ge=1, le=5)
    stream_max_age_h: float = Field(48.0, gt=0, description="messages kept in the stream for takeovers")
    command_timeout_s: float = Field(5.0, gt=0, description="how long a command waits for its owner")


class NotifySettings(_Section):
    timeout_s: float = Field(10.0, gt=0, description="per attempt, per notification URL")
    retries: int = Field(2, ge=0, description="further attempts after the first")
    retry_backoff_s: float = Field(1.0, ge=0)
    workers: int = Field(8, ge=1, description="apprise sends are blocking; they run on this many threads")
    alert_workers: int = Field(
        4, ge=1, description="more threads that send only person-safety alerts, so that notices "
        "stuck on a dead service can never take every thread"
    )
    stuck_limit: int = Field(
        16, ge=0, description="per lane: senders given up on (hung past timeout_s) that are replaced "
        "by new threads; past it the lane works on with fewer"
    )
    queue_wait_s: float = Field(
        120.0, gt=0, description="longest wait for a free sender before an attempt counts as failed"
    )
    notice_batch_s: float = Field(
        30.0, ge=0, description="device notices to one service contact within this long after one "
        "was sent go out together as one message; 0 sends each on its own"
    )


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class AuthSettings(_Section):
    secret_key: SecretStr | None = Field(
        None, description="signs tokens, cookies and links; without it one is made and kept in the database"
    )
    token_minutes: int = Field(30, ge=1, le=24 * 60, description="lifetime of a bearer token")
    session_minutes: int = Field(12 * 60, ge=5, description="lifetime of a web login")
    ack_link_minutes: int = Field(120, ge=5, description="lifetime of an acknowledgement link")
    metrics_token: SecretStr | None = Field(None, description="a bearer token Prometheus may scrape with")
    login_attempts_per_account: int = Field(5, ge=1)
    login_attempts_per_address: int = Field(20, ge=1)
    login_window_min: float = Field(15.0, gt=0, description="failed logins are counted over this window")
    secure_cookies: bool | None = Field(
        None, description="mark cookies Secure; by default when public_url is https"
    )


class SoakClockSettings(_Section):
    """TEST ONLY: run on simulated time, `speed` times faster than real time (see `ScaledClock`).

    The soak test (`make soak`) uses it to put a whole night through a real
    `tecmon serve` in minutes. Never set it in a deployment: every deadline,
    stamp and token lifetime would run on simulated time.
    """

    origin: datetime = Field(description="the simulated instant the clock reads at `anchor`")
    anchor: float = Field(description="a Unix time (real seconds)")
    speed: float = Field(gt=0, le=10_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TECMON_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    ingest: Literal["mqtt", "nats"] = Field(
        "mqtt", description="mqtt: one gateway on one broker (the default); nats: see `nats`")
    nats: NatsSettings = Field(default_factory=NatsSettings)
    database_url: str = "sqlite:///tecmon.db"
    event_retention_days: int = Field(90, ge=1, description="raw sensor events")
    alert_retention_days: int = Field(
        730, ge=1, description="alert steps, notification attempts, dead letters"
    )
    recovery_window_h: float = Field(24.0, gt=0, description="events replayed at start to rebuild state")
    snapshot_every_s: float = Field(
        300.0, ge=0, description="how often the engine state of homes that changed is snapshotted (and at a "
        "clean stop), so a restart replays only what came after; 0: never, replay the whole window"
    )
    store_buffer: int = Field(500_000, ge=1000, description="rows held in memory while the database is away")
    store_flush_s: float = Field(0.25, gt=0, description="a hard crash can lose at most this much history")
    homes: list[Path] = Field(default_factory=lambda: [Path("homes")])
    service_contacts: list[Contact] = Field(default_factory=list)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    public_url: str | None = Field(
        None, description="where carers reach this service, e.g. https://tecmon.example.org; "
        "acknowledgement links in notifications start with it"
    )
    notify: NotifySettings = Field(default_factory=NotifySettings)
    config_poll_s: float = Field(5.0, gt=0, description="how often home files are checked for changes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    test_clock: SoakClockSettings | None = Field(
        None, description="TEST ONLY (the soak test): simulated time instead of the wall clock"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # the environment overrides the file


def load_settings(path: str | Path | None = None, base_dir: Path | None = None) -> Settings:
    """Read the YAML file (if any), apply `TECMON_*` variables, resolve relative paths."""
    data: dict[str, Any] = {}
    source = str(path) if path else "environment"
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(source, [f"cannot read: {exc}"]) from None
        data = loaded or {}
        if not isinstance(data, dict):
            raise ConfigError(source, ["expected a mapping of settings"])
        base_dir = base_dir or Path(path).resolve().parent
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        problems = [".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()]
        raise ConfigError(source, problems) from None
    if base_dir is not None:
        settings.homes = [p if p.is_absolute() else base_dir / p for p in settings.homes]
    return settings
