"""`GET /homes/{home}/nights/{date}`: one night of Julie's, lived through the runtime, as a chart.

The night below is ingested message by message at its own instants (the
simulated clock moved to each), carers act through the API, and the chart is
then read back from the store. Julie's night is 22:00-07:30, Europe/London
(UTC in January).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.mqtt import Inbound
from tests.api.world import World, api_world, message


def at(text: str) -> datetime:
    """"01-13 02:45" -> that UTC instant in January 2026."""
    return datetime.fromisoformat(f"2026-{text}:00").replace(tzinfo=UTC)


def z(text: str) -> str:
    return at(text).isoformat()


# (when, device, payload); "availability" payloads go to <device>/availability.
NIGHT: list[tuple[str, str, Any]] = [
    ("01-12 23:05", "bed", {"occupancy": True}),
    ("01-13 00:30", "bed", {"occupancy": False}),
    ("01-13 00:31", "hall-motion", {"occupancy": True}),
    ("01-13 00:33", "hall-motion", {"occupancy": False}),
    ("01-13 00:50", "bed", {"occupancy": True}),
    ("01-13 00:50", "bed", {"occupancy": True}),  # a redelivery: changes nothing
    ("01-13 02:00", "bed", {"occupancy": False}),
    # 02:45 out_of_bed_too_long raised and Sam called; Sam acknowledges at 02:48 (ACTS)
    ("01-13 02:55", "bed", {"occupancy": True}),  # resolved: back in bed
    ("01-13 03:30", "front-door", {"contact": False}),
    ("01-13 03:31", "front-door", {"contact": True}),
    ("01-13 04:00", "ok-button", {"action": "single"}),  # help_requested; Sam resolves at 04:03
    ("01-13 05:00", "bed", "offline"),  # device_offline at 05:10, cleared at 05:20
    ("01-13 05:20", "bed", "online"),
    ("01-13 07:00", "bed", {"occupancy": False}),
    ("01-13 07:40", "hall-motion", {"occupancy": True}),  # after the night's window
]
ACTS = [("01-13 02:48", "ack", {}), ("01-13 04:03", "resolve", {"outcome": "false_alarm", "note": "pressed by mistake"})]


async def live_night(world: World, night: list[tuple[str, str, Any]] = NIGHT,
                     acts: list[tuple[str, str, dict[str, Any]]] = ACTS, home: str = "julie") -> None:
    """Every message at its instant through `Runtime.ingest`; carers' acts through the API."""
    runtime = world.service.runtime
    timeline = sorted([(at(t), 0, d, p) for t, d, p in night] + [(at(t), 1, kind, body) for t, kind, body in acts],
                      key=lambda item: (item[0], item[1]))
    for when, is_act, what, body in timeline:
        world.clock.set(when)
        runtime.fire_due()
        await world.flush()
        if is_act:
            alert = next(a["alert"] for a in runtime.open_alerts() if a["home"] == home)
            answer = await world.client.post(f"/alerts/{alert}/{what}", json=body, headers=world.auth("sam"))
            assert answer.status_code == 200, answer.text
        elif isinstance(body, str):
            runtime.ingest(Inbound(f"zigbee2mqtt/{home}/{what}/availability", body.encode(), when, 1))
        else:
            runtime.ingest(message(home, what, body, when))
    world.clock.set(world.clock.now() + timedelta(hours=1))
    runtime.fire_due()
    await world.flush()


def no_calls(world: World) -> None:
    """Steps are recorded but nobody is called: a failed call would escalate at a real-time moment."""
    world.service.dispatcher._spawn = lambda coro: coro.close()  # type: ignore[method-assign]


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with api_world(tmp_path) as w:
        no_calls(w)
        await live_night(w)
        yield w


def spans(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(i["device"], i["from"], i["to"]) for i in items]


