"""What an acknowledgement link's page shows of its alert: from the engine where the home runs,
else (`ingest: nats`, another instance runs it) from the shared record.

A link is sent only after the step that called its contact is stored, and
an acknowledgement or resolution made through the owner is answered only
once stored, so the record is never behind what the link's holder did.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.decisions import AlertInfo, AlertKind
from alerts.messages import headline
from alerts.plan import HomePlan, plan_from_config
from alerts.state import OpenAlert
from gateway.api.context import ApiContext
from gateway.store.base import StepRow


@dataclass(frozen=True, slots=True)
class AlertView:
    """What the page shows of an open alert, in the home's own time."""

    headline: str
    reason: str
    raised: str
    called: list[str]
    acknowledged_by: str | None
    tone: str
    contacts: frozenset[str]


async def alert_view(ctx: ApiContext, alert_id: str) -> AlertView | None:
    """The alert while it is open; None once it is closed or its home is no longer monitored."""
    view = live_view(ctx, alert_id)
    if view is None and ctx.commands is not None:
        return await stored_view(ctx, alert_id)
    return view


def live_view(ctx: ApiContext, alert_id: str) -> AlertView | None:
    home = ctx.runtime.find_alert_home(alert_id)
    runtime = ctx.runtime.homes.get(home) if home else None
    alert: OpenAlert | None = None
    if runtime is not None:
        alert = next((a for a in runtime.state.open_alerts() if a.info.id == alert_id), None)
    if runtime is None or alert is None:
        return None
    plan = runtime.plan
    return AlertView(
        headline(plan, alert.info), " ".join(alert.reasons.values()),
        f"{plan.local(alert.raised_at)} ({alert.raised_at.astimezone(plan.zone):%a %d %b})",
        [c.name for c in alert.notified], alert.acknowledged_by,
        "alert" if alert.info.kind.person_safety else "notice", frozenset(c.name for c in alert.audience),
    )


async def stored_view(ctx: ApiContext, alert_id: str) -> AlertView | None:
    """The same view from the record and the home's configuration, for a home run elsewhere."""
    steps = await ctx.store.alert_steps(alert_id)
    if not steps or any(s.step == "resolved" for s in steps):
        return None
    known = ctx.homes.runtime.homes.get(steps[0].home)  # every home this instance knows
    if known is None:
        return None
    cfg = known.config
    if not cfg.service_contacts and ctx.runtime.service_contacts:
        cfg = cfg.model_copy(update={"service_contacts": ctx.runtime.service_contacts})
    return _from_steps(plan_from_config(cfg), steps)


def _from_steps(plan: HomePlan, steps: list[StepRow]) -> AlertView:
    raised = steps[0]
    kind = AlertKind(raised.kind)
    audience = (plan.contacts or plan.service_contacts) if kind.person_safety else plan.service_contacts
    called: list[str] = []
    acknowledged_by: str | None = None
    for s in steps:
        if s.step in ("notified", "escalated") and s.contact and s.contact not in called:
            called.append(s.contact)
        elif s.step == "acknowledged":
            acknowledged_by = s.contact
    return AlertView(
        headline(plan, AlertInfo(raised.alert, raised.home, kind)), raised.reason,
        f"{plan.local(raised.at)} ({raised.at.astimezone(plan.zone):%a %d %b})", called, acknowledged_by,
        "alert" if kind.person_safety else "notice", frozenset(c.name for c in audience),
    )
