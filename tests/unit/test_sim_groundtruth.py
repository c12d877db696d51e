"""The ground-truth lifecycle, computed from the contract without the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from simulator import groundtruth as gt
from simulator.personas import get_persona

HOME = get_persona("julie").home()  # night 22:00-07:30 London, Sam then Night responder
ARTHUR = get_persona("arthur").home()  # three contacts, ack 8m, repeat 4m
T = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def steps(lines: list[gt.Expected]) -> list[tuple[str, str, int, str | None]]:
    return [(e.step, e.kind, int((e.at - T) / M), e.contact) for e in lines]


def test_escalation_order_and_repeats() -> None:
    two = list(islice(gt.send_times(HOME, T), 4))
    assert [(int((at - T) / M), c) for at, _, c in two] == [
        (0, "Sam (daughter)"), (10, "Night responder"), (15, "Night responder"), (20, "Night responder")]
    three = list(islice(gt.send_times(ARTHUR, T), 4))
    assert [int((at - T) / M) for at, _, _ in three] == [0, 8, 16, 20]


def test_a_second_condition_joins_the_open_alert() -> None:
    conds = [gt.Condition("still_while_up", T), gt.Condition("out_of_bed_too_long", T + 25 * M)]
    lines = gt.safety_lines(HOME, conds, [], T + 31 * M)
    assert steps(lines) == [("raised", "still_while_up", 0, None),
                            ("notified", "still_while_up", 0, "Sam (daughter)"),
                            ("escalated", "still_while_up", 10, "Night responder"),
                            ("escalated", "still_while_up", 15, "Night responder"),
                            ("escalated", "still_while_up", 20, "Night responder"),
                            ("escalated", "still_while_up", 25, "Night responder"),
                            ("escalated", "still_while_up", 30, "Night responder")]
    assert lines[-1].reasons == ("still_while_up", "out_of_bed_too_long")


def test_acknowledgement_stops_escalation_and_resolution_waits_for_every_condition() -> None:
    conds = [gt.Condition("not_back_after_exit", T, T + 40 * M),
             gt.Condition("out_of_bed_too_long", T + 5 * M, T + 45 * M)]
    ack = gt.Action(T + 12 * M + timedelta(seconds=5), "ack", "Night responder")
    lines = gt.safety_lines(HOME, conds, [ack], T + 60 * M)
    assert [s for s, *_ in steps(lines)] == ["raised", "notified", "escalated", "acknowledged",
                                               "resolved"]
    assert steps(lines)[-1] == ("resolved", "not_back_after_exit", 45, None)


def test_button_is_help_with_no_alert_and_im_ok_with_one() -> None:
    press = gt.Action(T, "press", "Julie")
    assert steps(gt.safety_lines(HOME, [], [press], T + M))[:2] == [
        ("raised", "help_requested", 0, None), ("notified", "help_requested", 0, "Sam (daughter)")]
    conds = [gt.Condition("out_of_bed_too_long", T - 2 * M)]
    lines = gt.safety_lines(HOME, conds, [press], T + 30 * M)
    assert steps(lines)[-1] == ("resolved", "out_of_bed_too_long", 0, "Julie")


def test_simultaneous_input_and_timer_is_refused() -> None:
    ack = gt.Action(T + 10 * M, "ack", "Sam (daughter)")
    with pytest.raises(gt.AmbiguousTie):
        gt.safety_lines(HOME, [gt.Condition("still_while_up", T)], [ack], T + 20 * M)


def test_out_of_bed_is_not_raised_after_the_night_ends_across_dst() -> None:
    left = datetime(2026, 3, 29, 5, 50, tzinfo=UTC)  # 06:50 BST, the night ends 06:30 UTC
    assert gt.out_of_bed_onset(HOME, left) is None
    assert gt.still_onset(HOME, left, None) == left + 20 * M
    assert gt.night_of(HOME, left) == (datetime(2026, 3, 28, 22, 0, tzinfo=UTC),
                                       datetime(2026, 3, 29, 6, 30, tzinfo=UTC))


def test_low_battery_told_in_daytime_offline_at_once() -> None:
    issues = [gt.ServiceIssue("low_battery", "bed", T),
              gt.ServiceIssue("device_offline", "hall-motion", T + M, T + 30 * M)]
    lines = gt.merge(gt.service_lines(HOME, issues, T + 8 * 60 * M))
    assert steps(lines) == [("raised", "low_battery", 0, None),
                            ("raised", "device_offline", 1, None),
                            ("notified", "device_offline", 1, "Tecmon service desk"),
                            ("resolved", "device_offline", 30, None),
                            ("notified", "low_battery", 330, "Tecmon service desk")]


def test_nothing_is_raised_while_away() -> None:
    away = datetime(2026, 12, 25, 2, 0, tzinfo=UTC)
    assert gt.safety_lines(HOME, [gt.Condition("still_while_up", away)], [], away + 60 * M) == []


def test_a_single_contact_is_called_again_every_repeat() -> None:
    alone = HOME.model_copy(update={"contacts": HOME.contacts[:1]})
    sends = list(islice(gt.send_times(alone, T), 3))
    assert [(int((at - T) / M), step) for at, step, _ in sends] == [
        (0, "notified"), (5, "escalated"), (10, "escalated")]
