"""Recovery from snapshots is exact: the same state, the same late steps, as replaying everything.

A home runs "live" (the real runtime, a simulated clock, the real buffered
writer into SQLite and PostgreSQL), snapshots are taken mid-alert, the
service "dies", and a fresh runtime recovers from the store twice: from the
snapshots, and by replaying the whole window as before snapshots existed.
Both must equal what the home that never stopped did and decided.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts import snapshot
from alerts.decisions import SendSummary
from alerts.events import Acknowledge
from alerts.homeconfig import HomeConfig, load_home_config
from gateway.clock import SimClock
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.recovery import RecoveryReport, recover
from gateway.replay import lifecycle_line
from gateway.runtime import Runtime
from gateway.snapshots import SnapshotTaker, engine_version
from gateway.store.base import StepRow, Store
from gateway.store.writer import BufferedWriter
from tests.integration.conftest import Backend

_FILE = load_home_config(Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml")
JULIE = _FILE.model_copy(update={"routine": _FILE.routine.model_copy(update={"still_while_up": None})})
HOME = JULIE.home
DAY = datetime(2026, 1, 12, tzinfo=UTC)  # London is on UTC in January
WINDOW = timedelta(hours=24)


def at(hh: int, mm: int, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hh, minutes=mm)


class Live:
    """The service's runtime and writer on a simulated clock; the dispatcher only records steps."""

    def __init__(self, store: Store, start: datetime, homes: list[HomeConfig]) -> None:
        self.clock = SimClock(start)
        self.runtime = Runtime(self.clock, Metrics())
        self.writer = BufferedWriter(store, Metrics(), flush_every_s=3600)
        self.runtime.recorder = self.writer
        for cfg in homes:
            self.runtime.set_home(cfg)
        self.lines: list[dict[str, Any]] = []
        self.taker = SnapshotTaker(self.runtime, store, self.clock, self.writer)

    def _drain(self) -> None:
        while not self.runtime.outbox.empty():
            item = self.runtime.outbox.get_nowait()
            if not isinstance(item.decision, SendSummary):
                line = lifecycle_line(item.decision)
                self.lines.append(line)
                self.writer.add_step(StepRow.from_line(line, item.late))

    def until(self, when: datetime) -> None:
        self.clock.set(when)
        self.runtime.fire_due()
        self._drain()

    def message(self, when: datetime, device: str, payload: dict[str, Any], home: str = HOME) -> None:
        self.until(when)
        self.runtime.ingest(Inbound(f"zigbee2mqtt/{home}/{device}", json.dumps(payload).encode(), when, 1))
        self._drain()

    def ack(self, when: datetime, kind: str, by: str) -> None:
        self.until(when)
        self.runtime.apply(HOME, Acknowledge(kind, by))
        self._drain()


async def recovered(store: Store, now: datetime, homes: list[HomeConfig],
                    engine: str | None) -> tuple[Runtime, RecoveryReport]:
    runtime = Runtime(SimClock(now), Metrics())
    for cfg in homes:
        runtime.set_home(cfg, start=False)
    return runtime, await recover(runtime, store, now, WINDOW, engine)


def state_of(runtime: Runtime, home: str = HOME) -> str:
    return snapshot.dumps(runtime.homes[home].state)


def late_lines(report: RecoveryReport) -> list[dict[str, Any]]:
    return [lifecycle_line(item.decision) for item in report.pending]


def night_with_an_alert(live: Live) -> None:
    live.message(at(22, 30), "bed", {"occupancy": True})
    live.message(at(2, 0, 1), "bed", {"occupancy": False})
    live.message(at(2, 10, 1), "hall-motion", {"occupancy": True})
    live.until(at(2, 50, 1))  # raised and Sam called at 02:45; the escalation is due at 02:55


