"""Ask first and company mode, simulated and published live: the ground truth holds both ways.

Each care scenario for Arthur (his bundled home asks him first, within 3
minutes, and has company mode) is replayed through `tecmon replay`'s engine
and published through the real Mosquitto to a running gateway on a simulated
clock, as in `test_live_equals_replay`. Live, the gateway publishes the
bedside lamp's `set` message and the simulated Arthur answers only after the
lamp has received it: before each message is published, every ask so far
must have reached the lamp. A carer's company input goes in as
`POST /homes/{home}/company` does, through the runtime.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from alerts.events import Acknowledge, ResolveAlert, SetCompany
from alerts.homeconfig import load_home_config
from gateway.clock import SimClock
from gateway.replay import parse_line
from gateway.service import Service
from gateway.settings import Settings
from simulator.personas import get_persona
from simulator.scenarios import Generated, generate
from tests.conftest import Phone, eventually, free_port
from tests.integration.test_live_equals_replay import (
    reachable_copy,
    replayed,
    settle,
    timers_caught_up,
    wait_ingested,
)

pytestmark = pytest.mark.integration
ARTHUR = get_persona("arthur")
LAMP = "bedside-lamp"
SCENARIOS = ["ask-first-ok", "ask-first-no-answer", "company-button", "company-carer", "company-ends-up"]
Key = tuple[str, str, str, str | None]


def keys(lines: list[dict[str, Any]]) -> list[Key]:
    return [(line["step"], line["kind"], line["at"], line["contact"]) for line in lines]


def truth(night: Generated) -> list[Key]:
    return keys([e.line() for e in night.expected])


class Lamp:
    """Arthur's bedside lamp on the real broker: every `set` message the gateway sends it."""

    def __init__(self, client: aiomqtt.Client, topic: str) -> None:
        self.client, self.topic = client, topic
        self.received: list[tuple[Any, int]] = []

    async def listen(self) -> None:
        await self.client.subscribe(self.topic, qos=1)
        async for message in self.client.messages:
            if message.topic.matches(self.topic):
                assert isinstance(message.payload, bytes)
                self.received.append((json.loads(message.payload), message.qos))


async def live(home: Path, night: Generated, broker: tuple[str, int]) -> tuple[list[dict[str, Any]], Lamp]:
    parsed = [parse_line(text) for text in night.lines]
    clock = SimClock(parsed[0].ts)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = Settings(
        mqtt={"host": broker[0], "port": broker[1], "prefix": prefix, "client_id": f"tecmon-{prefix}"},
        homes=[home], api={"host": "127.0.0.1", "port": free_port()}, database_url="sqlite:///:memory:",
    )
    service = Service(settings, clock=clock)
    home_id = load_home_config(home).home
    async with aiomqtt.Client(*broker, protocol=aiomqtt.ProtocolVersion.V5) as client:
        lamp = Lamp(client, f"{prefix}/{home_id}/{LAMP}/set")
        listener = asyncio.create_task(lamp.listen())
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            await eventually(lambda: service.mqtt_state["connected"], 15, "the gateway never connected")
            for line in parsed:
                clock.set(max(clock.now(), line.ts))
                await timers_caught_up(service, clock)
                await _lamp_has_seen_every_ask(service, lamp)
                if isinstance(line.command, Acknowledge | ResolveAlert | SetCompany):
                    service.runtime.apply(home_id, line.command)
                    continue
                before = service.events_ingested
                topic = prefix + line.topic[line.topic.index("/"):]
                payload = line.payload if isinstance(line.payload, str) else json.dumps(line.payload)
                await client.publish(topic, payload, qos=1)
                await wait_ingested(service, before)
            clock.set(max(clock.now(), night.end))
            await timers_caught_up(service, clock)
            await settle(service, clock)
            await _lamp_has_seen_every_ask(service, lamp)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            listener.cancel()
    return list(service.history), lamp


async def _lamp_has_seen_every_ask(service: Service, lamp: Lamp) -> None:
    """Arthur answers after seeing the lamp blink: it must have had every ask before he moves."""
    asked = sum(1 for line in service.history if line["step"] == "asked")
    await eventually(lambda: len(lamp.received) >= asked, 15, "the lamp never received its set message")


@pytest.mark.parametrize("name", SCENARIOS)
async def test_care_scenario_ground_truth_holds_replayed_and_live(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone, name: str
) -> None:
    config = reachable_copy(ARTHUR.home_file, phone, tmp_path)
    night = generate(name, load_home_config(config), ARTHUR, seed=3)
    expected = truth(night)
    replay = replayed(config, night.lines, night.end.isoformat())
    assert keys(replay) == expected, "replayed: the ground truth"
    history, lamp = await live(config, night, mosquitto)
    assert keys(history) == expected, "live: the ground truth"
    assert history == replay
    asked = [line for line in history if line["step"] == "asked"]
    assert lamp.received == [({"state": "ON", "effect": "blink"}, 1)] * len(asked)
    if name == "ask-first-ok":
        assert len(asked) == 1 and phone.received == [], "a press in time: nobody is called"
    if name == "ask-first-no-answer":
        called = [line["contact"] for line in history if line["step"] in ("notified", "escalated")]
        assert called[:3] == ["Priya (niece)", "Tom (neighbour)", "Night responder"]
    if name.startswith("company"):
        assert {line["kind"] for line in history} <= {"help_requested", "out_of_bed_too_long"}

