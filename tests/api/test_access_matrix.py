"""Role x route x home, generated from the app's own route table.

Every route must have an access rule and an expectation here: a new route
without both fails this test. Nobody reaches anything without credentials
except the public list of the contract, and no role reads or writes a home
outside its scope (the answer is 404, as for a home that does not exist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.access import RULES, api_routes
from tests.api.world import USERS, World, api_world, raise_out_of_bed

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/auth/token"), ("GET", "/ack/{token}"),
          ("POST", "/ack/{token}"), ("POST", "/ack/{token}/resolve"), ("GET", "/login"), ("POST", "/login")}
"""The contract's list: everything else answers 401 without credentials."""

A, C, K, E = "admin", "coordinator", "carer", "engineer"
EXPECTED: dict[tuple[str, str], set[str]] = {
    # who may use each route, read as a coordinator would: carers act on alerts of their homes,
    # coordinators edit their caseload's homes, engineers see devices and never a routine or an alert.
    ("GET", "/openapi.json"): {A, C, K, E},
    ("GET", "/me"): {A, C, K, E},
    ("GET", "/metrics"): {A, E},
    ("GET", "/users"): {A},
    ("POST", "/users"): {A},
    ("DELETE", "/users/{name}"): {A},
    ("GET", "/homes"): {A, C, K, E},
    ("POST", "/homes"): {A, C},
    ("GET", "/homes/{home}"): {A, C, K},
    ("PUT", "/homes/{home}"): {A, C},
    ("DELETE", "/homes/{home}"): {A, C},
    ("GET", "/homes/{home}/versions"): {A, C},
    ("GET", "/homes/{home}/versions/{n}"): {A, C},
    ("GET", "/homes/{home}/versions/{n}/diff"): {A, C},
    ("POST", "/homes/{home}/versions/{n}/restore"): {A, C},
    ("POST", "/homes/{home}/preview"): {A, C},
    ("POST", "/homes/{home}/company"): {A, C, K},
    ("GET", "/homes/{home}/nights/{date}"): {A, C, K},
    ("GET", "/homes/{home}/summary"): {A, C, K},
    ("GET", "/alerts"): {A, C, K},
    ("GET", "/alerts/history"): {A, C, K},
    ("GET", "/alerts/{alert_id}"): {A, C, K},
    ("POST", "/alerts/{alert_id}/ack"): {A, C, K},
    ("POST", "/alerts/{alert_id}/resolve"): {A, C, K},
    ("GET", "/devices"): {A, C, E},
    ("GET", "/dead-letters"): {A, E},
    # web pages: the same people as the API routes they show
    ("POST", "/logout"): {A, C, K, E},
    ("GET", "/"): {A, C, K, E},
    ("GET", "/inbox"): {A, C, K},
    ("POST", "/inbox/{alert_id}/ack"): {A, C, K},
    ("POST", "/inbox/{alert_id}/resolve"): {A, C, K},
    ("GET", "/events/alerts"): {A, C, K},
    ("GET", "/caseload"): {A, C, K},
    ("GET", "/homes/{home}/page"): {A, C},
    ("POST", "/homes/{home}/page"): {A, C},
    ("POST", "/homes/{home}/page/preview"): {A, C},
    ("GET", "/homes/{home}/page/versions/{n}"): {A, C},
    ("POST", "/homes/{home}/page/versions/{n}/restore"): {A, C},
    ("GET", "/homes/{home}/nights/{date}/page"): {A, C, K},
    ("GET", "/devices/page"): {A, C, E},
}


def app_routes(world: World) -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in api_routes(world.service.app.routes)
                  for method in route.methods)


def fill(path: str, home: str, alert: str) -> str:
    return (path.replace("{home}", home).replace("{alert_id}", alert).replace("{n}", "1")
            .replace("{date}", "2026-01-12").replace("{token}", "not-a-token").replace("{name}", "nobody"))


async def call(world: World, method: str, path: str, headers: dict[str, str]) -> Any:
    body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
    return await world.client.request(method, path, headers=headers, json=body,
                                      params={"why": "test"} if method == "DELETE" else None)


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with api_world(tmp_path) as w:
        w.alerts = {home: await raise_out_of_bed(w, home) for home in ("julie", "arthur")}  # type: ignore[attr-defined]
        yield w


async def test_every_route_has_an_access_rule_and_an_expectation(world: World) -> None:
    routes = set(app_routes(world))
    assert routes - set(RULES) == set(), "a route without an access rule in gateway/access.py"
    assert set(RULES) - routes == set(), "an access rule for a route that does not exist"
    assert routes - PUBLIC - set(EXPECTED) == set(), "a route without an expectation in this test"


async def test_without_credentials_only_the_public_routes_answer(world: World) -> None:
    for method, path in app_routes(world):
        reply = await call(world, method, fill(path, "julie", world.alerts["julie"]), {})  # type: ignore[attr-defined]
        if (method, path) in PUBLIC:
            assert reply.status_code != 401, (method, path)
        elif RULES[(method, path)].page:  # a page sends the signed-out to the login page instead
            assert reply.status_code == 303, (method, path, reply.status_code)
            assert reply.headers["location"].startswith("/login?next="), (method, path)
        else:
            assert reply.status_code == 401, (method, path, reply.status_code)
            assert reply.headers["content-type"] == "application/problem+json"
            assert reply.headers.get("www-authenticate") == "Bearer"


async def test_a_forged_or_expired_token_is_no_credential(world: World) -> None:
    for token in ("garbage", world.token("root")[:-2] + "xx", "tmk_abc_def"):
        reply = await world.client.get("/homes", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401
    stale = world.auth("root")
    world.clock.set(world.clock.now().replace(year=2027))
    assert (await world.client.get("/homes", headers=stale)).status_code == 401


@pytest.mark.parametrize("user", sorted(USERS))
async def test_each_role_reaches_only_its_routes_and_only_its_homes(world: World, user: str) -> None:
    role, homes, _ = USERS[user]
    alerts: dict[str, str] = world.alerts  # type: ignore[attr-defined]
    for method, path in app_routes(world):
        if (method, path) in PUBLIC:
            continue
        allowed = role in EXPECTED[(method, path)]
        for home in ("julie", "arthur"):
            in_scope = not homes or home in homes
            reply = await call(world, method, fill(path, home, alerts[home]), world.auth(user))
            where = (user, method, path, home, reply.status_code, reply.text[:200])
            scoped = "{home}" in path or "{alert_id}" in path
            if scoped and not in_scope:
                assert reply.status_code == 404, where
            elif not allowed:
                assert reply.status_code == 403, where
            else:
                assert reply.status_code not in (401, 403), where
                assert reply.status_code < 500, where
        assert world.service.runtime.homes.keys() >= {"julie", "arthur"}, "a home was deleted across scope"


async def test_lists_show_only_the_callers_homes(world: World) -> None:
    for user, (_, homes, _) in USERS.items():
        listed = {h["home"] for h in (await world.client.get("/homes", headers=world.auth(user))).json()["items"]}
        assert listed == (set(homes) or {"julie", "arthur"}), user
        if USERS[user][0] in (A, C, K):
            alerts = (await world.client.get("/alerts", headers=world.auth(user))).json()["items"]
            assert {a["home"] for a in alerts} == (set(homes) or {"julie", "arthur"}), user
            history = (await world.client.get("/alerts/history", headers=world.auth(user))).json()
            assert {line["home"] for line in history} <= (set(homes) or {"julie", "arthur"}), user
