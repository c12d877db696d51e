"""What a contact's phone shows: alerts, escalations and all-clears in plain words and the home's local time.

A message names the person and what happened, gives the engine's reason, says
how to acknowledge, and fits a lock screen even with long words of the
person's own.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts.decisions import AlertAcknowledged, AlertKind, AlertRaised, AlertResolved, Decision, SendAlert
from alerts.homeconfig import load_home_config
from alerts.messages import WHAT_HAPPENED, alert_message, all_clear_message, outgoing
from gateway.replay import run_replay
from tests.unit.notify_support import DATA, PLAN, RESPONDER, SAM, SUMMER, _info

# --- messages ---------------------------------------------------------------------------------

SEND_CASES = [
    (AlertKind.OUT_OF_BED_TOO_LONG, None, "Julie has been out of bed for 45 minutes (since 01:29); Julie's routine says to call after 45 minutes.", True),
    (AlertKind.NOT_BACK_AFTER_EXIT, None, "The front-door (hall) door opened at 01:59 during the night and Julie has not been seen back inside.", True),
    (AlertKind.STILL_WHILE_UP, None, "Julie is up and no movement has been seen for 20 minutes (since 01:54).", True),
    (AlertKind.NOT_IN_BED_BY, None, "Julie is not in bed at 02:14; Julie's routine says in bed by then.", True),
    (AlertKind.NOT_UP_BY, None, "Julie is still in bed at 10:30; Julie's routine says up by then.", True),
    (AlertKind.HELP_REQUESTED, None, "Julie pressed the help button ok-button (bedroom) at 02:14.", False),
    (AlertKind.DEVICE_OFFLINE, "hall-motion", "The hall-motion (hall) sensor in Julie's home has been offline since 02:04.", False),
    (AlertKind.LOW_BATTERY, "bed", "The bed (bedroom) sensor battery is at 12% in Julie's home; please replace it.", False),
]


@pytest.mark.parametrize(("kind", "device", "reason", "words"), SEND_CASES, ids=[c[0].value for c in SEND_CASES])
def test_alert_message_names_the_person_what_happened_the_reason_and_the_local_time(
    kind: AlertKind, device: str | None, reason: str, words: bool
) -> None:
    msg = alert_message(SendAlert(_info(kind, device), SUMMER, SAM, False, reason), PLAN)
    assert msg.title.startswith("Julie")
    assert WHAT_HAPPENED[kind] in msg.title
    if device:
        assert device in msg.title
    assert reason in msg.body
    assert "At 02:14:" in msg.body  # local (BST) time, not UTC 01:14
    assert ("I get up for the loo" in msg.body) is words
    assert kind.value in msg.body.splitlines()[-1]  # how to acknowledge, last
    assert msg.tone == ("alert" if kind.person_safety else "notice")
    assert msg.alert_id == _info(kind, device).id
    assert "not yet acknowledged" not in msg.title


def test_escalation_says_nobody_has_acknowledged_and_you_are_next() -> None:
    msg = alert_message(SendAlert(_info(AlertKind.OUT_OF_BED_TOO_LONG), SUMMER, RESPONDER, True, "r."), PLAN)
    assert msg.title == "Julie: out of bed too long (not yet acknowledged)"
    assert "you are the next contact" in msg.body
    assert "so the calls stop" in msg.body


def test_ack_hint_can_point_at_the_deployments_own_page() -> None:
    decision = SendAlert(_info(AlertKind.HELP_REQUESTED), SUMMER, SAM, False, "r.")
    msg = alert_message(decision, PLAN, ack_hint="Open https://care.example/ack/{alert}")
    assert f"Open https://care.example/ack/{decision.alert.id}, so the calls stop." in msg.body


RESOLVED_CASES = [
    ("person", "Julie pressed the button ok-button (bedroom): I'm OK.", None),
    ("carer", "Resolved by Sam: false alarm: making tea", "false alarm: making tea"),
    ("condition", "Julie is back in bed.", None),
]


@pytest.mark.parametrize(("how", "reason", "outcome"), RESOLVED_CASES, ids=[c[0] for c in RESOLVED_CASES])
def test_all_clear_says_it_is_over_and_why(how: str, reason: str, outcome: str | None) -> None:
    decision = AlertResolved(
        _info(AlertKind.OUT_OF_BED_TOO_LONG), SUMMER, how, reason, "Sam" if outcome else None,  # type: ignore[arg-type]
        outcome, (SAM, RESPONDER),
    )
    msg = all_clear_message(decision, PLAN)
    assert msg.title == "Julie: all clear"
    assert reason in msg.body
    assert "At 02:14:" in msg.body
    assert "out of bed too long" in msg.body
    assert msg.tone == "all_clear"


def test_device_all_clear_names_the_home_and_device() -> None:
    decision = AlertResolved(_info(AlertKind.DEVICE_OFFLINE, "bed"), SUMMER, "condition", "The bed sensor is reporting again.")
    assert all_clear_message(decision, PLAN).title == "Julie's home: bed all clear"


def test_outgoing_calls_the_contact_or_tells_everyone_already_called() -> None:
    info = _info(AlertKind.OUT_OF_BED_TOO_LONG)
    send = SendAlert(info, SUMMER, SAM, False, "r.")
    resolved = AlertResolved(info, SUMMER, "person", "I'm OK.", tell=(SAM, RESPONDER))
    assert [c for c, _ in outgoing(send, PLAN)] == [SAM]
    assert [(c, m.title) for c, m in outgoing(resolved, PLAN)] == [(SAM, "Julie: all clear"), (RESPONDER, "Julie: all clear")]
    assert outgoing(replace(resolved, tell=()), PLAN) == ()
    assert outgoing(AlertRaised(info, SUMMER, "r."), PLAN) == ()
    assert outgoing(AlertAcknowledged(info, SUMMER, "Sam", "Acknowledged by Sam."), PLAN) == ()


def test_messages_fit_a_lock_screen_even_with_long_own_words() -> None:
    chatty = replace(PLAN, in_my_words="I like to potter about at night. " * 20)
    msg = alert_message(SendAlert(_info(AlertKind.STILL_WHILE_UP), SUMMER, RESPONDER, True, SEND_CASES[2][2]), chatty)
    assert len(msg.title) <= 60
    assert len(msg.body.splitlines()) <= 4
    assert len(msg.body) <= 450
    assert "…" in msg.body


def _night_decisions(plan_lines: list[str]) -> list[Decision]:
    out: list[Decision] = []
    run_replay([load_home_config(DATA / "julie.home.yaml")], plan_lines, out.append)
    return out


def test_a_real_night_from_the_engine_becomes_readable_messages() -> None:
    topic = "zigbee2mqtt/julie-12-oak-road"
    lines = [
        f'{{"ts": "2026-01-11T23:00:00+00:00", "topic": "{topic}/bed", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T02:14:00+00:00", "topic": "{topic}/bed", "payload": {{"occupancy": false}}}}',
        f'{{"ts": "2026-01-12T02:15:00+00:00", "topic": "{topic}/hall-motion", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T02:30:00+00:00", "topic": "{topic}/hall-motion", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T02:45:00+00:00", "topic": "{topic}/hall-motion", "payload": {{"occupancy": true}}}}',
        f'{{"ts": "2026-01-12T03:20:00+00:00", "topic": "{topic}/bed", "payload": {{"occupancy": true}}}}',
    ]
    sent = [pair for d in _night_decisions(lines) for pair in outgoing(d, PLAN)]
    titles = [m.title for _, m in sent]
    assert titles[0] == "Julie: out of bed too long"
    assert titles[-1] == "Julie: all clear"
    assert "At 02:59:" in sent[0][1].body  # January: London is on UTC
    assert all(c.name in ("Sam (daughter)", "Night responder") for c, _ in sent)

