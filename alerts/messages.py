"""What a contact reads on their phone: a title and a few short lines, in plain words.

The person woken at 3 a.m. sees the lock screen first, so the title says who
and what, and the body opens with the time and the engine's reason (which
quotes the person's own routine). The person's own words come after, because
they tell the carer what is normal for *this* person, and the last line says
how to acknowledge so that nobody else is woken needlessly: a link to tap when
the service has a public address, else the deployment's hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alerts.decisions import (
    SERVICE_NOTICES,
    AlertInfo,
    AlertKind,
    AlertResolved,
    Decision,
    SendAlert,
    SendSummary,
)
from alerts.plan import ContactPlan, HomePlan

Tone = Literal["alert", "notice", "all_clear"]
"""How it looks on the phone: person-safety alert, service notice, or over."""

Urgency = Literal["urgent", "normal", "low"]
"""How hard the phone tries to be noticed: person-safety alerts wake someone (the channel's
highest priority); device notices and summaries wait quietly; all-clears are ordinary."""

WORDS_LIMIT = 140
"""The person's own words are context, not the news: clip them so the reason stays visible."""

DEFAULT_ACK_HINT = "Acknowledge alert {kind} in tecmon when you are on it"
"""Format string; `{alert}` is the alert id, `{kind}` its kind. Deployments point it at their own page."""

WHAT_HAPPENED: dict[AlertKind, str] = {
    AlertKind.OUT_OF_BED_TOO_LONG: "out of bed too long",
    AlertKind.NOT_BACK_AFTER_EXIT: "went out and is not back",
    AlertKind.STILL_WHILE_UP: "up and not moving",
    AlertKind.NOT_IN_BED_BY: "not in bed yet",
    AlertKind.NOT_UP_BY: "not up yet",
    AlertKind.HELP_REQUESTED: "pressed for help",
    AlertKind.DEVICE_OFFLINE: "sensor offline",
    AlertKind.LOW_BATTERY: "battery low",
    AlertKind.BED_OCCUPIED_TOO_LONG: "says occupied for too long",
    AlertKind.MOTION_SILENT: "sees no movement",
}

_PERSON_WORDS_HELP = frozenset(AlertKind) - {AlertKind.HELP_REQUESTED} - SERVICE_NOTICES
"""Kinds where "what is normal for me" helps the carer judge; a help press speaks for itself."""


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, ready for any channel; `alert_id` ties deliveries back to the alert."""

    alert_id: str
    title: str
    body: str
    tone: Tone
    link: str | None = None
    """Where the contact acknowledges with one tap (already in the body); channels that can open a
    URL from the notification itself (ntfy's click action) use it too."""
    urgency: Urgency = "normal"
    """Channels with a priority (ntfy) send at it; "normal" leaves the contact's own setting."""


def headline(plan: HomePlan, alert: AlertInfo) -> str:
    """Who and what, e.g. `Julie: out of bed too long`; device problems name the device and home."""
    what = WHAT_HAPPENED[alert.kind]
    if alert.kind.person_safety:
        return f"{plan.person}: {what}"
    device = f"{alert.device} " if alert.device else ""
    return f"{plan.person}'s home: {device}{what}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _their_words(plan: HomePlan, kind: AlertKind) -> str | None:
    if kind not in _PERSON_WORDS_HELP or not plan.in_my_words.strip():
        return None
    return f'In {plan.person}\'s words: "{_clip(plan.in_my_words, WORDS_LIMIT)}"'


def _ack_line(alert: AlertInfo, hint: str, link: str | None) -> str:
    if link is not None:  # the URL on its own line, so no phone takes a full stop for part of it
        if alert.kind.person_safety:
            return f"Say you are dealing with it, so the calls stop:\n{link}"
        return f"Acknowledge it here:\n{link}"
    line = hint.format(alert=alert.id, kind=alert.kind.value)
    if alert.kind.person_safety:
        return f"{line}, so the calls stop."
    return f"{line}."


def alert_message(
    decision: SendAlert, plan: HomePlan, ack_hint: str = DEFAULT_ACK_HINT, link: str | None = None
) -> Message:
    """What to tell the contact being called now; an escalation says nobody has answered yet.

    `link` (made by the shell: it is signed, and for this contact only) replaces the hint.
    """
    alert = decision.alert
    title = headline(plan, alert)
    lines = [f"At {plan.local(decision.at)}: {decision.reason}"]
    if decision.escalation:
        title += " (not yet acknowledged)"
        lines.append("Nobody could be reached; you are the next contact." if decision.unreached
                     else "Nobody has acknowledged this yet; you are the next contact.")
    words = _their_words(plan, alert.kind)
    if words:
        lines.append(words)
    lines.append(_ack_line(alert, ack_hint, link))
    if alert.kind.person_safety:
        return Message(alert.id, title, "\n".join(lines), "alert", link, "urgent")
    return Message(alert.id, title, "\n".join(lines), "notice", link, "low")


def all_clear_message(decision: AlertResolved, plan: HomePlan) -> Message:
    """Tell someone already called that it is over, and why, so they can stand down."""
    alert = decision.alert
    if alert.kind.person_safety:
        title = f"{plan.person}: all clear"
    else:
        device = f" {alert.device}" if alert.device else ""
        title = f"{plan.person}'s home:{device} all clear"
    lines = [
        f"At {plan.local(decision.at)}: {decision.reason}",
        f"The alert ({WHAT_HAPPENED[alert.kind]}) is closed; nothing more to do.",
    ]
    urgency: Urgency = "normal" if alert.kind.person_safety else "low"
    return Message(alert.id, title, "\n".join(lines), "all_clear", urgency=urgency)


def summary_message(decision: SendSummary, plan: HomePlan) -> Message:
    """The morning account: news, not an alarm, so it is sent at low urgency."""
    title = f"{plan.person}: the night"
    return Message(decision.id, title, decision.text, "notice", urgency="low")


def outgoing(
    decision: Decision, plan: HomePlan, ack_hint: str = DEFAULT_ACK_HINT
) -> tuple[tuple[ContactPlan, Message], ...]:
    """Every (contact, message) a decision calls for; raised/acknowledged steps send nothing."""
    if isinstance(decision, SendAlert):
        return ((decision.contact, alert_message(decision, plan, ack_hint)),)
    if isinstance(decision, SendSummary):
        return ((decision.contact, summary_message(decision, plan)),)
    if isinstance(decision, AlertResolved) and decision.tell:
        message = all_clear_message(decision, plan)
        return tuple((contact, message) for contact in decision.tell)
    return ()
