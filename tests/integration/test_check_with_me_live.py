"""Ask the person first, live: the real Mosquitto carries the `set` message to the light.

The window is long (5 minutes) and the test waits for what happens, not for
a time: the press always lands inside the window, so nobody may be called.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.conftest import Phone, eventually
from tests.integration.test_gateway_live import home_config, publish, running, settings_for

pytestmark = pytest.mark.integration


def asking_home(phone: Phone) -> dict[str, Any]:
    home = home_config(phone, check_with_me={"within": "5m", "device": "bedside-light"})
    home["devices"] += [
        {"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button", "room": "bedroom"},
        {"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"},
    ]
    return home


async def test_the_light_is_asked_and_a_press_in_time_calls_nobody(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone
) -> None:
    settings = settings_for(tmp_path, *mosquitto, "5", asking_home(phone))
    topic = f"{settings.mqtt.prefix}/julie/bedside-light/set"
    received: list[tuple[str, Any, int]] = []
    async with aiomqtt.Client(*mosquitto, protocol=aiomqtt.ProtocolVersion.V5) as light:
        await light.subscribe(topic, qos=1)

        async def listen() -> None:
            async for message in light.messages:
                assert isinstance(message.payload, bytes)
                received.append((message.topic.value, json.loads(message.payload), message.qos))

        listener = asyncio.create_task(listen())
        try:
            async with running(settings) as service:
                await publish(settings, "bedside-light", {"state": "OFF", "brightness": 40})
                await publish(settings, "bed", {"occupancy": True})
                await publish(settings, "bed", {"occupancy": False})
                await eventually(lambda: received, 15, "the light was never asked")
                assert received == [(topic, {"state": "ON", "effect": "blink"}, 1)]
                await publish(settings, "ok-button", {"action": "single"})
                await eventually(
                    lambda: any(line["step"] == "resolved" for line in service.history), 15,
                    "the press did not close the alert",
                )
                steps = [(line["step"], line["contact"]) for line in service.history]
                assert steps == [("raised", None), ("asked", None), ("resolved", "Julie")]
                assert not service.runtime.dead_letters, "the light's own state is not a dead letter"
        finally:
            listener.cancel()
    assert phone.received == [], "nobody may be called"
