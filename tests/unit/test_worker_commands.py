"""Commands reach the home's owner, and a worker's state travels to the parent's copy intact."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from alerts.events import Acknowledge
from alerts.homeconfig import HomeConfig, load_home_config
from gateway.clock import SimClock
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.partitions import partition_of
from gateway.worker import PartitionRuntime, portable
from gateway.worker_commands import Command, LocalCommands
from gateway.workers import RuntimeView

AT = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
JULIE = load_home_config("simulator/data/julie.home.yaml")


def named(home: str) -> HomeConfig:
    return JULIE.model_copy(update={"home": home})


def pressed(runtime: PartitionRuntime | RuntimeView, home: str) -> str:
    runtime.ingest(Inbound(f"zigbee2mqtt/{home}/ok-button", b'{"action": "single"}', AT, 1))
    [alert] = runtime.open_alerts()
    return str(alert["alert"])


def test_a_partition_runtime_keeps_only_its_own_homes() -> None:
    homes = [f"home-{n}" for n in range(20)]
    runtime = PartitionRuntime(SimClock(AT), Metrics(), index=1, count=2)
    for home in homes:
        runtime.set_home(named(home))
    assert sorted(runtime.homes) == sorted(h for h in homes if partition_of(h, 2) == 1)
    assert runtime.dirty == set(runtime.homes)


async def test_local_commands_load_apply_and_remove() -> None:
    runtime = PartitionRuntime(SimClock(AT), Metrics(), index=0, count=1)
    commands = LocalCommands(runtime)
    added = await commands.send(Command("ann", config_json=named("ann").model_dump_json(by_alias=True)))
    assert added.added and added.state is runtime.homes["ann"].state
    alert = pressed(runtime, "ann")
    acked = await commands.send(Command("ann", input=Acknowledge(alert, "Sam (daughter)")))
    assert [d.step for d in acked.decisions] == ["acknowledged"]
    assert runtime.open_alerts()[0]["acknowledged_by"] == "Sam (daughter)"
    await commands.send(Command("ann", remove=True))
    assert "ann" not in runtime.homes
    with pytest.raises(ValueError):
        await commands.send(Command("bob"))


def test_the_parents_copy_shows_the_workers_state_and_predicts_its_answer() -> None:
    clock = SimClock(AT)
    worker = PartitionRuntime(clock, Metrics(), index=0, count=1)
    view = RuntimeView(clock, Metrics())
    worker.set_home(named("ann"))
    view.set_home(named("ann"))
    alert = pressed(worker, "ann")
    sent = pickle.loads(pickle.dumps(portable(worker.homes["ann"].state)))
    assert worker.homes["ann"].state.plan is not None  # the worker's own state keeps its plan
    view.receive({"ann": sent})
    assert view.open_alerts() == worker.open_alerts()
    predicted = view.apply("ann", Acknowledge(alert, "Sam (daughter)"))
    applied = worker.apply("ann", Acknowledge(alert, "Sam (daughter)"))
    assert [d.step for d in predicted] == [d.step for d in applied] == ["acknowledged"]
    assert view.outbox.empty()  # the copy sends nothing: the worker does
