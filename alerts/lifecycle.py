"""The alert lifecycle: raised -> notified -> escalated -> acknowledged -> resolved.

Pure functions over `HomeState`; each appends the decisions it makes to `out`.
Person-safety alerts go to the person's contacts in order (the service
contacts when the home has none) and escalate until someone acknowledges;
device problems go to the service's own contacts once, and a low battery
waits for daytime rather than waking anyone.
"""

from __future__ import annotations

from datetime import datetime

from alerts import care, reasons, summary
from alerts.decisions import (
    AlertAcknowledged,
    AlertInfo,
    AlertKind,
    AlertRaised,
    AlertResolved,
    Decision,
    ResolvedHow,
    SendAlert,
)
from alerts.state import HomeState, OpenAlert

Out = list[Decision]


def _alert_id(home: str, kind: AlertKind, at: datetime, device: str | None) -> str:
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    return f"{home}:{stamp}:{kind}" + (f":{device}" if device else "")


def home_of(alert_id: str) -> str:
    """The home an alert id belongs to (home ids cannot contain ':')."""
    return alert_id.split(":", 1)[0]


def raise_alert(
    state: HomeState, kind: AlertKind, at: datetime, reason: str, out: Out,
    device: str | None = None,
) -> None:
    """Raise, or add the reason to the open person-safety alert. Nothing during `away`,
    nor (but help) in company mode; the person may be asked before anyone is called."""
    plan = state.plan
    if plan.away_at(at) or care.paused(state, kind, at):
        return
    if kind.person_safety and state.safety is not None:
        state.safety.reasons.setdefault(kind, reason)
        care.joined(state.safety, kind, at)
        return
    key = (kind, device or "")
    if not kind.person_safety and key in state.service:
        return
    info = AlertInfo(_alert_id(plan.home, kind, at, device), plan.home, kind, device)
    # A home with no contacts of its own falls back to the service: never to nobody.
    audience = (plan.contacts or plan.service_contacts) if kind.person_safety else plan.service_contacts
    first_call = plan.night.daytime_from(at) if kind is AlertKind.LOW_BATTERY else at
    alert = OpenAlert(
        info=info, raised_at=at, reasons={kind: reason}, audience=audience,
        escalates=kind.person_safety, notify_at=first_call if audience else None,
    )
    if kind.person_safety:
        state.safety = alert
        summary.on_raised(state, kind, at)
    else:
        state.service[key] = alert
    out.append(AlertRaised(info, at, reason))
    if kind.person_safety:
        care.ask_first(state, alert, at, out)


def notify_due(state: HomeState) -> datetime | None:
    if state.safety is None and not state.service:
        return None  # the usual case, asked after every event
    dues = [a.notify_at for a in state.open_alerts() if a.notify_at is not None]
    return min(dues) if dues else None


def send_due(state: HomeState, at: datetime, out: Out) -> None:
    """Call whoever is due now: the next contact, or the last one again."""
    for alert in state.open_alerts():
        if alert.notify_at is not None and alert.notify_at <= at:
            _call_next(state, alert, at, out)


def _call_next(state: HomeState, alert: OpenAlert, at: datetime, out: Out) -> None:
    text = " ".join(alert.reasons.values())
    if not alert.escalates:
        for contact in alert.audience:
            alert.notified.append(contact)
            out.append(SendAlert(alert.info, at, contact, False, text))
        alert.notify_at = None
        return
    last = len(alert.audience) - 1
    index = min(alert.next_contact, last)
    contact = alert.audience[index]
    if contact not in alert.notified:
        alert.notified.append(contact)
    unreached = tuple(name for name in alert.unreached if name != contact.name)
    if unreached:
        text += f" {reasons.could_not_reach(unreached)}"
    out.append(SendAlert(alert.info, at, contact, alert.next_contact > 0, text, unreached))
    alert.next_contact += 1
    wait = state.plan.ack_within if alert.next_contact <= last else state.plan.repeat_every
    alert.notify_at = at + wait


def clear_condition(
    state: HomeState, kind: AlertKind, at: datetime, reason: str, out: Out,
    device: str | None = None,
) -> None:
    """A condition stopped holding; the alert resolves when none of its conditions hold."""
    if state.safety is None and not state.service:
        return  # nothing open: the usual case, asked on most events
    if kind.person_safety:
        alert = state.safety
        if alert is None or kind not in alert.reasons:
            return
        del alert.reasons[kind]
        if not alert.reasons:
            resolve(state, alert, at, "condition", reason, out)
    else:
        service_alert = state.service.get((kind, device or ""))
        if service_alert is not None:
            resolve(state, service_alert, at, "condition", reason, out)


def resolve(
    state: HomeState, alert: OpenAlert, at: datetime, how: ResolvedHow, reason: str, out: Out,
    by: str | None = None, outcome: str | None = None,
) -> None:
    if alert is state.safety:
        state.safety = None
    else:
        state.service.pop((alert.info.kind, alert.info.device or ""), None)
    out.append(
        AlertResolved(alert.info, at, how, reason, by, outcome, tuple(alert.notified))
    )


def find_alert(state: HomeState, ref: str) -> OpenAlert | None:
    return next((a for a in state.open_alerts() if a.matches(ref)), None)


def acknowledge(state: HomeState, ref: str, by: str, at: datetime, out: Out) -> None:
    alert = find_alert(state, ref)
    if alert is None or alert.acknowledged_by is not None:
        return
    alert.acknowledged_by = by
    alert.notify_at = None
    out.append(AlertAcknowledged(alert.info, at, by, reasons.acknowledged(by)))


def resolve_by_carer(
    state: HomeState, ref: str, by: str, outcome: str, at: datetime, out: Out
) -> None:
    alert = find_alert(state, ref)
    if alert is not None:
        resolve(state, alert, at, "carer", reasons.carer_outcome(by, outcome), out, by, outcome)


def delivery_failed(state: HomeState, ref: str, contact: str, at: datetime) -> None:
    """Nobody answered on any channel: call the next contact now, not in ten minutes."""
    alert = find_alert(state, ref)
    if alert is None or not alert.escalates or alert.acknowledged_by is not None:
        return
    if contact not in alert.unreached:
        alert.unreached.append(contact)
    current = alert.audience[min(alert.next_contact, len(alert.audience)) - 1]
    if current.name == contact and alert.next_contact < len(alert.audience):
        alert.notify_at = at
