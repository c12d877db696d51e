"""A contact no channel reached: the next one is called at once and told why, and the record says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.decisions import SendAlert
from alerts.engine import new_state, step
from alerts.events import DeliveryFailed, EventKind, SensorEvent
from alerts.homeconfig import load_home_config
from alerts.messages import alert_message
from alerts.plan import plan_from_config

JULIE = Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml"
NIGHT = datetime(2026, 1, 13, 2, 0, tzinfo=UTC)


def test_the_next_contact_hears_that_the_first_could_not_be_reached() -> None:
    cfg = load_home_config(JULIE)
    plan = plan_from_config(cfg)
    state = new_state(plan)
    button = next(d.id for d in cfg.devices if d.kind is EventKind.BUTTON)
    state, out = step(state, SensorEvent(cfg.home, button, EventKind.BUTTON, True, NIGHT), NIGHT)
    first = next(d for d in out if isinstance(d, SendAlert))
    assert first.unreached == () and "could not reach" not in first.reason
    later = NIGHT + timedelta(seconds=40)
    state, out = step(state, DeliveryFailed(first.alert.id, first.contact.name), later)
    second = next(d for d in out if isinstance(d, SendAlert))
    assert second.escalation and second.contact.name != first.contact.name
    assert second.unreached == (first.contact.name,)
    assert second.reason.endswith(f"tecmon could not reach {first.contact.name}.")
    assert "Nobody could be reached; you are the next contact." in alert_message(second, plan).body
