"""`tecmon serve` against the real Mosquitto: from a Zigbee2MQTT payload to a carer's phone.

Thresholds are seconds instead of minutes so a night takes a few seconds; the
phone is a local HTTP sink reached through apprise's json:// URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
import yaml

from gateway.clock import Clock, SimClock
from gateway.service import Service
from gateway.settings import Settings
from tests.conftest import Phone, PrivateBroker, add_account, eventually, free_port, sign_in

pytestmark = pytest.mark.integration
ZONE = ZoneInfo("Europe/London")


def home_config(phone: Phone, **routine: Any) -> dict[str, Any]:
    now = datetime.now(ZONE)
    return {
        "home": "julie", "timezone": "Europe/London", "person": {"name": "Julie"},
        "devices": [
            {"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"},
            {"id": "hall-motion", "profile": "aqara-rtcgq11lm", "kind": "motion"},
            {"id": "front-door", "profile": "aqara-mccgq11lm", "kind": "door", "exit": True},
        ],
        "routine": {
            "night": {"from": (now - timedelta(hours=2)).strftime("%H:%M"),
                      "to": (now + timedelta(hours=4)).strftime("%H:%M")},
            "out_of_bed": {"alert_after": "2s"}, **routine,
        },
        "contacts": [{"name": "Sam", "notify": [phone.url("Sam")]},
                     {"name": "Night responder", "notify": [phone.url("Night")]}],
        "escalation": {"ack_within": "3s", "repeat_every": "3s"},
    }


def settings_for(tmp_path: Path, host: str, port: int, protocol: str, home: dict[str, Any]) -> Settings:
    homes = tmp_path / "homes"
    homes.mkdir(exist_ok=True)
    (homes / "julie.yaml").write_text(yaml.safe_dump(home))
    return Settings(
        mqtt={"host": host, "port": port, "protocol": protocol, "prefix": f"t{uuid.uuid4().hex[:8]}",
              "client_id": f"tecmon-test-{uuid.uuid4().hex[:8]}", "reconnect_min_s": 0.2,
              "reconnect_max_s": 1.0},
        homes=[homes], api={"host": "127.0.0.1", "port": free_port()},
        database_url=f"sqlite:///{tmp_path / 'tecmon.db'}",
        notify={"timeout_s": 5, "retries": 0}, config_poll_s=0.5,
    )


@contextlib.asynccontextmanager
async def running(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Service]:
    stop = asyncio.Event()
    service = Service(settings) if clock is None else Service(settings, clock=clock)
    task = asyncio.create_task(service.run(stop))
    await eventually(lambda: service.mqtt_state["connected"], 10, "the gateway never connected")
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def publish(settings: Settings, device: str, payload: Any) -> float:
    mqtt = settings.mqtt
    version = aiomqtt.ProtocolVersion.V5 if mqtt.protocol == "5" else aiomqtt.ProtocolVersion.V311
    async with aiomqtt.Client(mqtt.host, mqtt.port, protocol=version) as client:
        await client.publish(f"{mqtt.prefix}/julie/{device}", json.dumps(payload), qos=1)
    return time.monotonic()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_alert_reaches_the_phone_and_escalates_without_an_ack(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone, protocol: str
) -> None:
    settings = settings_for(tmp_path, *mosquitto, protocol, home_config(phone))
    async with running(settings) as service:
        await publish(settings, "bed", {"occupancy": True})
        left = await publish(settings, "bed", {"occupancy": False})
        await eventually(lambda: phone.for_("Sam"), 10, "Sam was never called")
        first = next(t for t, path, _ in phone.received if path == "/Sam")
        assert first - left >= 1.9, "the alert is due 2 s after leaving bed, not before"
        alert = phone.for_("Sam")[0]
        assert alert["title"].startswith("Julie: out of bed")
        assert "out of bed" in alert["message"]
        await eventually(lambda: phone.for_("Night"), 10, "no escalation to the second contact")
        await publish(settings, "bed", {"occupancy": True})
        await eventually(lambda: len(phone.for_("Sam")) == 2, 10, "Sam was not told it is over")
        steps = [line["step"] for line in service.history]
        assert steps[:3] == ["raised", "notified", "escalated"] and steps[-1] == "resolved"
        assert service.metrics.render().count(b'tecmon_alerts_raised_total{kind="out_of_bed_too_long"} 1.0') == 1


async def test_acknowledging_stops_escalation(tmp_path: Path, mosquitto: tuple[str, int], phone: Phone) -> None:
    """On the service's own clock, moved by the test: however long signing in takes on a busy
    machine, the acknowledgement comes before `ack_within` has run out, as a carer's would."""
    import httpx

    settings = settings_for(tmp_path, *mosquitto, "5", home_config(phone))
    await add_account(settings.database_url, "sam", "carer", "sams-long-password", ("julie",), "Sam")
    clock = SimClock(datetime.now(UTC) - timedelta(minutes=5))  # behind the real clock, as tokens are checked on it
    async with running(settings, clock) as service:
        await publish(settings, "bed", {"occupancy": True})
        await publish(settings, "bed", {"occupancy": False})
        await eventually(lambda: service.events_ingested == 2, 10, "the bed readings never arrived")
        clock.advance(timedelta(seconds=3))  # past the 2 s out of bed
        await eventually(lambda: phone.for_("Sam"), 10, "Sam was never called")
        alert_id = service.runtime.open_alerts()[0]["alert"]
        api = f"http://127.0.0.1:{settings.api.port}"
        async with httpx.AsyncClient() as client:
            auth = await sign_in(client, api, "sam", "sams-long-password")
            reply = await client.post(f"{api}/alerts/{alert_id}/ack", headers=auth)
            assert reply.status_code == 200 and reply.json()["steps"] == ["acknowledged"]
            clock.advance(timedelta(seconds=10))  # well past ack_within and repeat_every
            await eventually(lambda: quiet(service, clock), 10, "deadlines did not catch up")
            assert phone.for_("Night") == []
            listed = (await client.get(f"{api}/alerts", headers=auth)).json()["items"]
            assert listed[0]["acknowledged_by"] == "Sam"
            reply = await client.post(f"{api}/alerts/{alert_id}/resolve", headers=auth,
                                      json={"outcome": "false_alarm", "note": "making tea"})
            assert reply.json()["steps"] == ["resolved"]
        assert [line["step"] for line in service.history] == ["raised", "notified", "acknowledged", "resolved"]