async def test_the_night_is_charted_from_the_stored_events(world: World) -> None:
    answer = await world.client.get("/homes/julie/nights/2026-01-12", headers=world.auth("ana"))
    assert answer.status_code == 200, answer.text
    chart = answer.json()
    assert chart["window"] == {"from": z("01-12 22:00"), "to": z("01-13 07:30")}
    assert (chart["date"], chart["timezone"]) == ("2026-01-12", "Europe/London")
    assert spans(chart["in_bed"]) == [
        ("bed", z("01-12 23:05"), z("01-13 00:30")),
        ("bed", z("01-13 00:50"), z("01-13 02:00")),
        ("bed", z("01-13 02:55"), z("01-13 07:00")),
    ]
    assert chart["in_bed"][0]["minutes"] == 85.0
    assert [(*s, d["exit"]) for s, d in zip(spans(chart["doors"]), chart["doors"], strict=True)] == [
        ("front-door", z("01-13 03:30"), z("01-13 03:31"), True)]
    assert chart["motion"] == [{"device": "hall-motion", "at": z("01-13 00:31")}]
    assert chart["buttons"] == [{"device": "ok-button", "at": z("01-13 04:00")}]
    assert spans(chart["offline"]) == [("bed", z("01-13 05:00"), z("01-13 05:20"))]


ALERTS = [  # kind, raised, [(step, at, contact)]
    ("out_of_bed_too_long", "01-13 02:45", [("raised", "01-13 02:45", None), ("notified", "01-13 02:45", "Sam (daughter)"),
                                            ("acknowledged", "01-13 02:48", "Sam (daughter)"), ("resolved", "01-13 02:55", None)]),
    ("help_requested", "01-13 04:00", [("raised", "01-13 04:00", None), ("notified", "01-13 04:00", "Sam (daughter)"),
                                       ("resolved", "01-13 04:03", "Sam (daughter)")]),
    ("device_offline", "01-13 05:10", [("raised", "01-13 05:10", None), ("resolved", "01-13 05:20", None)]),
]


async def test_the_alerts_of_the_night_come_with_every_recorded_step(world: World) -> None:
    chart = (await world.client.get("/homes/julie/nights/2026-01-12", headers=world.auth("sam"))).json()
    got = [(a["kind"], a["raised_at"], [(s["step"], s["at"], s["contact"]) for s in a["steps"]]) for a in chart["alerts"]]
    assert got == [(k, z(r), [(s, z(t), c) for s, t, c in steps]) for k, r, steps in ALERTS]
    assert chart["alerts"][1]["steps"][-1]["reason"] == "Resolved by Sam (daughter): false alarm: pressed by mistake"


async def test_a_night_with_nothing_stored_is_empty_not_missing(world: World) -> None:
    chart = (await world.client.get("/homes/julie/nights/2026-01-10", headers=world.auth("ana"))).json()
    assert [chart[k] for k in ("in_bed", "doors", "motion", "buttons", "offline", "alerts")] == [[]] * 6


async def test_state_carried_in_from_before_the_night_opens_its_first_interval(world: World) -> None:
    """The next night begins with the bed empty since 07:00: nothing to chart until it is occupied."""
    await live_night(world, [("01-13 21:30", "bed", {"occupancy": True}), ("01-13 23:00", "bed", {"occupancy": False})], [])
    chart = (await world.client.get("/homes/julie/nights/2026-01-13", headers=world.auth("ana"))).json()
    assert spans(chart["in_bed"]) == [("bed", z("01-13 22:00"), z("01-13 23:00"))]


@pytest.mark.parametrize("bad", ["2026-13-01", "12-01-2026", "yesterday", "2026-1-2", "2026-02-30", "20260112"])
async def test_a_malformed_date_is_a_field_error(world: World, bad: str) -> None:
    answer = await world.client.get(f"/homes/julie/nights/{bad}", headers=world.auth("ana"))
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    [error] = answer.json()["errors"]
    assert error["field"] == "date" and "YYYY-MM-DD" in error["message"]


@pytest.mark.parametrize(("user", "home", "status"), [
    ("olga", "julie", 404), ("bob", "julie", 404), ("eve", "julie", 403), ("sam", "julie", 200), ("root", "nobody", 404),
])
async def test_who_may_read_a_night(world: World, user: str, home: str, status: int) -> None:
    answer = await world.client.get(f"/homes/{home}/nights/2026-01-12", headers=world.auth(user))
    assert answer.status_code == status
