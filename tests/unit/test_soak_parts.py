"""The soak's own reasoning, checked without a broker: what it sends, when faults come, what a duplicate is."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from gateway.dispatch import LATE_NOTICE
from tests.soak.collect import Delivery, Observed, alert_of, step_line
from tests.soak.faults import KINDS, Fault, schedule
from tests.soak.homes import HOLD, held_until
from tests.soak.report import duplicates

START = datetime(2026, 1, 11, 23, 0, tzinfo=UTC)


def line(at: str, topic: str, payload: object) -> str:
    return json.dumps({"ts": f"2026-01-11T{at}+00:00", "topic": topic, "payload": payload})


def test_the_evening_is_each_devices_latest_reading_just_before_the_start() -> None:
    lines = [
        line("18:00:00", "z/h/bed", {"occupancy": False, "last_seen": "x"}),
        line("19:00:00", "z/h/bed", {"battery": 80, "last_seen": "x"}),
        line("22:30:00", "z/h/bed", {"occupancy": True, "last_seen": "x"}),
        line("22:40:00", "z/h/bed/availability", "online"),
        line("23:10:00", "z/h/bed", {"occupancy": False, "last_seen": "x"}),
    ]
    sent = [json.loads(text) for text in held_until(lines, START)]
    assert [(o["topic"], o["payload"].get("occupancy") if isinstance(o["payload"], dict) else o["payload"])
            for o in sent] == [("z/h/bed", None), ("z/h/bed", True), ("z/h/bed/availability", "online"),
                               ("z/h/bed", False)]
    held = [datetime.fromisoformat(o["ts"]) for o in sent[:3]]
    assert held == [START - HOLD + timedelta(seconds=k) for k in range(3)], "one a second, before the start"
    assert sent[1]["payload"]["last_seen"] == sent[1]["ts"], "the device's own time moves with it"
    assert sent[3] == json.loads(lines[4]), "the night itself is unchanged"


def test_faults_are_spread_apart_and_a_random_run_has_every_kind() -> None:
    assert schedule(100, ["broker", "gateway", "postgres"], random.Random(0)) == [
        (25.0, "broker"), (50.0, "gateway"), (75.0, "postgres")]
    for seconds in (170.0, 1775.0):
        plan = schedule(seconds, None, random.Random(3))
        assert Counter(kind for _, kind in plan) == Counter({k: max(1, round(seconds / 600)) for k in KINDS})
        times = [at for at, _ in plan]
        assert times == sorted(times) and 0.1 * seconds <= times[0] and times[-1] <= 0.9 * seconds


def token(alert: str) -> str:
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"alert": alert}).encode()).decode().rstrip("=")
    return f"Say you are dealing with it:\nhttp://soak.invalid/ack/aGVhZA.{claims}.c2ln"


def test_a_delivery_names_its_alert_and_a_repeat_of_one_step_is_a_duplicate() -> None:
    alert = "soak-0001:20260112T021000Z:out_of_bed_too_long"
    assert alert_of(token(alert)) == alert
    sent = [Delivery(100.0, "soak-0001", "c0", alert, "Ann: out of bed too long", "At 02:10: left bed"),
            Delivery(101.0, "soak-0001", "c1", alert, "Ann: out of bed too long", "At 02:10: left bed")]
    assert duplicates(sent, [], Observed(), [])["total"] == 0, "two contacts, two notifications"
    again = Delivery(103.0, "soak-0001", "c0", alert, "Ann: out of bed too long (late)", "At 02:10: left bed")
    kill = Fault("gateway", 100.5, 104.0)
    found = duplicates([*sent, again], [kill], Observed(), [])
    assert (found["total"], found["resent_after_a_crash"]) == (1, 1), "re-sent after a crash, counted apart"
    found = duplicates([*sent, again], [], Observed(), [])
    assert (found["total"], found["resent_after_a_crash"]) == (1, 0)


def test_two_late_steps_of_one_alert_to_one_contact_are_two_notifications() -> None:
    """A late step's message opens with the same notice for every step: its own time is on line 2."""
    alert = "soak-0969:20260112T013439Z:not_back_after_exit"
    late = "Julie: went out and is not back (late)"
    first = step_line(f"{LATE_NOTICE}\nAt 01:44: the front door opened at 01:19\n{token(alert)}")
    later = step_line(f"{LATE_NOTICE}\nAt 03:44: the front door opened at 01:19\n{token(alert)}")
    sent = [Delivery(100.0, "soak-0969", "c1", alert, late, first),
            Delivery(300.0, "soak-0969", "c1", alert, late, later)]
    assert duplicates(sent, [], Observed(), [])["total"] == 0
    assert step_line("At 02:10: left bed\nmore") == "At 02:10: left bed"
