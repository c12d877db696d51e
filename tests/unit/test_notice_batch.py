"""Device notices to one contact: the first at once, the rest together when the window ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.decisions import AlertKind
from alerts.notice_batch import NoticeBatcher, NoticeLine, batch_words

T0 = datetime(2026, 1, 12, 2, 10, tzinfo=UTC)
SENT, HELD = "sent", "held"

# Each step: ("offer", second, contact, notice, what happens) or ("due", second, batches that go out).
CASES: dict[str, tuple[float, list[tuple[Any, ...]]]] = {
    "the first notice goes at once": (30, [
        ("offer", 0, "eng", "a", SENT),
        ("due", 30, []),
    ]),
    "a storm: the rest wait for the window's end, then go as one": (30, [
        ("offer", 0, "eng", "a", SENT),
        ("offer", 1, "eng", "b", HELD),
        ("offer", 2, "eng", "c", HELD),
        ("due", 29, []),
        ("due", 30, [("eng", ("b", "c"))]),
    ]),
    "a storm that goes on: one batch per window": (30, [
        ("offer", 0, "eng", "a", SENT),
        ("offer", 5, "eng", "b", HELD),
        ("due", 30, [("eng", ("b",))]),
        ("offer", 31, "eng", "c", HELD),
        ("offer", 59, "eng", "d", HELD),
        ("due", 60, [("eng", ("c", "d"))]),
        ("due", 90, []),
        ("offer", 91, "eng", "e", SENT),
    ]),
    "each contact has its own window": (30, [
        ("offer", 0, "eng", "a", SENT),
        ("offer", 1, "coordinator", "b", SENT),
        ("offer", 2, "eng", "c", HELD),
        ("due", 30, [("eng", ("c",))]),
    ]),
    "a quiet window closes, and the next notice goes at once": (30, [
        ("offer", 0, "eng", "a", SENT),
        ("due", 30, []),
        ("offer", 40, "eng", "b", SENT),
    ]),
    "a notice after the window ended, before it was flushed, joins the batch": (30, [
        ("offer", 0, "eng", "a", SENT),
        ("offer", 10, "eng", "b", HELD),
        ("offer", 35, "eng", "c", HELD),
        ("due", 35, [("eng", ("b", "c"))]),
    ]),
    "a window of nothing sends every notice on its own": (0, [
        ("offer", 0, "eng", "a", SENT),
        ("offer", 0, "eng", "b", SENT),
        ("due", 0, []),
    ]),
}


@pytest.mark.parametrize("window_s, steps", CASES.values(), ids=CASES.keys())
def test_batching(window_s: float, steps: list[tuple[Any, ...]]) -> None:
    batcher: NoticeBatcher[str, str] = NoticeBatcher(timedelta(seconds=window_s))
    for step in steps:
        now = T0 + timedelta(seconds=step[1])
        if step[0] == "offer":
            _, _, contact, notice, expected = step
            got = batcher.offer(contact, notice, now)
            assert (SENT if got == notice else HELD) == expected, step
        else:
            assert [(b.key, b.items) for b in batcher.due(now)] == step[2], step


def test_next_due_is_the_earliest_window_end_and_none_once_all_closed() -> None:
    batcher: NoticeBatcher[str, str] = NoticeBatcher(timedelta(seconds=30))
    assert batcher.next_due() is None
    batcher.offer("eng", "a", T0)
    batcher.offer("coordinator", "b", T0 + timedelta(seconds=5))
    assert batcher.next_due() == T0 + timedelta(seconds=30)
    batcher.due(T0 + timedelta(seconds=40))
    assert batcher.next_due() is None


def test_a_batch_says_when_its_window_opened_and_flush_empties_everything() -> None:
    batcher: NoticeBatcher[str, str] = NoticeBatcher(timedelta(seconds=30))
    batcher.offer("eng", "a", T0)
    batcher.offer("eng", "b", T0 + timedelta(seconds=3))
    assert batcher.held() == 1
    [batch] = batcher.flush()
    assert (batch.items, batch.opened_at) == (("b",), T0)
    assert batcher.held() == 0 and batcher.next_due() is None


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 5)), max_size=60))
def test_every_notice_goes_out_exactly_once(offers: list[tuple[str, float]]) -> None:
    """Sent at once, or in exactly one batch: nothing lost, nothing twice."""
    batcher: NoticeBatcher[str, int] = NoticeBatcher(timedelta(seconds=10))
    now, out = T0, []
    for number, (contact, gap) in enumerate(offers):
        now += timedelta(seconds=gap)
        out += [b for batch in batcher.due(now) for b in batch.items]
        if batcher.offer(contact, number, now) is not None:
            out.append(number)
    out += [b for batch in batcher.flush() for b in batch.items]
    assert sorted(out) == list(range(len(offers)))


def _lines(offline: int, homes: int, low: int = 0) -> list[NoticeLine]:
    lines = [NoticeLine(f"home-{i % homes}", f"P{i % homes}", AlertKind.DEVICE_OFFLINE, f"dev-{i}")
             for i in range(offline)]
    return lines + [NoticeLine("home-0", "P0", AlertKind.LOW_BATTERY, "bed") for _ in range(low)]


WORDS = [
    (_lines(412, 37), "412 devices offline in 37 homes", "412 devices offline in 37 homes since 02:10."),
    (_lines(2, 1), "2 devices offline in 1 home", "2 devices offline in 1 home since 02:10."),
    (_lines(3, 2, low=1), "3 devices offline, 1 battery low in 2 homes",
     "3 devices offline, 1 battery low in 2 homes since 02:10."),
]


@pytest.mark.parametrize("lines, title, first", WORDS)
def test_batch_words_count_first_then_name_a_few_homes(lines: list[NoticeLine], title: str, first: str) -> None:
    got_title, body = batch_words(lines, "02:10")
    assert got_title == title
    rows = body.splitlines()
    assert rows[0] == first
    assert rows[1] == "- P0's home: dev-0 device offline"
    named = [r for r in rows if r.startswith("- ")]
    assert len(named) == min(5, len(lines))
    assert (f"... and {len(lines) - 5} more." in rows) == (len(lines) > 5)
    assert "acknowledge" in rows[-1]


def test_all_clears_are_counted_apart_from_the_notices() -> None:
    back = [NoticeLine(f"home-{i}", f"P{i}", AlertKind.DEVICE_OFFLINE, "bed", over=True) for i in range(3)]
    title, body = batch_words([*back, NoticeLine("home-9", "P9", AlertKind.LOW_BATTERY, "bed")], "06:40")
    assert title == "3 devices back online, 1 battery low in 4 homes"
    assert body.splitlines()[1] == "- P0's home: bed device back online"
