"""Signing in: the OAuth2 password flow, machine tokens, the login rate limit, the metrics token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.world import PASSWORD, World, api_world


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with api_world(tmp_path, auth={"metrics_token": "prometheus-SECRET-scrape"}) as w:
        yield w


async def test_password_flow_gives_a_short_lived_bearer_token(world: World) -> None:
    reply = await world.login("sam")
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    me = await world.client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"name": "sam", "role": "carer", "homes": ["julie"], "contact": "Sam (daughter)"}


@pytest.mark.parametrize(("user", "password"), [("sam", "wrong password"), ("nobody", PASSWORD), ("sam", "")])
async def test_a_wrong_login_says_so_without_telling_which_part(world: World, user: str, password: str) -> None:
    reply = await world.login(user, password)
    assert reply.status_code in (401, 422)
    assert reply.headers["content-type"] == "application/problem+json"
    if reply.status_code == 401:
        assert reply.json()["detail"] == "That name and password do not match an account."


async def test_too_many_failures_lock_the_account_for_a_while_with_a_clear_message(world: World) -> None:
    for _ in range(5):
        assert (await world.login("sam", "wrong password")).status_code == 401
    locked = await world.login("sam")  # even the right password waits
    assert locked.status_code == 429
    assert "Try again in 15 minutes" in locked.json()["detail"]
    assert int(locked.headers["retry-after"]) > 0
    assert (await world.login("ana")).status_code == 200  # another account from the same address is fine
    world.clock.advance(timedelta(minutes=16))
    assert (await world.login("sam")).status_code == 200


async def test_many_accounts_from_one_address_are_limited_too(world: World) -> None:
    for i in range(20):
        await world.login(f"guess{i}", "wrong password")
    assert (await world.login("ana")).status_code == 429


async def test_machine_tokens_and_the_metrics_token(world: World) -> None:
    token = await world.service.accounts.new_machine_token("eve")
    assert (await world.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    scrape = {"Authorization": "Bearer prometheus-SECRET-scrape"}
    assert (await world.client.get("/metrics", headers=scrape)).status_code == 200
    assert (await world.client.get("/homes", headers=scrape)).status_code == 401  # for /metrics only
    assert (await world.client.get("/metrics", headers=world.auth("sam"))).status_code == 403
    await world.service.store.remove_user("eve")
    assert (await world.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_users_are_managed_by_an_admin_and_hashes_never_leave(world: World) -> None:
    new = {"name": "kim", "role": "carer", "homes": ["julie"], "contact": "Kim", "password": "long enough pw"}
    assert (await world.client.post("/users", json=new, headers=world.auth("ana"))).status_code == 403
    reply = await world.client.post("/users", json=new, headers=world.auth("root"))
    assert reply.status_code == 201 and "password" not in reply.json()
    assert (await world.client.post("/users", json=new, headers=world.auth("root"))).status_code == 409
    listed = (await world.client.get("/users", headers=world.auth("root"))).text
    assert "argon2" not in listed and "long enough pw" not in listed
    bad = {**new, "name": "lee", "contact": None}
    problem = (await world.client.post("/users", json=bad, headers=world.auth("root"))).json()
    assert "contact: a carer is linked" in problem["detail"]
    assert (await world.client.delete("/users/kim", headers=world.auth("root"))).status_code == 204
    assert (await world.client.delete("/users/kim", headers=world.auth("root"))).status_code == 404


async def test_readiness_says_what_is_missing(world: World) -> None:
    reply = await world.client.get("/readyz")
    assert reply.status_code == 503
    assert reply.json() == {"ready": False, "mqtt_connected": False, "store_reachable": True, "recovered": True}
    world.service.mqtt_state["connected"] = True
    assert (await world.client.get("/readyz")).status_code == 200


async def test_a_session_cookie_needs_the_csrf_token_for_changes(world: World) -> None:
    session, _ = world.service.accounts.issue(world.users["sam"], "session")
    world.client.cookies.set("tecmon_session", session)
    try:
        assert (await world.client.get("/me")).json()["name"] == "sam"  # reading needs no CSRF token
        reply = await world.client.post("/alerts/julie:x/ack", json={})
        assert reply.status_code == 403 and "did not come from tecmon" in reply.json()["detail"]
        csrf = {"X-CSRF-Token": world.service.accounts.csrf_for(session)}
        assert (await world.client.post("/alerts/julie:x/ack", json={}, headers=csrf)).status_code == 409
        wrong = {"X-CSRF-Token": world.service.accounts.csrf_for(session + "x")}
        assert (await world.client.post("/alerts/julie:x/ack", json={}, headers=wrong)).status_code == 403
    finally:
        world.client.cookies.clear()


@pytest.mark.parametrize("path", ["/healthz", "/homes", "/alerts", "/auth/token", "/nowhere"])
async def test_every_answer_carries_the_security_headers(world: World, path: str) -> None:
    reply = await world.client.get(path, headers=world.auth("root"))
    assert "default-src 'none'" in reply.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["cache-control"] == "no-store"
