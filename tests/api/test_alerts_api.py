"""Alerts through the API: the open ones, the record, one alert with every step; ack and resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.world import World, api_world, raise_out_of_bed

SECRET = "phone-SECRET-TOKEN"


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with api_world(tmp_path) as w:
        yield w


async def test_ack_is_recorded_as_the_signed_in_carer_and_stops_escalation(world: World) -> None:
    alert = await raise_out_of_bed(world)
    listed = (await world.client.get("/alerts", headers=world.auth("sam"))).json()["items"]
    assert [a["alert"] for a in listed] == [alert] and listed[0]["state"] == "open"
    assert listed[0]["notified"] == ["Sam (daughter)"]
    reply = await world.client.post(f"/alerts/{alert}/ack", json={}, headers=world.auth("sam"))
    assert reply.status_code == 200 and reply.json()["steps"] == ["acknowledged"]
    await world.flush()
    detail = (await world.client.get(f"/alerts/{alert}", headers=world.auth("sam"))).json()
    assert detail["state"] == "acknowledged" and detail["acknowledged_by"] == "Sam (daughter)"
    assert [s["step"] for s in detail["steps"]] == ["raised", "notified", "acknowledged"]


async def test_a_name_in_the_body_is_refused_not_recorded(world: World) -> None:
    alert = await raise_out_of_bed(world)
    reply = await world.client.post(f"/alerts/{alert}/ack", json={"by": "Somebody else"},
                                    headers=world.auth("sam"))
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "by"


@pytest.mark.parametrize(("outcome", "note", "recorded"), [
    ("false_alarm", "making tea", "false alarm: making tea"),
    ("needed_help", "", "needed help"),
    ("no_action_needed", "back in bed", "no action needed: back in bed"),
    ("other", "the cat", "other: the cat"),
])
async def test_resolve_with_an_outcome_and_a_note(world: World, outcome: str, note: str, recorded: str) -> None:
    alert = await raise_out_of_bed(world)
    reply = await world.client.post(f"/alerts/{alert}/resolve", json={"outcome": outcome, "note": note},
                                    headers=world.auth("sam"))
    assert reply.status_code == 200 and "resolved" in reply.json()["steps"]
    await world.flush()
    record = (await world.client.get("/alerts", params={"state": "all"}, headers=world.auth("ana"))).json()
    assert record["items"][0]["state"] == "resolved"
    detail = (await world.client.get(f"/alerts/{alert}", headers=world.auth("ana"))).json()
    assert detail["steps"][-1]["contact"] == "Sam (daughter)"
    assert recorded in detail["steps"][-1]["reason"]
    again = await world.client.post(f"/alerts/{alert}/ack", json={}, headers=world.auth("sam"))
    assert again.status_code == 409


async def test_a_bad_outcome_names_the_field(world: World) -> None:
    alert = await raise_out_of_bed(world)
    reply = await world.client.post(f"/alerts/{alert}/resolve", json={"outcome": "fine"}, headers=world.auth("sam"))
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "outcome"


async def test_the_record_filters_and_pages_with_a_cursor(world: World) -> None:
    ids = []
    for _ in range(3):
        alert = await raise_out_of_bed(world)
        await world.client.post(f"/alerts/{alert}/resolve", json={"outcome": "false_alarm"},
                                headers=world.auth("sam"))
        await world.flush()
        ids.append(alert)
    first = (await world.client.get("/alerts", params={"state": "all", "limit": 2},
                                    headers=world.auth("ana"))).json()
    assert [a["alert"] for a in first["items"]] == ids[::-1][:2]
    rest = (await world.client.get("/alerts", params={"state": "all", "limit": 2, "cursor": first["next_cursor"]},
                                   headers=world.auth("ana"))).json()
    assert [a["alert"] for a in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    by_kind = (await world.client.get("/alerts", params={"state": "all", "kind": "help_requested"},
                                      headers=world.auth("ana"))).json()
    assert by_kind["items"] == []
    assert (await world.client.get("/alerts", params={"cursor": "nonsense"},
                                   headers=world.auth("ana"))).status_code == 422


async def test_attempts_are_listed_redacted(world: World) -> None:
    alert = await raise_out_of_bed(world)
    await world.service.dispatcher.drain(timeout=5)
    await world.flush()
    detail = (await world.client.get(f"/alerts/{alert}", headers=world.auth("sam"))).json()
    assert detail["attempts"] and detail["attempts"][0]["target"] == "json://127.0.0.1:9/…"
    assert SECRET not in str(detail)
