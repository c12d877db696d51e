"""Publisher, wire framing, load generation, progress and summaries, without a broker."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from simulator.load import LoadPlan, Payloads, load_home, simulated_messages
from simulator.personas import get_persona
from simulator.progress import Progress, Summary, wanted
from simulator.publisher import Pacer, messages_from_lines, parse_address, payload_bytes
from simulator.scenario_cmd import expected_path
from simulator.wire import _varint, connect_packet, publish_packet

LINES = [
    '{"ts": "2026-01-12T02:00:00+00:00", "topic": "zigbee2mqtt/h/bed", "payload": {"occupancy": false}}',
    '{"ts": "2026-01-12T02:00:05+00:00", "ack": "still_while_up", "by": "Sam"}',
    "",
    '{"ts": "2026-01-12T02:00:09+00:00", "topic": "zigbee2mqtt/h/bed/availability", "payload": "offline"}',
]


def test_lines_become_messages_and_acks_are_not_mqtt() -> None:
    messages = list(messages_from_lines(LINES, prefix="t-1"))
    assert [m.topic for m in messages] == ["t-1/h/bed", "t-1/h/bed/availability"]
    assert json.loads(messages[0].payload) == {"occupancy": False}
    assert messages[1].payload == b"offline"
    assert payload_bytes({"a": 1}) == b'{"a":1}'


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:1883") == ("127.0.0.1", 1883)
    assert parse_address("broker") == ("broker", 1883)
    with pytest.raises(ValueError):
        parse_address("broker:x")


async def test_pacer_maps_message_time_to_wall_time() -> None:
    now = [100.0]
    slept: list[float] = []
    pacer = Pacer(speed=60, clock=lambda: now[0])
    start = datetime(2026, 1, 12, tzinfo=UTC)
    original = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        await original(0)

    asyncio.sleep = fake_sleep  # type: ignore[assignment]
    try:
        await pacer.wait_for(start)
        await pacer.wait_for(start + timedelta(minutes=2))  # two minutes at 60x: two seconds
    finally:
        asyncio.sleep = original
    assert slept == [pytest.approx(2.0)]


def test_wire_framing() -> None:
    assert _varint(0) == b"\x00" and _varint(127) == b"\x7f" and _varint(128) == b"\x80\x01"
    packet = publish_packet(b"a/b", 7, b"hi")
    assert packet == b"\x32\x09\x00\x03a/b\x00\x07hi"
    assert connect_packet("c").startswith(b"\x10\x0d\x00\x04MQTT\x04\x02")


def test_load_payloads_are_the_profiles_own_shapes() -> None:
    julie = get_persona("julie").home()
    heads = dict(Payloads(julie).choices)
    assert b'"occupancy"' in heads["bed"] and b"%s" in heads["bed"]
    plan = LoadPlan(homes=50, rate=200, duration=2)
    start = datetime(2026, 1, 12, tzinfo=UTC)
    messages = list(simulated_messages(plan, julie, start))
    assert len(messages) == 400
    assert messages[-1].ts - messages[0].ts == timedelta(seconds=399 / 200)
    assert all(json.loads(m.payload) for m in messages)
    assert load_home(42, julie).home == "load-00042"


def test_load_to_file_and_homes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "load.jsonl"
    homes = tmp_path / "homes"
    assert main(["sim", "load", "--homes", "3", "--rate", "50", "--duration", "1", "--out", str(out),
                 "--write-homes", str(homes)]) == 0
    assert len(out.read_text().splitlines()) == 50
    assert main(["check-config", *map(str, sorted(homes.iterdir()))]) == 0
    assert main(["sim", "load", "--homes", "3"]) == 2


def test_progress_draws_only_when_wanted() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 2.0, 3.0])
    bar = Progress(100, "msgs", stream, enabled=True, clock=lambda: next(ticks))
    bar.update(50)
    bar.finish()
    assert "50%" in stream.getvalue() and stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    Progress(10, "msgs", quiet, enabled=False).update(5)
    assert quiet.getvalue() == "" and not wanted(False, quiet) and wanted(True, quiet)


def test_summary_and_expected_path() -> None:
    text = Summary("load", 20_000, 10_000, 2.0).text()
    assert "20,000 events" in text and "10,000 home(s)" in text and "10,000 events/s" in text
    assert expected_path("x/night.jsonl") == Path("x/night.expected.jsonl")
