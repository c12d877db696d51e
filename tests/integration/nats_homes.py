"""Homes and settings for the `ingest: nats` tests: seconds instead of minutes, a known truth.

Each home has a bed and a phone contact. The night's ground truth is simple
and exact: a home whose person leaves bed and does not return raises one
`out_of_bed_too_long` alert after `ALERT_AFTER_S` and calls its first contact
once (acknowledgement is given minutes, so no escalation falls in a test);
a home whose person returns at once raises nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.settings import Settings
from tests.conftest import Phone, free_port

ZONE = ZoneInfo("Europe/London")
ALERT_AFTER_S = 2


def home_config(home: str, phone: Phone, ack_within: str = "10m") -> dict[str, Any]:
    now = datetime.now(ZONE)
    return {
        "home": home, "timezone": "Europe/London", "person": {"name": f"P {home}"},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"}],
        "routine": {
            "night": {"from": (now - timedelta(hours=2)).strftime("%H:%M"),
                      "to": (now + timedelta(hours=4)).strftime("%H:%M")},
            "out_of_bed": {"alert_after": f"{ALERT_AFTER_S}s"},
        },
        "contacts": [{"name": "Sam", "notify": [phone.url(f"Sam/{home}")]},
                     {"name": "Night", "notify": [phone.url(f"Night/{home}")]}],
        "escalation": {"ack_within": ack_within, "repeat_every": "10m"},
    }


def write_homes(directory: Path, homes: list[str], phone: Phone, ack_within: str = "10m") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for home in homes:
        (directory / f"{home}.yaml").write_text(yaml.safe_dump(home_config(home, phone, ack_within)))
    return directory


def cluster_settings(homes_dir: Path, servers: list[str], database_url: str, partitions: int,
                     instance: str, lease_s: float = 6.0) -> Settings:
    return Settings(
        ingest="nats",
        nats={"servers": servers, "partitions": partitions, "instance": instance, "lease_s": lease_s},
        homes=[homes_dir], api={"host": "127.0.0.1", "port": free_port()},
        database_url=database_url, notify={"timeout_s": 5, "retries": 0}, config_poll_s=60,
    )


def calls(phone: Phone, contact: str = "Sam") -> list[str]:
    """The homes `contact` was called about, one entry per call (`Sam/<home>` paths)."""
    with phone.lock:
        paths = [path.strip("/") for _, path, _ in phone.received]
    return [p.split("/", 1)[1] for p in paths if p.startswith(f"{contact}/")]
