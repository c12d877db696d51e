"""The carer's pages show the care features in words, read through the page HTML (no browser):
the inbox says the person was asked first and until when nobody is called, the night timeline
lists the ask and the person's "I'm OK", and when someone was with them (company mode).
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts.events import SetCompany
from alerts.homeconfig import parse_home_config
from tests.api.test_nights import no_calls
from tests.api.world import PASSWORD, T0, World, api_world, home, message

NIGHT = "/homes/julie/nights/2026-01-12/page"  # T0 is 23:00 on the 12th, Julie's night 22:00-07:30


def caring_home() -> Any:
    data: dict[str, Any] = home("julie")
    data["devices"].append({"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"})
    data["routine"]["check_with_me"] = {"within": "2m", "device": "bedside-light"}
    data["routine"]["company"] = {"action": "double", "for": "2h"}
    return parse_home_config(data, "test")


async def as_sam(world: World, path: str) -> str:
    if "tecmon_session" not in str(world.client.cookies):
        assert (await world.client.post("/login", data={"username": "sam", "password": PASSWORD})).status_code == 303
    page = await world.client.get(path)
    assert page.status_code == 200, page.text
    return html.unescape(re.sub(r"\s+", " ", page.text))


async def at(world: World, minutes: float, *messages: tuple[str, dict[str, Any]]) -> None:
    when = T0 + timedelta(minutes=minutes)
    world.clock.set(when)
    world.service.runtime.fire_due()
    for device, payload in messages:
        world.service.runtime.ingest(message("julie", device, payload, when))
    await world.flush()


async def test_asked_first_in_the_inbox_then_im_ok_in_the_night(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        no_calls(world)
        world.service.runtime.set_home(caring_home())
        await at(world, 0, ("bed", {"occupancy": True}))
        await at(world, 5, ("bed", {"occupancy": False}))
        await at(world, 50)  # 23:50: out of bed 45 minutes: raised, and Julie is asked first
        inbox = await as_sam(world, "/inbox")
        assert '<h2 id="alert-1-title">Julie: ' in inbox
        assert "Asked first</dt><dd class=\"asked\">Asked Julie if all is OK (light blinked) at 23:50; " \
               "nobody is called unless Julie has not pressed the button by 23:52" in inbox
        assert "nobody yet" in inbox, "nobody has been called"

        await at(world, 51, ("ok-button", {"action": "single"}))  # 23:51: "I'm OK"
        assert world.service.runtime.open_alerts() == []
        night = await as_sam(world, NIGHT)
        assert "Asked Julie if all is OK (light blinked) at 23:50; Julie pressed: I'm OK at 23:51" in night


async def test_not_answered_in_time_the_night_says_who_was_called(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        no_calls(world)
        world.service.runtime.set_home(caring_home())
        await at(world, 0, ("bed", {"occupancy": True}))
        await at(world, 5, ("bed", {"occupancy": False}))
        await at(world, 50)
        await at(world, 53)  # 23:52 has passed: Sam is called
        inbox = await as_sam(world, "/inbox")
        assert "Asked Julie if all is OK (light blinked) at 23:50</dd>" in inbox, "no 'nobody is called' now"
        await at(world, 55, ("bed", {"occupancy": True}))
        night = await as_sam(world, NIGHT)
        assert ("Asked Julie if all is OK (light blinked) at 23:50; Sam (daughter) called at 23:52; "
                "over: the reason for it has ended at 23:55") in night


async def test_company_start_and_end_are_on_the_night_timeline(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        no_calls(world)
        world.service.runtime.set_home(caring_home())
        await at(world, 10, ("ok-button", {"action": "double"}))  # 23:10 Julie: someone is here
        assert "Someone is with Julie until Tue 13 Jan 01:10" in await as_sam(world, "/inbox")
        await at(world, 70)
        world.service.runtime.apply("julie", SetCompany(False, "Sam (daughter)"))  # 00:10 Sam leaves
        await world.flush()
        await at(world, 80)
        world.service.runtime.apply("julie", SetCompany(True, "Sam (daughter)"))  # 00:20 back, for 2 hours
        await world.flush()
        inbox = await as_sam(world, "/inbox")
        assert '<li class="notice">Someone is with Julie until 02:20 (company mode): only a call for help ' \
               "is passed on.</li>" in inbox
        night = await as_sam(world, NIGHT)
        assert "someone with Julie (company, started by Julie) until 00:10: ended by Sam (daughter)" in night
        assert "someone with Julie (company, started by Sam (daughter)) until 02:20: its time ran out" in night
        assert night.count('class="company"') == 2 and "Someone with Julie</li>" in night
