"""When someone was with the person in a night, from the stored company inputs (the night page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.history.nights import Night, company_spans
from gateway.store.base import InputRow

T = datetime(2026, 1, 12, 22, 0, tzinfo=UTC)
H = timedelta(hours=1)
NIGHT = Night(T.date(), T, T + 9 * H, T + 24 * H)
LASTS = 2 * H


def row(hours: float, on: bool, by: str = "Sam") -> InputRow:
    return InputRow("julie", "company", "", by, "on" if on else "off", T + hours * H)


def spans(*rows: InputRow) -> list[tuple[float, float, str, str | None]]:
    return [((datetime.fromisoformat(s["from"]) - T) / H, (datetime.fromisoformat(s["to"]) - T) / H,
             s["by"], s["ended_by"]) for s in company_spans(rows, NIGHT, LASTS)]


@pytest.mark.parametrize(("rows", "expected"), [
    ((row(1, True), row(2, False, "Julie")), [(1, 2, "Sam", "Julie")]),  # ended by the double press
    ((row(1, True),), [(1, 3, "Sam", None)]),  # its time ran out at exactly start + for
    ((row(1, True), row(2.5, True)), [(1, 4.5, "Sam", None)]),  # "on" again: the time starts again
    ((row(1, True), row(3, False)), [(1, 3, "Sam", None)]),  # the "off" at its end changes nothing
    ((row(-1, True),), [(0, 1, "Sam", None)]),  # started in the evening: from the night's start
    ((row(8.5, True),), [(8.5, 9, "Sam", None)]),  # past the night's end: up to it
    ((row(-3, True),), []),  # over before the night began
    ((row(1, False),), []),  # an "off" with nothing on
])
def test_company_spans(rows: tuple[InputRow, ...], expected: list[tuple[float, float, str, str | None]]) -> None:
    assert spans(*rows) == expected


def test_other_inputs_are_not_company() -> None:
    ack = InputRow("julie", "ack", "julie:x:out_of_bed_too_long", "Sam", None, T + H)
    assert company_spans([ack], NIGHT, LASTS) == []
