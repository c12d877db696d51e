"""The urgent path's rules: which topics are urgent, and each message applied once from two sessions."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.homeconfig import HomeConfig
from gateway.clock import SimClock
from gateway.inbox import Inbound, Inbox, Limits, Pump
from gateway.urgent import DEMOTED_S, GRACE_S, URGENT_BURST, UrgentRouter, urgent_topics

PRESS = b'{"action":"single"}'
T = "z/b/ok-button"


def home(**door: object) -> HomeConfig:
    return HomeConfig.model_validate({
        "home": "b", "timezone": "UTC", "person": {"name": "B"},
        "devices": [
            {"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"},
            {"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button"},
            {"id": "front-door", "profile": "aqara-mccgq11lm", "kind": "door", **door},
            {"id": "hall-motion", "profile": "aqara-rtcgq11lm", "kind": "motion"},
        ],
        "routine": {"night": {"from": "22:00", "to": "07:00"}},
        "contacts": [{"name": "Sam", "notify": ["json://127.0.0.1:9/"]}],
    })


@pytest.mark.parametrize(("door", "expected"), [
    ({"exit": True}, {"z/b/ok-button", "z/b/front-door"}),
    ({}, {"z/b/ok-button"}),
])
def test_buttons_and_exit_doors_are_urgent(door: dict[str, object], expected: set[str]) -> None:
    assert urgent_topics(home(**door), "z/") == expected


def owned_router(at: float = 0.0) -> UrgentRouter:
    router = UrgentRouter()
    router.set_home("b", {T})
    router.subscribed([T], after=0, now=at)
    return router


def test_until_the_urgent_session_subscribed_the_bulk_session_carries_the_topic() -> None:
    router = UrgentRouter()
    assert router.set_home("b", {T}) == ({T}, set())
    assert router.from_urgent(T, PRESS, arrival=1, now=0.0) is False
    assert router.from_bulk(T, PRESS, now=0.0) is True


def test_the_bulk_copy_of_an_urgent_message_is_dropped_even_long_after() -> None:
    router = owned_router()
    assert router.from_urgent(T, PRESS, arrival=1, now=GRACE_S + 1)
    assert router.from_bulk(T, PRESS, now=GRACE_S + 100) is False


def test_in_the_grace_period_a_message_only_the_bulk_session_had_still_applies() -> None:
    router = owned_router()
    assert router.from_urgent(T, PRESS, arrival=1, now=1.0)
    assert router.from_bulk(T, b'{"action":"double"}', now=2.0) is True  # published before the SUBACK
    assert router.from_bulk(T, PRESS, now=3.0) is False  # the urgent one's copy
    assert router.from_bulk(T, b'{"action":"long"}', now=GRACE_S + 1) is False  # after: the urgent one has it


def test_what_a_kept_session_delivered_before_its_suback_is_left_to_the_bulk_session() -> None:
    router = UrgentRouter()
    router.set_home("b", {T})
    router.subscribed([T], after=5, now=0.0)
    assert router.from_urgent(T, PRESS, arrival=5, now=1.0) is False
    assert router.from_urgent(T, PRESS, arrival=6, now=1.0) is True


def test_while_the_urgent_session_is_down_the_bulk_one_carries_all_but_copies_already_applied() -> None:
    router = owned_router()
    assert router.from_urgent(T, PRESS, arrival=1, now=GRACE_S + 1)
    router.lost()
    assert router.from_bulk(T, PRESS, now=GRACE_S + 5) is False  # its copy, still behind the backlog
    assert router.from_bulk(T, PRESS, now=GRACE_S + 6) is True  # a new press
    assert router.from_urgent(T, PRESS, arrival=2, now=GRACE_S + 7) is False


def test_a_bulk_copy_that_came_first_around_the_suback_is_not_applied_again() -> None:
    router = owned_router()
    assert router.from_bulk(T, PRESS, now=1.0) is True
    assert router.from_urgent(T, PRESS, arrival=1, now=1.1) is False
    assert router.from_urgent(T, PRESS, arrival=2, now=30.0) is True  # a new press, later


def test_a_topic_no_longer_urgent_is_the_bulk_sessions_at_once() -> None:
    router = owned_router()
    assert router.set_home("b", set()) == (set(), {T})
    assert router.from_bulk(T, PRESS, now=GRACE_S + 1) is True
    assert router.from_urgent(T, PRESS, arrival=1, now=GRACE_S + 1) is False


def test_a_topic_flooding_the_urgent_session_goes_back_to_the_bulk_one_for_a_while() -> None:
    router = owned_router()
    demoted: list[str] = []
    router.on_demote = demoted.append
    kept = [router.from_urgent(T, b"garbage", arrival=n, now=GRACE_S + 1) for n in range(1, URGENT_BURST + 5)]
    assert kept == [True] * URGENT_BURST + [False] * 4 and demoted == [T]
    assert router.from_bulk(T, b"garbage", now=GRACE_S + 2) is False  # a copy of one applied
    assert router.from_bulk(T, PRESS, now=GRACE_S + 2) is True  # the bulk session carries it now
    assert router.to_subscribe() == set()
    assert router.promote_due(GRACE_S + 1 + DEMOTED_S) == {T}
    assert router.to_subscribe() == {T}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"single", b"double", b"x"]), max_size=12), st.data())
def test_every_message_is_applied_once_whichever_session_delivers_it(published: list[bytes],
                                                                      data: st.DataObject) -> None:
    """The urgent session has the messages from its SUBACK on, the bulk session all of them,
    each in order; the two streams interleave in any way (a bulk copy may come first)."""
    subscribed_at = data.draw(st.integers(0, len(published)))
    router = UrgentRouter()
    router.set_home("b", {T})
    router.subscribed([T], after=0, now=0.0)
    urgent, bulk, applied = subscribed_at, 0, Counter[bytes]()
    while bulk < len(published):
        urgent_may = urgent < len(published)
        if urgent_may and data.draw(st.booleans()):
            if router.from_urgent(T, published[urgent], arrival=urgent + 1, now=1.0):
                applied[published[urgent]] += 1
            urgent += 1
        else:
            if router.from_bulk(T, published[bulk], now=1.0):
                applied[published[bulk]] += 1
            bulk += 1
    assert applied == Counter(published)


class FakeReader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start_reading(self) -> None:
        self.calls.append("start")

    def stop_reading(self) -> None:
        self.calls.append("stop")


def test_a_full_inbox_stops_its_session_reading_until_half_is_taken() -> None:
    inbox, reader = Inbox(Limits(messages=4, bytes=1000), asyncio.Event()), FakeReader()
    assert inbox.attach(reader)
    for _ in range(4):
        inbox.put(T, b"x", 0)
    assert reader.calls == ["stop"] and inbox.pauses == 1
    inbox.take()
    assert reader.calls == ["stop"]
    inbox.take()
    assert reader.calls == ["stop", "start"]


def test_a_reconnected_session_starts_paused_while_its_inbox_is_still_full() -> None:
    inbox = Inbox(Limits(messages=2, bytes=10**6), asyncio.Event())
    inbox.put(T, b"x", 0)
    inbox.put(T, b"x", 0)
    assert inbox.attach(FakeReader()) is False
    inbox.put(T, b"big" * 10, 0)
    assert inbox.peak == 3 and inbox.bytes == 32


async def test_the_pump_applies_urgent_messages_before_the_bulk_backlog() -> None:
    router = owned_router(at=-GRACE_S)
    pump = Pump(SimClock(datetime(2026, 1, 12, 2, tzinfo=UTC)), router)
    for n in range(100):
        pump.bulk.put(f"z/a/bed{n}", b"garbage", 0)
    pump.urgent.put(T, PRESS, 1)
    pump.bulk.put(T, PRESS, 1)  # the same press on the bulk session, behind the backlog
    order: list[str] = []

    def apply(message: Inbound) -> None:
        order.append(message.topic)
        if len(order) == 101:
            task.cancel()

    task = asyncio.create_task(pump.run(apply))
    await asyncio.gather(task, return_exceptions=True)
    assert order[0] == T and order.count(T) == 1 and len(order) == 101
    assert pump.duplicates == 1 and pump.applied_urgent == 1


def test_the_runtime_tells_the_mqtt_edge_each_homes_urgent_topics() -> None:
    from gateway.metrics import Metrics
    from gateway.runtime import Runtime

    runtime = Runtime(SimClock(datetime(2026, 1, 12, 2, tzinfo=UTC)), Metrics(), "z")
    told: list[tuple[str, frozenset[str]]] = []
    runtime.on_urgent_topics = lambda home, topics: told.append((home, topics))
    runtime.set_home(home(exit=True))
    runtime.set_home(home())  # the front door is no longer an exit
    runtime.remove_home("b")
    assert told == [("b", frozenset({"z/b/ok-button", "z/b/front-door"})), ("b", frozenset({"z/b/ok-button"})),
                    ("b", frozenset())]
