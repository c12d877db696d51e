"""`GET /homes/{home}/summary`: the figures from small tables, then the route over a lived night."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.nights import NightWindow
from gateway.history import summary as fig
from gateway.history.nights import nights_ending
from gateway.store.base import EventRow, StepRow
from tests.api.test_nights import at, live_night, no_calls
from tests.api.world import World, api_world

LONDON = ZoneInfo("Europe/London")
WINDOW = NightWindow(datetime.strptime("22:00", "%H:%M").time(), datetime.strptime("07:30", "%H:%M").time(), LONDON)
NIGHTS = nights_ending(WINDOW, date(2026, 1, 14), 3)  # 12, 13, 14 January


def steps(alert: str, kind: str, *rows: tuple[str, str, str | None, str]) -> list[StepRow]:
    return [StepRow(step, alert, "julie", kind, at(when), contact, reason) for step, when, contact, reason in rows]


@pytest.mark.parametrize(("text", "expected"), [
    ("false alarm: making tea", "false_alarm"), ("false alarm", "false_alarm"), ("False alarm: tea", "false_alarm"),
    ("needed help", "needed_help"), ("needed help: fell in the hall", "needed_help"),
    ("no action needed", "no_action_needed"), ("other: the cat", "other"), ("other", "other"),
    ("she was fine", "other"), ("false alarmist", "other"),
])
def test_outcome_text_is_classified_by_its_prefix(text: str, expected: str) -> None:
    assert fig.outcome_class(text) == expected


SAM = "Sam (daughter)"
A = steps("a", "out_of_bed_too_long", ("raised", "01-13 02:45", None, "out"), ("notified", "01-13 02:45", SAM, "out"),
          ("acknowledged", "01-13 02:48", SAM, "Acknowledged by Sam (daughter)."),
          ("resolved", "01-13 02:55", SAM, f"Resolved by {SAM}: false alarm: making tea"))
B = steps("b", "out_of_bed_too_long", ("raised", "01-14 03:00", None, "out"), ("notified", "01-14 03:00", SAM, "out"),
          ("escalated", "01-14 03:10", "Night responder", "out"),
          ("acknowledged", "01-14 03:20", "Night responder", "Acknowledged by Night responder."),
          ("resolved", "01-14 03:30", None, "Julie is back in bed."))
C = steps("c", "help_requested", ("raised", "01-14 04:00", None, "help"), ("notified", "01-14 04:00", SAM, "help"),
          ("acknowledged", "01-14 04:10", SAM, "Acknowledged by Sam (daughter)."),
          ("resolved", "01-14 04:20", SAM, f"Resolved by {SAM}: needed help: had fallen"))
D = steps("d", "out_of_bed_too_long", ("raised", "01-15 01:00", None, "out"),
          ("resolved", "01-15 01:01", "Julie", "Julie pressed the button ok-button (bedroom): I'm OK."))
E = steps("e", "not_up_by", ("raised", "01-15 09:00", None, "still in bed"))  # the morning after the 14th
LATER = steps("f", "help_requested", ("raised", "01-15 22:30", None, "help"))  # the 15th: not counted


def test_alerts_count_towards_the_night_they_follow_until_the_next_one_starts() -> None:
    assert fig.per_night(NIGHTS, [A, B, C, D, E, LATER]) == [
        {"date": "2026-01-12", "alerts": 1, "kinds": {"out_of_bed_too_long": 1}},
        {"date": "2026-01-13", "alerts": 2, "kinds": {"help_requested": 1, "out_of_bed_too_long": 1}},
        {"date": "2026-01-14", "alerts": 2, "kinds": {"not_up_by": 1, "out_of_bed_too_long": 1}},
    ]


def test_outcomes_by_kind_and_the_false_alarm_share_of_those_a_carer_judged() -> None:
    zero = dict.fromkeys(fig.ENDINGS, 0)
    assert fig.outcomes([A, B, C, D, E]) == [
        {"kind": "help_requested", "alerts": 1, **zero, "needed_help": 1, "false_alarm_share": 0.0},
        {"kind": "not_up_by", "alerts": 1, **zero, "open": 1, "false_alarm_share": None},
        {"kind": "out_of_bed_too_long", "alerts": 3, **zero, "false_alarm": 1, "cleared": 1, "by_person": 1,
         "false_alarm_share": 1.0},
    ]


def test_time_to_acknowledge_runs_from_the_first_call_to_that_contact() -> None:
    assert fig.acknowledge_times([A, B, C, D]) == [
        {"contact": "Night responder", "count": 1, "median_s": 600.0, "p90_s": 600.0},
        {"contact": SAM, "count": 2, "median_s": 390.0, "p90_s": 600.0},
    ]


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([1], 0.9, 1), ([1, 2], 0.9, 2), ([5, 1, 3, 2, 4], 0.5, 3), (list(range(1, 11)), 0.9, 9), (list(range(1, 21)), 0.9, 18),
])
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert fig.percentile(values, q) == expected


def bed(*changes: tuple[str, bool]) -> list[EventRow]:
    return [EventRow("julie", "bed", "bed", int(v), at(t), at(t)) for t, v in changes]


# Three nights of bed readings: (when, occupied).
BED = bed(
    ("01-12 22:40", True), ("01-13 01:00", False), ("01-13 01:10", True), ("01-13 03:00", False),
    ("01-13 03:50", True), ("01-13 07:10", False),  # 12th: out 10 min and 50 min; up 07:10
    ("01-13 23:20", True), ("01-13 23:20", True), ("01-14 02:00", False), ("01-14 02:03", True),
    ("01-14 07:20", False), ("01-14 07:25", True), ("01-14 08:00", False),  # 13th: 3 and 5 min; up 08:00
    ("01-15 00:10", True), ("01-15 06:00", False),  # 14th: to bed after midnight, up at 06:00
)


def test_out_of_bed_times_are_those_begun_in_the_night_and_ended_back_in_bed_in_it() -> None:
    occupied = fig.in_bed(BED, {}, at("01-12 10:00"))
    result = fig.out_of_bed(NIGHTS, occupied)
    assert result["count"] == 4  # 10, 50, 3 and 5 minutes; getting up for the day is not counted
    assert [(b["from_minutes"], b["to_minutes"], b["count"]) for b in result["buckets"]] == [
        (0, 5, 1), (5, 15, 2), (15, 30, 0), (30, 45, 0), (45, 60, 1), (60, 120, 0), (120, None, 0)]


def test_typical_bedtime_and_rising_are_median_local_times_across_midnight() -> None:
    occupied = fig.in_bed(BED, {}, at("01-12 10:00"))
    # bedtimes 22:40, 23:20, 00:10 (counted from the evening: median 23:20); rising 07:10, 08:00, 06:00
    assert fig.sleep_times(NIGHTS, occupied, at("01-12 10:00"), LONDON) == {
        "bedtime": "23:20", "rising": "07:10", "nights_with_sleep": 3}


def test_a_bedtime_before_the_readings_begin_is_not_guessed() -> None:
    since = at("01-12 23:00")
    occupied = fig.in_bed([r for r in BED if r.at >= since], {"bed": True}, since)
    assert fig.sleep_times(NIGHTS[:1], occupied, since, LONDON) == {"bedtime": None, "rising": "07:10",
                                                                     "nights_with_sleep": 1}


def test_typical_times_are_wall_clock_across_a_clock_change() -> None:
    zone = ZoneInfo("Europe/London")
    window = NightWindow(WINDOW.start, WINDOW.end, zone)
    nights = nights_ending(window, date(2026, 3, 29), 2)  # 28th GMT, 29th BST (clocks went forward 01:00 on 29th)
    rows = [EventRow("j", "bed", "bed", v, t, t) for v, t in [
        (1, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)), (0, datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),  # 23:00, 07:00 BST
        (1, datetime(2026, 3, 29, 22, 0, tzinfo=UTC)), (0, datetime(2026, 3, 30, 6, 0, tzinfo=UTC))]]  # 23:00, 07:00
    occupied = fig.in_bed(rows, {}, rows[0].at - timedelta(hours=1))
    assert fig.sleep_times(nights, occupied, rows[0].at - timedelta(hours=1), zone)["bedtime"] == "23:00"


# --- the route ---------------------------------------------------------------------------------


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with api_world(tmp_path) as w:
        no_calls(w)
        await live_night(w)
        w.clock.set(at("01-13 12:00"))
        yield w


async def test_the_summary_of_the_nights_ending_with_the_last_finished_one(world: World) -> None:
    answer = await world.client.get("/homes/julie/summary?nights=3", headers=world.auth("sam"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["first"], body["last"]) == ("2026-01-10", "2026-01-12")
    assert [(n["date"], n["alerts"]) for n in body["nights"]] == [("2026-01-10", 0), ("2026-01-11", 0), ("2026-01-12", 3)]
    assert body["nights_without_alert"] == 2
    by_kind = {o["kind"]: o for o in body["outcomes"]}
    assert (by_kind["help_requested"]["false_alarm"], by_kind["help_requested"]["false_alarm_share"]) == (1, 1.0)
    assert (by_kind["out_of_bed_too_long"]["cleared"], by_kind["device_offline"]["cleared"]) == (1, 1)
    assert body["acknowledge"] == [{"contact": SAM, "count": 1, "median_s": 180.0, "p90_s": 180.0}]
    assert body["out_of_bed"]["count"] == 2  # 00:30-00:50 and 02:00-02:55
    assert (body["bedtime"], body["rising"]) == ("23:05", "07:00")


@pytest.mark.parametrize(("query", "status"), [("", 200), ("?nights=1", 200), ("?nights=90", 200),
                                               ("?nights=0", 422), ("?nights=91", 422), ("?nights=x", 422)])
async def test_nights_is_1_to_90_and_defaults_to_14(world: World, query: str, status: int) -> None:
    answer = await world.client.get(f"/homes/julie/summary{query}", headers=world.auth("ana"))
    assert answer.status_code == status
    if query == "":
        assert len(answer.json()["nights"]) == 14
    if status == 422:
        assert answer.json()["errors"][0]["field"] == "nights"
