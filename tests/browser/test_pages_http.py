"""The pages' HTTP contract, in process (no browser): headers, the login rate limit, sign-out, CSRF."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.access import SESSION_COOKIE
from tests.api.world import PASSWORD, api_world, raise_out_of_bed

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


async def test_sign_in_sets_a_strict_cookie_and_pages_carry_the_security_headers(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        await raise_out_of_bed(world)
        reply = await world.client.post("/login", data={"username": "sam", "password": PASSWORD,
                                                        "next": "https://evil.example/"})
        assert reply.status_code == 303 and reply.headers["location"] == "/inbox"  # never off-site
        cookie = reply.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        page = await world.client.get("/inbox")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert 'style="' not in page.text and "<script>" not in page.text

        alert = re.search(r'action="(/inbox/[^"]+/ack)"', page.text)
        assert alert is not None
        refused = await world.client.post(alert.group(1), data={})  # no CSRF token: another site's form
        assert refused.status_code == 403
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        done = await world.client.post(alert.group(1), data={"csrf_token": token.group(1)})
        assert done.status_code == 303 and done.headers["location"] == "/inbox?done=ack"

        out = await world.client.post("/logout", data={"csrf_token": token.group(1)})
        assert out.status_code == 303 and out.headers["location"] == "/login?signed_out=1"
        assert SESSION_COOKIE not in world.client.cookies
        assert (await world.client.get("/inbox")).status_code == 303


async def test_secure_cookies_follow_an_https_public_url(tmp_path: Path) -> None:
    async with api_world(tmp_path, public_url="https://tecmon.example.org") as world:
        reply = await world.client.post("/login", data={"username": "sam", "password": PASSWORD})
        assert "Secure" in reply.headers["set-cookie"]


async def test_too_many_failed_sign_ins_say_how_long_to_wait(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        for _ in range(5):
            wrong = await world.client.post("/login", data={"username": "sam", "password": "wrong"})
            assert wrong.status_code == 400
            assert "That name and password do not match an account." in wrong.text
        limited = await world.client.post("/login", data={"username": "sam", "password": PASSWORD})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "Too many failed attempts. Try again in 15 minutes." in limited.text
