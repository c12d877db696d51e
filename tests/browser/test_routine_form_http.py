"""The routine form's newer fields over plain HTTP (no JavaScript): ask first, company mode, the
bed's longest spell and each contact's morning summary are shown in words, saved as a version
through the same path as `PUT /homes/{home}`, and shown again as saved.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.api.world import PASSWORD, World, api_world, home

LIGHT = {"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"}


def julie() -> dict[str, Any]:
    data = home("julie")
    data["devices"].append(LIGHT)
    return data


async def signed_in(world: World) -> str:
    """ana's session; returns the page's CSRF token."""
    created = await world.client.post("/homes", json={"config": julie(), "why": "new home"},
                                      headers=world.auth("root"))
    assert created.status_code == 201, created.text
    reply = await world.client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert reply.status_code == 303
    page = await world.client.get("/homes/julie/page")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


def fields(html: str) -> dict[str, str]:
    """Every input's and select's value by name, as a browser would send the form unchanged."""
    out: dict[str, str] = {}
    for tag in re.finditer(r"<input\b[^>]*>", html):
        name, value = re.search(r'name="([^"]+)"', tag.group(0)), re.search(r'value="([^"]*)"', tag.group(0))
        kind = re.search(r'type="([^"]+)"', tag.group(0))
        if name is None or (kind and kind.group(1) == "checkbox" and " checked" not in tag.group(0)):
            continue
        out[name.group(1)] = value.group(1) if value else ""
    for select in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', select.group(2)) or \
            re.search(r'<option value="([^"]*)"', select.group(2))
        out[select.group(1)] = chosen.group(1) if chosen else ""
    return out


async def save(world: World, form: dict[str, str], why: str) -> httpx.Response:
    return await world.client.post("/homes/julie/page", data={**form, "action": "save", "why": why})


async def test_the_care_fields_are_labelled_in_words(tmp_path: Path) -> None:
    async with api_world(tmp_path, file_homes=()) as world:
        await signed_in(world)
        page = (await world.client.get("/homes/julie/page")).text
        for label in ("Ask first: blink a light, and call nobody if the button is pressed in time: on",
                      "The light that blinks", "Call nobody if the button is pressed within",
                      "Someone is with them: a press on the button pauses every call but a call for help: on",
                      "The press that says someone has come (and, again, that they have left)",
                      "Pause the calls for at most",
                      "Tell the service if the bed says Julie has been in it without a break for",
                      "Morning summary of the night for Sam (daughter) at"):
            assert f">{label}</label>" in page, label
        assert '<option value="bedside-light">bedside-light (bedroom)</option>' in page
        assert '<option value="double" selected>pressed twice</option>' in page
        labels = set(re.findall(r'<label for="([^"]+)"', page))
        ids = set(re.findall(r'<(?:input|select|textarea)[^>]*id="([^"]+)"', page))
        assert ids <= labels, f"every field has a label: {ids - labels}"


async def test_the_care_keys_round_trip_through_a_saved_version(tmp_path: Path) -> None:
    async with api_world(tmp_path, file_homes=()) as world:
        token = await signed_in(world)
        form = fields((await world.client.get("/homes/julie/page")).text)
        assert form["csrf_token"] == token and "use.check_with_me" not in form and "use.company" not in form
        form.update({"use.check_with_me": "on", "routine.check_with_me.within": "3m",
                     "use.company": "on", "routine.company.for": "90m", "routine.bed_occupied_max": "14h",
                     "contacts[0].morning_summary": "08:15"})
        saved = await save(world, form, "Julie wants to be asked first")
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == "/homes/julie/page?saved=2"
        version = (await world.client.get("/homes/julie/versions/2", headers=world.auth("ana"))).json()
        routine, contact = version["config"]["routine"], version["config"]["contacts"][0]
        assert routine["check_with_me"] == {"within": "3m", "device": "bedside-light"}
        assert routine["company"] == {"action": "double", "for": "1h30m"}
        assert routine["bed_occupied_max"] == "14h" and contact["morning_summary"] == "08:15"
        assert version["why"] == "Julie wants to be asked first"
        running = world.service.runtime.homes["julie"].config
        assert running.routine.check_with_me is not None and running.routine.company is not None

        again = (await world.client.get("/homes/julie/page?saved=2")).text
        shown = fields(again)
        assert shown["use.check_with_me"] == shown["use.company"] == "on"
        assert shown["routine.check_with_me.within"] == "3m" and shown["routine.company.for"] == "1h30m"
        assert shown["routine.bed_occupied_max"] == "14h" and shown["contacts[0].morning_summary"] == "08:15"
        assert "Ask Julie first" in again and "every morning at 08:15" in again

        del shown["use.company"], shown["use.check_with_me"]
        shown["contacts[0].morning_summary"] = ""
        assert (await save(world, shown, "no longer wanted")).status_code == 303
        latest = (await world.client.get("/homes/julie/versions/3", headers=world.auth("ana"))).json()["config"]
        assert latest["routine"].get("check_with_me") is None and latest["routine"].get("company") is None
        assert latest["contacts"][0].get("morning_summary") is None


async def test_an_unchanged_form_saves_an_unchanged_routine(tmp_path: Path) -> None:
    async with api_world(tmp_path, file_homes=()) as world:
        await signed_in(world)
        form = fields((await world.client.get("/homes/julie/page")).text)
        reply = await save(world, form, "checked with Julie")
        assert reply.headers["location"] == "/homes/julie/page?saved=1", \
            "nothing changed, so no new version"
        missing = await world.client.get("/homes/julie/versions/2", headers=world.auth("ana"))
        assert missing.status_code == 404


async def test_a_bad_care_value_is_named_beside_its_field(tmp_path: Path) -> None:
    async with api_world(tmp_path, file_homes=()) as world:
        await signed_in(world)
        form = fields((await world.client.get("/homes/julie/page")).text)
        form.update({"use.check_with_me": "on", "routine.check_with_me.within": "soon",
                     "routine.bed_occupied_max": "20m", "contacts[0].morning_summary": "25:00"})
        reply = await save(world, form, "trying")
        assert reply.status_code == 422
        for name, words in (("routine-check_with_me-within", "expected a duration like"),
                            ("routine-bed_occupied_max", "must be at least 1h"),
                            ("contacts-0-morning_summary", "expected a local time like 22:00")):
            error = re.search(rf'<p class="field-error" id="f-{name}-error">([^<]+)</p>', reply.text)
            assert error is not None and words in error.group(1), name
            assert f'aria-describedby="f-{name}-error' in reply.text
