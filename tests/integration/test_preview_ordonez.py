"""What-if on a real, seeded history: Ordóñez house A's 14 days, equal to `tecmon replay`.

The days are stored the way the gateway stores them, on SQLite and on the
real PostgreSQL: either through the live ingest path (`Runtime.ingest` of
each message at its instant, the service's own recorder writing to the
store) or with `tecmon db import-events`. The preview is then asked through
the app, just after the data ends, for the 14 nights, with the resident's own
routine and with a first draft copied from another home. Each night must hold
exactly the `raised` steps that `tecmon replay` gives over the dataset's own
replay lines with that routine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts.homeconfig import HomeConfig, parse_home_config
from gateway.clock import SimClock
from gateway.mqtt import Inbound
from gateway.replay import lifecycle_line, parse_line, run_replay
from gateway.service import Service
from gateway.settings import Settings
from gateway.store.import_events import import_lines
from simulator.ordonez import convert_ordonez
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DATASET = REPO.parent / "shared" / "datasets" / "ordonez-a" / "OrdonezA_Sensors.txt"
HOME_FILE = REPO / "simulator" / "data" / "ordonez-a.home.yaml"
DRAFT = {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "45m"},
         "exit_door": {"alert_if_not_back_within": "15m"}, "still_while_up": {"alert_after": "20m"},
         "in_bed_by": "01:00", "up_by": "10:30"}
PASSWORD = "S3cret-Passw0rd-for-tests"
DATES = [f"2011-11-{d}" for d in (28, 29, 30)] + [f"2011-12-{d:02d}" for d in range(1, 12)]


def lines() -> list[str]:
    if not DATASET.is_file():
        pytest.fail(f"Ordóñez house A is missing: expected {DATASET}")
    home = parse_home_config(yaml.safe_load(HOME_FILE.read_text(encoding="utf-8")))
    return [json.dumps(x) for x in convert_ordonez(DATASET, REPO / "simulator" / "data" / "ordonez-a.map.yaml", home)]


def home_with(routine: dict[str, Any] | None) -> HomeConfig:
    data = yaml.safe_load(HOME_FILE.read_text(encoding="utf-8"))
    if routine is not None:
        data["routine"] = routine
    return parse_home_config(data)


def replayed_by_night(cfg: HomeConfig, text: list[str], until: datetime | None) -> dict[str, list[list[str]]]:
    """`tecmon replay` of the dataset's lines; raised steps by the resident's night (00:00 local) they follow."""
    out: list[dict[str, Any]] = []
    report = run_replay([cfg], text, lambda d: out.append(lifecycle_line(d)), until=until)
    assert report.problems == []
    zone = home_with(None).zone
    nights: dict[str, list[list[str]]] = {d: [] for d in DATES}
    for line in out:
        if line["step"] == "raised":
            day = datetime.fromisoformat(line["at"]).astimezone(zone).date().isoformat()  # the night starts at 00:00
            nights.setdefault(day, []).append([line["kind"], line["at"], line["reason"]])
    return nights


@asynccontextmanager
async def service_on(backend: Backend, tmp_path: Path, start: datetime) -> AsyncIterator[Service]:
    """The parts `tecmon serve` runs, on the backend's database, without MQTT or timer tasks."""
    homes = tmp_path / "homes"
    homes.mkdir()
    (homes / "ordonez-a.yaml").write_text(HOME_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    service = Service(Settings(database_url=backend.url, homes=[homes]), clock=SimClock(start))
    service.dispatcher._spawn = lambda coro: coro.close()  # type: ignore[method-assign]  # record, call nobody
    await service.store.open()
    await service._load_from_store()
    service.apply_removed(*service.watcher.scan(lambda cfg: service.apply_home(cfg, starting=True)))
    service.runtime.start_all()
    service.api.ready["recovered"] = True
    try:
        yield service
    finally:
        await service.store.close()


async def seed_live(service: Service, text: list[str]) -> None:
    """Each message through `Runtime.ingest` at its instant; the recorder writes it to the store."""
    assert isinstance(service.clock, SimClock)
    for number, raw in enumerate(text, start=1):
        line = parse_line(raw)
        service.clock.set(line.ts)
        service.runtime.fire_due()
        assert line.topic is not None
        service.runtime.ingest(Inbound(line.topic, json.dumps(line.payload).encode(), line.ts, 1))
        if number % 200 == 0:
            await drain(service)
    await drain(service)


async def drain(service: Service) -> None:
    while not service.runtime.outbox.empty():
        service.dispatcher.handle(service.runtime.outbox.get_nowait())
    assert await service.writer.flush(timeout_s=10)


async def preview(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    await service.accounts.add_user("root", "admin", (), None, PASSWORD)
    user = await service.store.get_user("root")
    assert user is not None
    token, _ = service.accounts.issue(user)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tecmon.test") as client:
        answer = await client.post("/homes/ordonez-a/preview", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def as_nights(result: dict[str, Any], side: str) -> dict[str, list[list[str]]]:
    return {n["date"]: [[i["kind"], i["at"], i["reason"]] for i in n[side]] for n in result["nights"]}


@pytest.mark.parametrize("seeded", ["live ingest", "import-events"])
async def test_the_preview_of_fourteen_real_days_equals_tecmon_replay(backend: Backend, tmp_path: Path,
                                                                       seeded: str) -> None:
    text = lines()
    first, last = parse_line(text[0]).ts, parse_line(text[-1]).ts
    async with service_on(backend, tmp_path, first) as service:
        if seeded == "live ingest":
            await seed_live(service, text)
        else:
            report = await import_lines(service.store, [home_with(None)], text)
            assert (report.lines_read, report.events_stored, report.problems) == (816, 816, [])
        assert await service.store.count_events() == 816
        assert isinstance(service.clock, SimClock)
        service.clock.set(last + timedelta(minutes=10))  # just after the data ends: 12 Dec 00:32 in Madrid
        result = await preview(service, {"routine": DRAFT, "nights": 14})
    assert [n["date"] for n in result["nights"]] == DATES
    until = datetime(2011, 12, 11, 23, 0, tzinfo=UTC)  # the last night counted is the 11th's: the 12th's begins
    current, draft = replayed_by_night(home_with(None), text, until), replayed_by_night(home_with(DRAFT), text, until)
    assert as_nights(result, "current") == current
    assert as_nights(result, "proposed") == draft
    # The same as a plain replay to the last line: nothing of these nights falls after it.
    assert draft == {d: v for d, v in replayed_by_night(home_with(DRAFT), text, None).items() if d in DATES}
    # The draft raises more than the resident's own routine, which raises nothing in two weeks.
    assert result["totals"] == {"current": 0, "proposed": 20}
    assert result["totals"]["proposed"] == sum(len(v) for v in draft.values())


def test_import_events_reports_bad_lines_by_number_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    events = tmp_path / "a.jsonl"
    text = lines()[:10]
    bad = ["not json", json.dumps({"ts": "2011-11-28T02:00:00+00:00", "topic": "zigbee2mqtt/ordonez-a/kettle",
                                   "payload": {"motion": True}}),
           json.dumps({"ts": "2011-11-28T02:00:00+00:00", "ack": "not_up_by", "by": "Sam"})]
    events.write_text("\n".join([*text[:5], *bad, *text[5:]]) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["db", "import-events", "--database", url, "--config", str(HOME_FILE), str(events)]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out) | {"first": None, "last": None} == {
        "lines_read": 13, "events_stored": 10, "lines_skipped": 2, "company_inputs": 0, "commands_passed_over": 1,
        "homes": {"ordonez-a": 10}, "first": None, "last": None}
    assert f"{events}:6: not JSON" in err and f"{events}:7: unknown device 'kettle'" in err
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(text) + "\n", encoding="utf-8")
    assert main(["db", "import-events", "--database", url, "--config", str(HOME_FILE), str(good)]) == 0
