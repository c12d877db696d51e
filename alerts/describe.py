"""A home configuration read back in plain words, for the person and their carers.

`tecmon check-config` prints this so a care coordinator can read the routine
back to the person and hear whether it says what they meant.
"""

from __future__ import annotations

from alerts.durations import describe_duration
from alerts.events import EventKind
from alerts.homeconfig import Contact, Device, HomeConfig
from alerts.plan import DevicePlan, plan_from_config

KIND_WORDS = {EventKind.BED: "bed sensor", EventKind.DOOR: "door sensor", EventKind.MOTION: "motion sensor",
              EventKind.BUTTON: "button", EventKind.LIGHT: "light"}
ACTION_WORDS = {"single": "once", "double": "twice", "triple": "three times", "hold": "and holds it",
                "long": "and holds it"}


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
    return lines + _care_lines(cfg)


def _care_lines(cfg: HomeConfig) -> list[str]:
    """routine.check_with_me and routine.company, as the person would say them."""
    r, name, lines = cfg.routine, cfg.person.name, []
    if r.check_with_me:
        within = describe_duration(r.check_with_me.within)
        lines.append(
            f"Ask {name} first: before anyone is called because {name} is up too long, still while up, "
            f"not in bed or not up, the {r.check_with_me.device} light blinks; if {name} presses the "
            f"button within {within}, nobody is called. A call for help and going out of an exit door "
            "are never held back."
        )
    if r.company:
        action = r.company.action.lower()
        press = f"presses the button {ACTION_WORDS.get(action, f'with {action!r}')}"
        lines.append(
            f"When someone is with {name}, {name} {press} (or a carer says so in the app): nobody is "
            f"called for {describe_duration(r.company.for_)} unless {name} asks for help; the same press "
            "again says they have left."
        )
    return lines


def _device_lines(cfg: HomeConfig) -> list[str]:
    """One line per device: what it is, and what the service expects of it."""
    plan = plan_from_config(cfg)
    return [_device_line(cfg, d, plan.devices[d.id]) for d in cfg.devices]


def _device_line(cfg: HomeConfig, device: Device, dev: DevicePlan) -> str:
    from device_profiles import get_profile

    name, facts = cfg.person.name, []
    room = f" in the {device.room}" if device.room else ""
    what = ("exit door sensor" if device.exit else KIND_WORDS.get(device.kind, str(device.kind)))
    if get_profile(device.profile).bind(device.kind, device.options).readings[0].field == "presence":
        facts.append("a presence radar: someone in its range counts as "
                     + ("in bed" if device.kind is EventKind.BED else "moving, even when nearly still"))
    if dev.heartbeat:
        silent = describe_duration(dev.heartbeat + cfg.routine.device_offline_after)
        facts.append(f"reports at least every {describe_duration(dev.heartbeat)} (silent for {silent}, "
                     "the service is told)")
    if device.kind is EventKind.MOTION:
        facts.append(f"should see {name} at least every {describe_duration(dev.expect_movement)} while "
                     f"{name} is up and about (otherwise the service is told)" if dev.expect_movement
                     else "seeing nobody for a long time is not reported")
    if cfg.routine.check_with_me and cfg.routine.check_with_me.device == device.id:
        facts.append(f"blinks to ask {name} first")
    return f"Device {device.id}: {what}{room}" + "".join(f"; {fact}" for fact in facts) + "."


def _summary_lines(contacts: list[Contact], name: str) -> list[str]:
    return [f"{c.name} gets a short account of {name}'s night every morning at {c.morning_summary:%H:%M} "
            "(how long in bed, times up, any alerts); none while away."
            for c in contacts if c.morning_summary is not None]


def explain(cfg: HomeConfig) -> list[str]:
    """Plain-words summary, one line per fact; URLs are redacted."""
    esc = cfg.escalation
    lines = [f"{cfg.person.name} ({cfg.home}), {len(cfg.devices)} devices."]
    if cfg.person.in_my_words:
        lines.append(f'In {cfg.person.name}\'s words: "{cfg.person.in_my_words}"')
    lines += _routine_lines(cfg)
    lines.append(f"Contacts, in order: {_contacts(cfg.contacts) or 'none (alerts are only recorded)'}.")
    lines += _summary_lines(cfg.contacts, cfg.person.name)
    if cfg.service_contacts:
        lines.append(f"Service contacts (device problems): {_contacts(cfg.service_contacts)}.")
        lines += _summary_lines(cfg.service_contacts, cfg.person.name)
    lines.append(
        f"If nobody acknowledges within {describe_duration(esc.ack_within)}, the next contact "
        f"is called; the last one is called again every {describe_duration(esc.repeat_every)}."
    )
    for period in cfg.away:
        why = f" ({period.reason})" if period.reason else ""
        lines.append(f"Away {period.from_:%Y-%m-%d %H:%M} to {period.to:%Y-%m-%d %H:%M}{why}: no alerts.")
    return lines + _device_lines(cfg)  # the person's routine first, then what each sensor is