def quiet(service: Service, clock: SimClock) -> bool:
    """Every deadline up to the clock has fired and every send it caused has finished."""
    due = service.runtime.heap.peek()
    return ((due is None or due > clock.now()) and service.runtime.outbox.empty()
            and not service.dispatcher.in_flight)


async def test_dead_letters_are_counted_and_kept(tmp_path: Path, mosquitto: tuple[str, int], phone: Phone) -> None:
    settings = settings_for(tmp_path, *mosquitto, "5", home_config(phone))
    async with running(settings) as service:
        await publish(settings, "kettle", {"power": 1})
        await publish(settings, "bed", {"occupancy": "perhaps"})
        await eventually(lambda: len(service.runtime.dead_letters) == 2, 10, "dead letters not kept")
        reasons = [d.code for d in service.runtime.dead_letters]
        assert reasons == ["unknown_device", "undecodable"]
        text = service.metrics.render().decode()
        assert 'tecmon_dead_letters_total{reason="unknown_device"} 1.0' in text
        assert "tecmon_decode_errors_total 1.0" in text


async def test_a_changed_home_file_applies_without_restart(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone
) -> None:
    settings = settings_for(tmp_path, *mosquitto, "5", home_config(phone, out_of_bed={"alert_after": "1h"}))
    async with running(settings) as service:
        await publish(settings, "bed", {"occupancy": True})
        changed = home_config(phone)  # 2 s instead of an hour
        (settings.homes[0] / "julie.yaml").write_text(yaml.safe_dump(changed))
        await eventually(lambda: service.runtime.homes["julie"].plan.out_of_bed_after == timedelta(seconds=2),
                    10, "the new routine was not applied")
        await publish(settings, "bed", {"occupancy": False})
        await eventually(lambda: phone.for_("Sam"), 10, "the new 2 s threshold did not raise")


async def test_broker_restart_loses_no_qos1_event(
    tmp_path: Path, private_broker: PrivateBroker, phone: Phone
) -> None:
    settings = settings_for(tmp_path, "127.0.0.1", private_broker.port, "5", home_config(phone))
    total, seen = 400, set()
    async with running(settings) as service:
        original = service.runtime.ingest

        def spy(message: Any) -> int:
            seen.add(json.loads(message.payload)["seq"])
            return original(message)

        service.runtime.ingest = spy  # type: ignore[method-assign]
        publisher = asyncio.create_task(publish_all(settings, total))
        await eventually(lambda: len(seen) >= 100, 20, "the stream never started")
        private_broker.stop()
        await asyncio.sleep(1.0)
        private_broker.start()
        await asyncio.wait_for(publisher, 60)
        await eventually(lambda: len(seen) == total, 30, f"lost events: {sorted(set(range(total)) - seen)}")
    assert seen == set(range(total))


async def publish_all(settings: Settings, total: int) -> None:
    """Publish seq 0..total-1 at QoS 1; each is retried until the broker acknowledges it."""
    seq = 0
    while seq < total:
        try:
            async with aiomqtt.Client("127.0.0.1", settings.mqtt.port, protocol=aiomqtt.ProtocolVersion.V5,
                                      timeout=2) as client:
                while seq < total:
                    payload = json.dumps({"occupancy": True, "seq": seq})
                    await client.publish(f"{settings.mqtt.prefix}/julie/hall-motion", payload, qos=1)
                    seq += 1
                    await asyncio.sleep(0.005)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)
