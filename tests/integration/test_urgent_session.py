"""The urgent session against the real Mosquitto: every press applied once, through a lost session.

A home's button presses stream in (each with its own `seq`, so a copy is
recognisable) while another client takes over the urgent session's client id
with a clean start: the broker closes the gateway's urgent connection and
discards its session, so for a while the presses reach only the bulk session,
and then both again once the urgent session has reconnected and subscribed.
Whichever session brings a press, it is applied exactly once, and in order.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.conftest import Phone, eventually
from tests.integration.test_gateway_live import home_config, running, settings_for

pytestmark = pytest.mark.integration
PRESSES = 30  # within the urgent path's flood limit (gateway.urgent.URGENT_BURST)


async def test_each_press_is_applied_once_while_the_urgent_session_is_lost_and_back(
    tmp_path: Path, mosquitto: tuple[str, int], phone: Phone
) -> None:
    home = home_config(phone)
    home["devices"].append({"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button"})
    settings = settings_for(tmp_path, *mosquitto, "5", home)
    topic = f"{settings.mqtt.prefix}/julie/ok-button"
    async with running(settings) as service:
        await eventually(lambda: service.mqtt.router.owned(topic), 10, "the urgent session never subscribed")
        applied: list[int] = []
        original = service.runtime.ingest

        def spy(message: Any) -> int:
            if message.topic == topic:
                applied.append(json.loads(message.payload)["seq"])
            return original(message)

        service.runtime.ingest = spy  # type: ignore[method-assign]
        urgent_before = service.mqtt.pump.applied_urgent
        async with aiomqtt.Client(*mosquitto, protocol=aiomqtt.ProtocolVersion.V5) as client:
            for seq in range(PRESSES):
                if seq == PRESSES // 3:
                    await take_over(mosquitto, settings.mqtt.client_id + "-urgent")
                payload = {"action": "single", "seq": seq}
                await client.publish(topic, json.dumps(payload), qos=1)
                await asyncio.sleep(0.1)
        await eventually(lambda: len(set(applied)) == PRESSES, 20,
                         f"presses never applied: {sorted(set(range(PRESSES)) - set(applied))}")
        await asyncio.sleep(0.5)  # any late copy would have arrived by now
        assert applied == list(range(PRESSES)), "a press was applied twice or out of order"
        assert service.mqtt.router.owned(topic) and service.mqtt.urgent_connected
        assert service.mqtt.pump.applied_urgent > urgent_before
        assert service.mqtt.pump.duplicates > 0, "the bulk copies should have been recognised and dropped"


async def take_over(broker: tuple[str, int], client_id: str) -> None:
    """Connect with the urgent session's client id and a clean start, then leave: its session is gone."""
    async with aiomqtt.Client(*broker, identifier=client_id, protocol=aiomqtt.ProtocolVersion.V5,
                              clean_start=True):
        pass
