"""Company mode in stored history: `tecmon db import-events` keeps it as the live service does,
and the what-if preview replays it, so a night with someone there previews as quiet.

The nights are the simulator's company scenarios for Arthur (his routine has
`company: {action: double, for: 2h}`): up with a visitor past his 40 minutes
out of bed, then a call for help, which company mode never holds back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.homeconfig import HomeConfig
from alerts.plan import plan_from_config
from gateway.history.nights import last_completed, nights_ending
from gateway.history.preview import CurrentLines, engine_inputs, preview, raised_lines, replay_lines
from gateway.replay import lifecycle_line, run_replay
from gateway.store import open_store
from gateway.store.base import EventRow, InputRow, Store
from gateway.store.import_events import import_lines
from simulator.personas import get_persona
from simulator.scenarios import Generated, generate

ARTHUR = get_persona("arthur")
HOME = ARTHUR.home()
NO_COMPANY = HOME.model_copy(update={"routine": HOME.routine.model_copy(update={"company": None})})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'tecmon.db'}")
    await opened.open()
    yield opened
    await opened.close()


def raised_by_replay(cfg: HomeConfig, lines: list[str], until: datetime) -> list[tuple[str, str]]:
    out: list[dict[str, Any]] = []
    report = run_replay([cfg], lines, lambda d: out.append(lifecycle_line(d)), until=until)
    assert report.problems == []
    return [(line["kind"], line["at"]) for line in out if line["step"] == "raised"]


def raised(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["kind"], line["at"]) for line in lines]


async def imported(store: Store, night: Generated) -> tuple[list[EventRow], list[InputRow], dict[str, Any]]:
    report = await import_lines(store, [HOME], night.lines)
    assert report.problems == []
    start, end = night.end - timedelta(days=2), night.end + timedelta(seconds=1)
    rows = await store.home_events_between(HOME.home, start, end)
    inputs = await store.home_inputs_between(HOME.home, start, end)
    return rows, inputs, report.summary()


@pytest.mark.parametrize(("name", "by"), [("company-button", "Arthur"), ("company-carer", "Priya (niece)")])
async def test_import_keeps_company_as_inputs_and_the_preview_is_quiet(store: Store, name: str, by: str) -> None:
    night = generate(name, HOME, ARTHUR, seed=5)
    rows, inputs, summary = await imported(store, night)
    assert [(i.kind, i.outcome, i.by) for i in inputs] == [("company", "on", by), ("company", "off", by)]
    assert summary["company_inputs"] == 2 and summary["commands_passed_over"] == 2  # the carer's ack, resolve
    assert sum(1 for r in rows if r.kind == "button") == 1, "the double presses are company inputs, not presses"

    truth = raised_by_replay(HOME, night.lines, night.end)
    assert [kind for kind, _ in truth] == ["help_requested"], "the visit is quiet; the call for help is not"
    assert raised(raised_lines(HOME, engine_inputs(rows, inputs), night.end)) == truth
    stored_as_replay = list(replay_lines(HOME, rows, company=inputs))
    assert raised_by_replay(HOME, stored_as_replay, night.end) == truth, "the preview equals tecmon replay"
    alone = raised(raised_lines(HOME, engine_inputs(rows), night.end))
    assert "out_of_bed_too_long" in [kind for kind, _ in alone], "without the inputs it would have called"


async def test_the_preview_of_a_night_with_company_says_so_and_a_routine_without_it_would_call(
    store: Store,
) -> None:
    night = generate("company-button", HOME, ARTHUR, seed=5)
    rows, inputs, _ = await imported(store, night)
    window = plan_from_config(HOME).night
    nights = nights_ending(window, last_completed(window, night.end), 2)
    answer = preview(HOME, NO_COMPANY, nights[1:], rows, night.end, CurrentLines(), company=inputs)
    (only,) = answer["nights"]
    assert [item["kind"] for item in only["current"]] == ["help_requested"]
    assert [item["kind"] for item in only["proposed"]] == ["out_of_bed_too_long", "help_requested"]
    assert answer["totals"] == {"current": 1, "proposed": 2}


async def test_a_company_line_for_a_home_without_company_mode_is_passed_over(store: Store) -> None:
    other = get_persona("julie").home()
    line = '{"ts": "2026-01-11T23:00:00+00:00", "company": true, "by": "Sam (daughter)"}'
    report = await import_lines(store, [other], [line])
    assert report.summary()["company_inputs"] == 0 and report.commands_passed_over == 1