async def test_a_snapshot_mid_alert_resumes_the_escalation_where_it_was(backend: Backend) -> None:
    live = Live(backend.store, at(21, 0), [JULIE])
    night_with_an_alert(live)
    assert [line["step"] for line in live.lines] == ["raised", "notified"]
    first = await live.taker.take()
    assert first.written == 1
    live.message(at(2, 52, 1), "hall-motion", {"occupancy": False})
    assert await live.writer.flush(timeout_s=5)
    before_crash = len(live.lines)
    # Down from 02:52 to 03:07: what the home that never stopped decided meanwhile is due, late.
    live.until(at(3, 7, 1))
    missed = live.lines[before_crash:]
    assert [(m["step"], m["contact"], m["at"][11:16]) for m in missed] == [
        ("escalated", "Night responder", "02:55"), ("escalated", "Night responder", "03:00"),
        ("escalated", "Night responder", "03:05")]
    from_snapshot, report = await recovered(backend.store, at(3, 7, 1), [JULIE], engine_version())
    assert report.from_snapshot == 1 and report.events == 1  # only the event after the snapshot
    full, full_report = await recovered(backend.store, at(3, 7, 1), [JULIE], None)
    assert late_lines(report) == late_lines(full_report) == missed
    # The full replay starts the home at its first stored event; the snapshot keeps when it began.
    assert state_of(from_snapshot) == state_of(live.runtime)
    assert full.homes[HOME].state.safety == from_snapshot.homes[HOME].state.safety
    # Nothing is called twice: Sam was called before the crash, only the last escalation is a call.
    calls = [(i.decision.step, i.call) for i in report.pending]
    assert calls == [("escalated", False), ("escalated", False), ("escalated", True)]


async def test_inputs_and_steps_after_the_snapshot_are_replayed_not_repeated(backend: Backend) -> None:
    live = Live(backend.store, at(21, 0), [JULIE])
    night_with_an_alert(live)
    await live.taker.take()
    live.until(at(2, 56, 1))  # escalated at 02:55, after the snapshot: recorded, so not late
    live.ack(at(2, 57, 1), "out_of_bed_too_long", "Night responder")
    live.message(at(2, 58, 1), "bed", {"occupancy": True})
    assert await live.writer.flush(timeout_s=5)
    runtime, report = await recovered(backend.store, at(3, 30, 1), [JULIE], engine_version())
    assert report.from_snapshot == 1 and report.inputs == 1 and report.pending == []
    assert report.already_done == 3  # escalated, acknowledged, resolved
    assert state_of(runtime) == state_of(live.runtime)  # nothing was due: it is where it was
    assert runtime.open_alerts() == []


async def test_a_snapshot_of_another_routine_or_engine_is_ignored(backend: Backend) -> None:
    live = Live(backend.store, at(21, 0), [JULIE])
    night_with_an_alert(live)
    await live.taker.take()
    assert await live.writer.flush(timeout_s=5)
    later = JULIE.model_copy(update={"escalation": JULIE.escalation.model_copy(
        update={"ack_within": timedelta(minutes=20)})})
    changed, report = await recovered(backend.store, at(2, 51, 1), [later], engine_version())
    assert (report.from_snapshot, report.snapshots_ignored) == (0, 1)
    full, _ = await recovered(backend.store, at(2, 51, 1), [later], None)
    assert state_of(changed) == state_of(full)
    _, other_engine = await recovered(backend.store, at(2, 51, 1), [JULIE], "another engine")
    assert (other_engine.from_snapshot, other_engine.snapshots_ignored) == (0, 1)


async def test_unchanged_homes_are_confirmed_and_due_ones_put_off(backend: Backend) -> None:
    bob = JULIE.model_copy(update={"home": "bob"})
    live = Live(backend.store, at(21, 0), [JULIE, bob])
    live.message(at(22, 30), "bed", {"occupancy": True})
    live.message(at(22, 31), "bed", {"occupancy": True}, home="bob")
    assert (await live.taker.take()).written == 2
    live.message(at(22, 40), "hall-motion", {"occupancy": True})
    round_two = await live.taker.take()
    assert (round_two.written, round_two.confirmed) == (1, 1)
    rows = {r.home: r for r in await backend.store.snapshots()}
    assert rows["bob"].through == rows[HOME].through == at(22, 40)
    live.clock.set(at(1, 0, 1) + timedelta(seconds=1))  # in_bed_by 01:00 is due, its timer not yet run
    put_off = await live.taker.take()
    assert put_off.put_off == 2 and put_off.written == put_off.confirmed == 0
