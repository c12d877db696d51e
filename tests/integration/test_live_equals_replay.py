"""A night published through the real Mosquitto into a running gateway gives the same
alerts as `tecmon replay` of the same night.

The gateway runs on a simulated clock that the test moves to each message's
time before publishing it, so a whole night takes seconds and the live
service and the replay see exactly the same instants.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from alerts.events import Acknowledge, ResolveAlert
from alerts.homeconfig import load_home_config
from gateway.clock import SimClock
from gateway.replay import lifecycle_line, parse_line, parse_timestamp, run_replay
from gateway.service import Service
from gateway.settings import Settings
from tests.conftest import Phone, free_port

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"


def replayed(home: Path, lines: list[str], until: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stop = parse_timestamp(until) if until else None
    report = run_replay([load_home_config(home)], lines, lambda d: out.append(lifecycle_line(d)), until=stop)
    assert report.problems == []
    return out


async def settle(service: Service, clock: SimClock, seconds: float = 0.3) -> None:
    """Wait until every deadline up to the clock has fired, every send has finished and its
    outcome has been applied, and then nothing new happened for a moment."""
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < seconds:
        await timers_caught_up(service, clock)
        size = len(service.history)
        if size != last or service.dispatcher.in_flight or not service.runtime.outbox.empty():
            last, quiet_since = size, time.monotonic()
        await asyncio.sleep(0.02)


async def live(home: Path, lines: list[str], until: str | None, broker: tuple[str, int]) -> list[dict[str, Any]]:
    parsed = [parse_line(text) for text in lines]
    clock = SimClock(parsed[0].ts)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = Settings(
        mqtt={"host": broker[0], "port": broker[1], "prefix": prefix, "client_id": f"tecmon-{prefix}"},
        homes=[home], api={"host": "127.0.0.1", "port": free_port()}, database_url="sqlite:///:memory:",
    )
    service = Service(settings, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        while not service.mqtt_state["connected"]:
            await asyncio.sleep(0.02)
        await publish_night(service, clock, parsed, prefix, broker)
        if until:
            clock.set(max(clock.now(), parse_timestamp(until)))
        await settle(service, clock)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    return list(service.history)


async def publish_night(service: Service, clock: SimClock, parsed: list[Any], prefix: str,
                        broker: tuple[str, int]) -> None:
    home = next(iter(service.runtime.homes))
    async with aiomqtt.Client(*broker, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for line in parsed:
            clock.set(max(clock.now(), line.ts))
            await timers_caught_up(service, clock)
            if isinstance(line.command, Acknowledge | ResolveAlert):
                service.runtime.apply(home, line.command)
                continue
            before = service.events_ingested
            topic = prefix + line.topic[line.topic.index("/"):]
            payload = line.payload if isinstance(line.payload, str) else json.dumps(line.payload)
            await client.publish(topic, payload, qos=1)
            await wait_ingested(service, before)


async def timers_caught_up(service: Service, clock: SimClock, seconds: float = 10.0) -> None:
    """Every deadline up to the clock has fired and its decisions have been dispatched."""
    deadline = time.monotonic() + seconds
    while True:
        due = service.runtime.heap.peek()
        if (due is None or due > clock.now()) and service.runtime.outbox.empty():
            return
        if time.monotonic() > deadline:
            pytest.fail("timers did not catch up with the clock")
        await asyncio.sleep(0.001)


async def wait_ingested(service: Service, before: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while service.events_ingested == before and not service.runtime.dead_letters:
        if time.monotonic() > deadline:
            pytest.fail("the gateway never applied a published message")
        await asyncio.sleep(0.001)


def reachable_copy(home: Path, phone: Phone, directory: Path) -> Path:
    """The same home with every contact's phone at the local sink, so every call is delivered."""
    data = yaml.safe_load(home.read_text())
    for group in ("contacts", "service_contacts"):
        for contact in data.get(group, []):
            contact["notify"] = [phone.url(contact["name"].split()[0])]
    copy = directory / home.name
    copy.write_text(yaml.safe_dump(data))
    return copy


NIGHTS = [
    ("julie.night.jsonl", None),
    ("julie.night.jsonl", "2026-01-12T11:00:00+00:00"),
]
SCENARIOS = ["fall", "wandering", "sensor-offline", "im-ok", "duplicates", "out-of-order", "dst-autumn",
             "stuck-bed"]


@pytest.mark.parametrize(("night", "until"), NIGHTS, ids=["night", "night-until-morning"])
async def test_live_gateway_matches_replay(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone, night: str, until: str | None
) -> None:
    lines = (DATA / night).read_text().splitlines()
    config = reachable_copy(DATA / "julie.home.yaml", phone, tmp_path)
    expected = replayed(config, lines, until)
    assert expected, "the night should raise something"
    assert await live(config, lines, until, mosquitto) == expected


@pytest.mark.parametrize("name", SCENARIOS)
async def test_simulated_scenario_live_matches_replay(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone, name: str
) -> None:
    from simulator.personas import get_persona
    from simulator.scenarios import generate

    config = reachable_copy(DATA / "julie.home.yaml", phone, tmp_path)
    night = generate(name, load_home_config(config), get_persona("julie"), seed=7)
    until = night.end.isoformat()
    expected = replayed(config, night.lines, until)
    assert expected or name == "duplicates"
    assert await live(config, night.lines, until, mosquitto) == expected


async def test_messages_without_a_known_field_live_match_replay(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone
) -> None:
    """A bed offline, then heard again only through messages its profile has no field for."""
    config = reachable_copy(DATA / "julie.home.yaml", phone, tmp_path)
    topic = "zigbee2mqtt/julie-12-oak-road/bed"
    lines = [
        json.dumps({"ts": "2026-01-11T22:40:00+00:00", "topic": topic, "payload": {"occupancy": True}}),
        json.dumps({"ts": "2026-01-12T03:00:00+00:00", "topic": f"{topic}/availability", "payload": "offline"}),
        json.dumps({"ts": "2026-01-12T03:20:00+00:00", "topic": topic, "payload": {"presence": True}}),
        json.dumps({"ts": "2026-01-12T03:25:00+00:00", "topic": topic, "payload": {"linkquality": 9}}),
    ]
    expected = replayed(config, lines, None)
    assert [(line["step"], line["kind"]) for line in expected] == [
        ("raised", "device_offline"), ("notified", "device_offline"), ("resolved", "device_offline"),
    ]
    assert await live(config, lines, None, mosquitto) == expected
