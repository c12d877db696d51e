"""Page routes answer errors as pages (the API keeps problem+json), a night still to come has no
link to it, and the inbox lists the alerts closed lately with how each ended.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from tests.api.world import PASSWORD, World, api_world, raise_out_of_bed

NIGHT = "/homes/{home}/nights/{day}/page"  # T0 is 2026-01-12 23:00 UTC: the night of the 12th is on


async def signed_in(world: World, user: str = "sam") -> None:
    reply = await world.client.post("/login", data={"username": user, "password": PASSWORD})
    assert reply.status_code == 303


def text(body: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", body))


async def test_a_home_out_of_scope_and_a_bad_date_are_pages(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        await signed_in(world)
        for path, status, said in (
            (NIGHT.format(home="arthur", day="2026-01-12"), 404, "There is no such home, or it is not one of yours."),
            (NIGHT.format(home="nobody", day="2026-01-12"), 404, "There is no such home, or it is not one of yours."),
            (NIGHT.format(home="julie", day="2026-13-45"), 422, "date: expected a date like 2026-01-12 (YYYY-MM-DD)"),
            ("/homes/julie/page", 403, "A carer cannot use GET /homes/{home}/page."),
        ):
            page = await world.client.get(path)
            assert page.status_code == status, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert page.headers["content-security-policy"].startswith("default-src 'none'")
            body = text(page.text)
            assert said in body and '<a href="/inbox">Back to your start page</a>' in body, path
            assert '<nav class="site-nav"' in body, "still signed in: the usual navigation"


async def test_the_api_keeps_problem_json_and_a_signed_out_visitor_still_goes_to_sign_in(
    tmp_path: Path,
) -> None:
    async with api_world(tmp_path) as world:
        api = await world.client.get("/homes/julie/nights/2026-13-45", headers=world.auth("sam"))
        assert api.status_code == 422 and api.headers["content-type"] == "application/problem+json"
        assert api.json()["errors"][0]["field"] == "date"
        outside = await world.client.get("/homes/arthur/nights/2026-01-12", headers=world.auth("sam"))
        assert outside.status_code == 404 and outside.headers["content-type"] == "application/problem+json"
        page = await world.client.get(NIGHT.format(home="julie", day="2026-01-12"))
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")


async def test_no_link_to_a_night_that_has_not_happened(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        await signed_in(world)
        tonight = (await world.client.get(NIGHT.format(home="julie", day="2026-01-12"))).text
        assert "Night after" not in tonight and "Night before" in tonight
        last = (await world.client.get(NIGHT.format(home="julie", day="2026-01-11"))).text
        assert 'href="/homes/julie/nights/2026-01-12/page" rel="next">Night after' in last


async def test_the_inbox_lists_closed_alerts_and_how_they_ended(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        world.service.dispatcher._spawn = lambda coro: coro.close()  # type: ignore[method-assign]
        alert = await raise_out_of_bed(world)
        closed = await world.client.post(f"/alerts/{alert}/resolve", headers=world.auth("sam"),
                                         json={"outcome": "false_alarm", "note": "making tea"})
        assert closed.status_code == 200
        await world.flush()
        await signed_in(world)
        inbox = text((await world.client.get("/inbox")).text)
        assert "No open alerts for your homes" in inbox
        assert '<h2 id="closed-title">Closed recently</h2>' in inbox
        assert ("<strong>Julie: out of bed too long</strong>, raised 23:46: "
                "Resolved by Sam (daughter): false alarm: making tea (23:50)") in inbox
