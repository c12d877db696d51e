"""Homes through the API: one source of truth each, every change a version, URLs write-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.world import SECRET_URL, World, api_world, home

SECRET = "phone-SECRET-TOKEN"


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with api_world(tmp_path) as w:
        yield w


async def create(world: World, data: dict[str, Any], user: str = "ana", why: str = "set up with Maya") -> Any:
    return await world.client.post("/homes", json={"config": data, "why": why}, headers=world.auth(user))


async def test_a_coordinator_creates_a_home_that_runs_at_once_and_joins_their_caseload(world: World) -> None:
    reply = await create(world, home("maya"))
    assert reply.status_code == 201, reply.text
    assert reply.json()["version"] == 1
    assert "maya" in world.service.runtime.homes
    detail = (await world.client.get("/homes/maya", headers=world.auth("ana"))).json()
    assert detail["source"] == "database" and detail["editable"] is True
    assert SECRET not in str(detail) and detail["config"]["contacts"][0]["notify"] == ["json://127.0.0.1:9/…"]
    assert (await world.client.get("/homes/maya", headers=world.auth("olga"))).status_code == 404


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"routine": {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "45"}}},
     "routine.out_of_bed.alert_after", "expected a duration like 45m, 90s or 1h30m, got '45'"),
    ({"timezone": "Mars/Olympus"}, "timezone", "unknown IANA time zone 'Mars/Olympus' (e.g. Europe/London)"),
    ({"devices": [{"id": "bed", "profile": "nope", "kind": "bed"}]}, "devices[0].profile", "unknown profile"),
    ({"colour": "blue"}, "colour", "unknown key"),
])
async def test_validation_names_the_field_like_check_config(world: World, change: dict[str, Any], field: str,
                                                            message: str) -> None:
    reply = await create(world, {**home("maya"), **change})
    assert reply.status_code == 422
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["status"] == 422 and problem["title"]
    assert any(e["field"] == field and e["message"].startswith(message) for e in problem["errors"]), problem


async def test_a_file_home_is_read_only_and_no_home_has_two_sources(world: World) -> None:
    reply = await world.client.put("/homes/julie", json={"config": home("julie"), "why": "x"},
                                   headers=world.auth("ana"))
    assert reply.status_code == 409 and "julie.yaml" in reply.json()["detail"]
    assert (await create(world, home("julie"), user="root")).status_code == 409


async def test_every_change_is_a_version_with_who_when_why_a_diff_and_restore(world: World) -> None:
    await create(world, home("maya"))
    changed = home("maya")
    changed["routine"]["out_of_bed"] = {"alert_after": "1h"}
    changed["contacts"][0]["notify"] = ["json://127.0.0.1:9/…"]  # the redacted URL sent back keeps the real one
    reply = await world.client.put("/homes/maya", json={"config": changed, "why": "Maya makes tea"},
                                   headers=world.auth("ana"))
    assert reply.status_code == 200 and reply.json()["version"] == 2
    runtime_cfg = world.service.runtime.homes["maya"].config
    assert runtime_cfg.contacts[0].notify == [SECRET_URL]
    assert runtime_cfg.routine.out_of_bed is not None and runtime_cfg.routine.out_of_bed.alert_after.seconds == 3600
    versions = (await world.client.get("/homes/maya/versions", headers=world.auth("ana"))).json()
    assert [(v["version"], v["saved_by"], v["why"]) for v in versions] == [
        (1, "ana", "set up with Maya"), (2, "ana", "Maya makes tea")]
    diff = (await world.client.get("/homes/maya/versions/2/diff", headers=world.auth("ana"))).json()
    assert diff["changes"] == [{"field": "routine.out_of_bed.alert_after", "before": "45m", "after": "1h"}]
    restored = await world.client.post("/homes/maya/versions/1/restore", json={"why": "woke Sam"},
                                       headers=world.auth("ana"))
    assert restored.status_code == 200 and restored.json()["version"] == 3
    again = (await world.client.get("/homes/maya/versions/3", headers=world.auth("ana"))).json()
    assert again["why"] == "restored version 1: woke Sam" and again["config"]["routine"]["out_of_bed"] == {
        "alert_after": "45m"}
    assert SECRET not in str(versions) + str(diff) + str(again)


async def test_a_deleted_home_stops_and_its_history_stays(world: World) -> None:
    await create(world, home("maya"))
    reply = await world.client.delete("/homes/maya", params={"why": "moved to a care home"},
                                      headers=world.auth("ana"))
    assert reply.status_code == 200 and reply.json()["version"] == 2
    assert "maya" not in world.service.runtime.homes
    versions = (await world.client.get("/homes/maya/versions", headers=world.auth("ana"))).json()
    assert versions[-1]["deleted"] is True


async def test_database_homes_come_back_after_a_restart_and_refuse_a_file_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    async with api_world(tmp_path / "one") as world:
        await create(world, home("maya"))
    first = tmp_path / "one"
    (first / "homes" / "maya.yaml").write_text(yaml.safe_dump(home("maya", contact="Someone else")))
    from gateway.clock import SimClock
    from gateway.service import Service
    from gateway.settings import Settings

    service = Service(Settings(database_url=f"sqlite:///{first / 'tecmon.db'}", homes=[first / "homes"]),
                      clock=SimClock(world.clock.now()))
    await service.store.open()
    await service._load_from_store()
    service.apply_removed(*service.watcher.scan(lambda cfg: service.apply_home(cfg, starting=True)))
    try:
        assert service.runtime.homes["maya"].config.contacts[0].name == "Sam (daughter)"
        assert service.home_admin.source("maya") == "database"
    finally:
        await service.store.close()


async def test_homes_list_paginates(world: World) -> None:
    for name in ("ada", "bea", "cy"):
        await create(world, home(name), user="root")
    first = (await world.client.get("/homes", params={"limit": 2}, headers=world.auth("root"))).json()
    assert [h["home"] for h in first["items"]] == ["ada", "arthur"]
    rest = (await world.client.get("/homes", params={"limit": 10, "cursor": first["next_cursor"]},
                                   headers=world.auth("root"))).json()
    assert [h["home"] for h in rest["items"]] == ["bea", "cy", "julie"] and rest["next_cursor"] is None
    engineer = (await world.client.get("/homes", headers=world.auth("eve"))).json()
    assert all(h["person"] is None for h in engineer["items"])
