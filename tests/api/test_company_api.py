"""POST /homes/{home}/company: a carer starts or ends company mode, recorded as themselves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts.events import SetCompany
from alerts.homeconfig import parse_home_config
from gateway.replay import InputLine, parse_line
from tests.api.world import T0, api_world, home, message


async def test_a_carer_starts_and_ends_company_and_it_is_recorded(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        data: dict[str, Any] = home("julie")
        data["routine"]["company"] = {"action": "double", "for": "2h"}
        world.service.runtime.set_home(parse_home_config(data, "test"))
        reply = await world.client.post("/homes/julie/company", json={"on": True}, headers=world.auth("sam"))
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"home": "julie", "company": True,
                                "until": (T0 + timedelta(hours=2)).isoformat()}
        world.clock.set(T0 + timedelta(minutes=30))
        reply = await world.client.post("/homes/julie/company", json={"on": False}, headers=world.auth("sam"))
        assert reply.json()["company"] is False
        await world.flush()
        rows = await world.service.store.inputs_since(T0 - timedelta(hours=1))
        assert [(r.kind, r.by, r.outcome, r.at) for r in rows] == [
            ("company", "Sam (daughter)", "on", T0),
            ("company", "Sam (daughter)", "off", T0 + timedelta(minutes=30)),
        ]
        assert rows[0].to_input() == SetCompany(True, "Sam (daughter)")


async def test_the_button_action_is_recorded_as_company_not_as_a_press(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        data: dict[str, Any] = home("julie")
        data["routine"]["company"] = {"action": "double", "for": "2h"}
        world.service.runtime.set_home(parse_home_config(data, "test"))
        runtime = world.service.runtime
        runtime.ingest(message("julie", "ok-button", {"action": "double"}, T0))
        runtime.ingest(message("julie", "ok-button", {"action": "double"}, T0 + timedelta(seconds=2)))
        await world.flush()
        rows = await world.service.store.inputs_since(T0 - timedelta(hours=1))
        assert [(r.kind, r.by, r.outcome) for r in rows] == [("company", "Julie", "on")]
        assert runtime.open_alerts() == [], "the company action is not a call for help"


async def test_a_home_without_company_mode_refuses(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        reply = await world.client.post("/homes/julie/company", json={"on": True}, headers=world.auth("sam"))
        assert reply.status_code == 409 and "routine.company" in reply.json()["detail"]


def test_replay_reads_company_lines() -> None:
    line: InputLine = parse_line('{"ts": "2026-01-12T23:00:00+00:00", "company": true, "by": "Sam"}')
    assert line.command is not None and line.command.on is True  # type: ignore[union-attr]
