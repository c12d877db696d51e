"""Plain words for every alert, quoting the person's own routine.

A carer woken at 3 a.m. should understand at once what happened and why this
is unusual *for this person*: the message says what was seen, since when, and
what the routine they agreed says.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.durations import describe_duration
from alerts.events import EventKind
from alerts.plan import DevicePlan, HomePlan


def _routine(plan: HomePlan) -> str:
    return f"{plan.person}'s routine says"


def out_of_bed(plan: HomePlan, left_at: datetime, at: datetime, after: timedelta) -> str:
    return (
        f"{plan.person} has been out of bed for {describe_duration(at - left_at)} "
        f"(since {plan.local(left_at)}); {_routine(plan)} to call after {describe_duration(after)}."
    )


def not_back(
    plan: HomePlan, door: DevicePlan, opened_at: datetime, within: timedelta,
    closed_at: datetime | None,
) -> str:
    seen = f"The {door.label} door opened at {plan.local(opened_at)} during the night"
    if within <= timedelta(0):
        return f"{seen}; {_routine(plan)} to call at once."
    if closed_at is None:
        unseen = "the door has not been seen to close"
    else:
        unseen = f"no movement, bed or button since the door closed at {plan.local(closed_at)}"
    return (
        f"{seen} and {plan.person} has not been seen back inside ({unseen}); "
        f"{_routine(plan)} to call if not back within {describe_duration(within)}."
    )


def still_while_up(plan: HomePlan, since: datetime, after: timedelta, left_bed: datetime) -> str:
    return (
        f"{plan.person} is up and no movement has been seen for {describe_duration(after)} "
        f"(since {plan.local(since)}) and the bed has been empty since {plan.local(left_bed)}; "
        f"{_routine(plan)} to call after {describe_duration(after)} without movement."
    )


def not_in_bed_by(plan: HomePlan, at: datetime, empty_since: datetime | None) -> str:
    seen = f" (the bed has said empty since {plan.local(empty_since)})" if empty_since else ""
    return f"{plan.person} is not in bed at {plan.local(at)}{seen}; {_routine(plan)} in bed by then."


def not_in_bed_unknown(plan: HomePlan, at: datetime, unheard_since: datetime) -> str:
    """The bed has given no reading: say so, rather than claim she is up."""
    return (
        f"{plan.person} has not been seen in bed at {plan.local(at)}: the bed has not reported "
        f"since {plan.local(unheard_since)}; {_routine(plan)} in bed by then."
    )


def not_up_by(plan: HomePlan, at: datetime, in_bed_since: datetime | None) -> str:
    seen = f" (in bed since {plan.local(in_bed_since)})" if in_bed_since else ""
    return f"{plan.person} is still in bed at {plan.local(at)}{seen}; {_routine(plan)} up by then."


def bed_silent(plan: HomePlan, device: DevicePlan, since: datetime) -> str:
    return (
        f"The {device.label} sensor in {plan.person}'s home has not reported all night "
        f"(nothing since {plan.local(since)}); whether {plan.person} is in bed cannot be known."
    )


def help_requested(plan: HomePlan, button: DevicePlan, at: datetime) -> str:
    return f"{plan.person} pressed the help button {button.label} at {plan.local(at)}."


def device_offline(plan: HomePlan, device: DevicePlan, since: datetime, silent: bool) -> str:
    how = "has not been heard from" if silent else "has been offline"
    return (
        f"The {device.label} sensor in {plan.person}'s home {how} since {plan.local(since)}; "
        "alerts that depend on it cannot be trusted until it is back."
    )


def bed_occupied_too_long(plan: HomePlan, device: DevicePlan, since: datetime, limit: timedelta) -> str:
    """Both possibilities, the harmless one last: it may be the person, not the sensor."""
    return (
        f"The bed has said occupied for {describe_duration(limit)}: a stuck sensor, or "
        f"{plan.person} unwell in bed. The {device.label} sensor has said so since "
        f"{_day_and_time(plan, since)}; please check on {plan.person}, then the sensor."
    )


def bed_empty_again(device: DevicePlan) -> str:
    return f"The {device.label} sensor says the bed is empty again."


def motion_silent(
    plan: HomePlan, device: DevicePlan, since: datetime, after: timedelta,
    other: DevicePlan | None, other_at: datetime,
) -> str:
    seen = f"the {other.label} at {plan.local(other_at)}" if other else f"at {plan.local(other_at)}"
    return (
        f"The {device.label} motion sensor in {plan.person}'s home has seen no movement for "
        f"{describe_duration(after)} (nothing since {_day_and_time(plan, since)}), while other "
        f"sensors show {plan.person} up and about ({seen}): it may be blocked, moved or broken, "
        "and alerts that depend on it cannot be trusted."
    )


def motion_seen_again(device: DevicePlan) -> str:
    return f"The {device.label} motion sensor sees movement again."


def _day_and_time(plan: HomePlan, at: datetime) -> str:
    """`Sun 22:40`: these spells last a day or more, so the time alone is ambiguous."""
    return at.astimezone(plan.zone).strftime("%a ") + plan.local(at)


def low_battery(plan: HomePlan, device: DevicePlan, percent: int) -> str:
    return f"The {device.label} sensor battery is at {percent}% in {plan.person}'s home; please replace it."


def back_in_bed(plan: HomePlan) -> str:
    return f"{plan.person} is back in bed."


def in_bed_now(plan: HomePlan) -> str:
    return f"{plan.person} is in bed now."


def up_now(plan: HomePlan) -> str:
    return f"{plan.person} is up."


def movement_seen(plan: HomePlan, where: DevicePlan | None) -> str:
    if where is not None and where.kind is EventKind.DOOR:
        return f"Movement seen (the {where.label} door opened): {plan.person} is moving about."
    place = f" ({where.label})" if where else ""
    return f"Movement seen{place}: {plan.person} is moving about."


def device_back(device: DevicePlan) -> str:
    return f"The {device.label} sensor is reporting again."


def battery_replaced(device: DevicePlan, percent: int) -> str:
    return f"The {device.label} sensor battery is at {percent}% again."


def im_ok(plan: HomePlan, button: DevicePlan) -> str:
    return f"{plan.person} pressed the button {button.label}: I'm OK."


def acknowledged(by: str) -> str:
    return f"Acknowledged by {by}."


def carer_outcome(by: str, outcome: str) -> str:
    return f"Resolved by {by}: {outcome}"


def could_not_reach(names: tuple[str, ...]) -> str:
    """Said to the next contact and kept in the record: they are called because nobody could be reached,
    not because someone saw the alert and did nothing."""
    return f"tecmon could not reach {' or '.join(names)}."
