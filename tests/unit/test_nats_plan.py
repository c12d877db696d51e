"""The pure parts of `ingest: nats`: sharing partitions, reading subjects, commands as data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.events import Acknowledge, ResolveAlert, SetCompany
from gateway.cluster_config import mappings, mqtt_topic_of, partition_of_subject
from gateway.cluster_store import dead_letter_home
from gateway.commands import Applied, Command
from gateway.leases import plan

names = st.lists(st.text("abcdefgh-0123456789", min_size=1, max_size=8), min_size=1, max_size=12, unique=True)


@given(partitions=st.integers(1, 256), live=names)
def test_every_partition_has_one_owner_and_shares_differ_by_at_most_one(partitions: int,
                                                                        live: list[str]) -> None:
    shares = plan(partitions, live)
    owned = sorted(p for share in shares.values() for p in share)
    assert owned == list(range(partitions))
    sizes = [len(share) for share in shares.values()]
    assert max(sizes) - min(sizes) <= 1


@given(partitions=st.integers(1, 64), live=names)
def test_the_plan_depends_on_who_is_live_not_on_their_order(partitions: int, live: list[str]) -> None:
    assert plan(partitions, live) == plan(partitions, list(reversed(live)))


def test_no_live_instance_owns_nothing() -> None:
    assert plan(8, []) == {}


@pytest.mark.parametrize(("subject", "topic", "partition"), [
    ("tecmon.in.3.zigbee2mqtt.julie.bed", "zigbee2mqtt/julie/bed", 3),
    ("tecmon.in.15.zigbee2mqtt.h-1.hall.availability", "zigbee2mqtt/h-1/hall/availability", 15),
])
def test_a_partitioned_subject_gives_back_the_mqtt_topic(subject: str, topic: str, partition: int) -> None:
    assert mqtt_topic_of(subject) == topic
    assert partition_of_subject(subject) == partition


@pytest.mark.parametrize("subject", ["zigbee2mqtt.julie.bed", "tecmon.out.1.x", "tecmon.in"])
def test_other_subjects_are_refused(subject: str) -> None:
    with pytest.raises(ValueError):
        mqtt_topic_of(subject)


def test_the_mapping_leaves_device_commands_alone() -> None:
    sources = set(mappings("zigbee2mqtt", 16))
    assert sources == {"zigbee2mqtt.*.*", "zigbee2mqtt.*.*.availability"}
    assert all("{{partition(16,1)}}" in dest for dest in mappings("zigbee2mqtt", 16).values())


@pytest.mark.parametrize(("topic", "home"), [
    ("zigbee2mqtt/julie/kettle", "julie"), ("tecmon.in.2.zigbee2mqtt.bob.bed", "bob"), ("odd", "odd"),
])
def test_a_dead_letter_belongs_to_the_home_in_its_topic(topic: str, home: str) -> None:
    assert dead_letter_home(topic) == home


@pytest.mark.parametrize("inp", [
    Acknowledge("julie:20261201T010203Z:out_of_bed_too_long", "Sam"),
    ResolveAlert("julie:20261201T010203Z:out_of_bed_too_long", "Sam", "false alarm"),
])
def test_a_command_names_its_home_and_gives_back_its_input(inp: Acknowledge | ResolveAlert) -> None:
    command = Command.of(inp)
    assert command.home == "julie"
    assert command.to_input() == inp


def test_a_company_command_needs_its_home() -> None:
    with pytest.raises(ValueError):
        Command.of(SetCompany(True, "Sam"))
    assert Command.of(SetCompany(True, "Sam"), home="julie").to_input() == SetCompany(True, "Sam")


def test_an_answer_survives_the_wire() -> None:
    applied = Applied("applied", ("acknowledged",))
    assert Applied.decode(applied.encode()) == applied
