"""A home configuration read back in plain words, for the person and their carers.

`tecmon check-config` prints this so a care coordinator can read the routine
back to the person and hear whether it says what they meant.
"""

from __future__ import annotations

from alerts.durations import describe_duration
from alerts.homeconfig import Contact, HomeConfig


def redact_url(url: str) -> str:
    """Only the scheme: notification URLs carry tokens and phone numbers."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep else "…"


def _contacts(contacts: list[Contact]) -> str:
    return ", ".join(
        f"{i}. {c.name} ({', '.join(redact_url(u) for u in c.notify)})"
        for i, c in enumerate(contacts, start=1)
    )


def _routine_lines(cfg: HomeConfig) -> list[str]:
    r, name = cfg.routine, cfg.person.name
    night = f"{r.night.from_:%H:%M} to {r.night.to:%H:%M}"
    lines = [f"Night: {night} ({cfg.timezone} local time)."]
    if r.out_of_bed:
        after = describe_duration(r.out_of_bed.alert_after)
        lines.append(f"Call if {name} is out of bed for {after} at night.")
    if r.exit_door:
        within = r.exit_door.alert_if_not_back_within
        when = "at once" if not within else f"if not back within {describe_duration(within)}"
        lines.append(f"Call {when} when {name} goes out of an exit door at night.")
    if r.still_while_up:
        lines.append(
            f"Call if {name} is up and no movement is seen for "
            f"{describe_duration(r.still_while_up.alert_after)}."
        )
    if r.in_bed_by:
        lines.append(f"Call if {name} is not in bed by {r.in_bed_by:%H:%M}.")
    if r.up_by:
        lines.append(f"Call if {name} is still in bed at {r.up_by:%H:%M}.")
    offline = describe_duration(r.device_offline_after)
    lines.append(f"Tell the service when a sensor is offline for {offline}.")
    stuck = describe_duration(r.bed_occupied_max)
    lines.append(f"Tell the service if the bed says {name} has been in bed for {stuck} without a break.")
    return lines


def explain(cfg: HomeConfig) -> list[str]:
    """Plain-words summary, one line per fact; URLs are redacted."""
    esc = cfg.escalation
    lines = [f"{cfg.person.name} ({cfg.home}), {len(cfg.devices)} devices."]
    if cfg.person.in_my_words:
        lines.append(f'In {cfg.person.name}\'s words: "{cfg.person.in_my_words}"')
    lines += _routine_lines(cfg)
    lines.append(f"Contacts, in order: {_contacts(cfg.contacts) or 'none (alerts are only recorded)'}.")
    if cfg.service_contacts:
        lines.append(f"Service contacts (device problems): {_contacts(cfg.service_contacts)}.")
    lines.append(
        f"If nobody acknowledges within {describe_duration(esc.ack_within)}, the next contact "
        f"is called; the last one is called again every {describe_duration(esc.repeat_every)}."
    )
    for period in cfg.away:
        why = f" ({period.reason})" if period.reason else ""
        lines.append(f"Away {period.from_:%Y-%m-%d %H:%M} to {period.to:%Y-%m-%d %H:%M}{why}: no alerts.")
    return lines
