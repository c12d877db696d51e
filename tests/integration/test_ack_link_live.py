"""The acknowledgement link end to end: real Mosquitto, `tecmon serve` in-process, a phone sink.

The link is taken from the notification as the phone received it, then
opened over real HTTP: GET shows, POST acknowledges (the next contact is never
called), a second POST is refused. Thresholds are seconds instead of minutes.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
import pytest
import yaml

from gateway.settings import Settings
from tests.conftest import Phone, eventually, free_port
from tests.integration.test_gateway_live import running

pytestmark = pytest.mark.integration
ZONE = ZoneInfo("Europe/London")
SAM_PATH = "sam-SECRET-LIVE-TOKEN"
NIGHT_PATH = "night-SECRET-LIVE-TOKEN"
SECRET = "SECRET-LIVE-TOKEN"
"""The recognisable part of both notification URLs: no page may contain it."""
ACK_WITHIN_S = 4


def _settings(tmp_path: Path, mqtt: tuple[str, int], phone: Phone) -> Settings:
    now = datetime.now(ZONE)
    home = {
        "home": "julie", "timezone": "Europe/London", "person": {"name": "Julie"},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"}],
        "routine": {"night": {"from": (now - timedelta(hours=2)).strftime("%H:%M"),
                              "to": (now + timedelta(hours=4)).strftime("%H:%M")},
                    "out_of_bed": {"alert_after": "2s"}},
        "contacts": [{"name": "Sam", "notify": [phone.url(SAM_PATH)]},
                     {"name": "Night responder", "notify": [phone.url(NIGHT_PATH)]}],
        "escalation": {"ack_within": f"{ACK_WITHIN_S}s", "repeat_every": f"{ACK_WITHIN_S}s"},
    }
    homes = tmp_path / "homes"
    homes.mkdir()
    (homes / "julie.yaml").write_text(yaml.safe_dump(home))
    port = free_port()
    return Settings(
        mqtt={"host": mqtt[0], "port": mqtt[1], "prefix": f"t{uuid.uuid4().hex[:8]}",
              "client_id": f"tecmon-test-{uuid.uuid4().hex[:8]}", "reconnect_min_s": 0.2},
        homes=[homes], api={"host": "127.0.0.1", "port": port}, public_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite:///{tmp_path / 'tecmon.db'}", notify={"timeout_s": 5, "retries": 0},
    )


async def _publish(settings: Settings, device: str, payload: Any) -> None:
    async with aiomqtt.Client(settings.mqtt.host, settings.mqtt.port) as client:
        await client.publish(f"{settings.mqtt.prefix}/julie/{device}", json.dumps(payload), qos=1)


async def test_the_link_in_the_notification_acknowledges_once(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone
) -> None:
    settings = _settings(tmp_path, mosquitto, phone)
    async with running(settings) as service, httpx.AsyncClient() as client:
        await _publish(settings, "bed", {"occupancy": True})
        await _publish(settings, "bed", {"occupancy": False})
        await eventually(lambda: phone.for_(SAM_PATH), 10, "Sam was never called")
        body = phone.for_(SAM_PATH)[0]["message"]
        found = re.search(rf"{re.escape(str(settings.public_url))}/ack/[A-Za-z0-9_.\-]+", body)
        assert found, f"no acknowledgement link in: {body}"
        link = found.group(0)

        pages = [await client.get(link)]
        assert pages[-1].status_code == 200 and "I'm dealing with it" in pages[-1].text
        assert [a["acknowledged_by"] for a in service.runtime.open_alerts()] == [None]

        pages.append(await client.post(link))
        assert pages[-1].status_code == 200, pages[-1].text
        assert [a["acknowledged_by"] for a in service.runtime.open_alerts()] == ["Sam"]
        await eventually(lambda: any(line["step"] == "acknowledged" for line in service.history), 5,
                         "the acknowledgement was never recorded")
        pages.append(await client.post(link))
        assert pages[-1].status_code == 410 and "already been used" in pages[-1].text

        await asyncio.sleep(ACK_WITHIN_S + 1)  # past the moment the next contact would be called
        steps = [line["step"] for line in service.history]
        assert "escalated" not in steps[steps.index("acknowledged"):]
        if "escalated" not in steps:  # acknowledged in time, as expected: the next contact slept on
            assert phone.for_(NIGHT_PATH) == []
        assert not [p for p in pages if SECRET in p.text]
