"""Checks for the care features of a routine: `check_with_me` and `company`.

Kept apart from `homeconfig` (near its size limit) and called from its
consistency check. Each problem names its field, as every configuration
problem does, because a check-with-me that can never blink a light, or a
company action no button sends, would look like safety and be none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.events import EventKind

if TYPE_CHECKING:
    from alerts.homeconfig import HomeConfig


def care_problems(cfg: HomeConfig) -> list[str]:
    """`routine.check_with_me.device: ...` / `routine.company.action: ...`, or nothing."""
    return _ask_problems(cfg) + _company_problems(cfg)


def _ask_problems(cfg: HomeConfig) -> list[str]:
    from device_profiles import get_profile

    ask = cfg.routine.check_with_me
    if ask is None:
        return []
    device = cfg.device(ask.device)
    field = "routine.check_with_me.device"
    if device is None:
        known = ", ".join(d.id for d in cfg.devices)
        return [f"{field}: no device {ask.device!r} in this home; devices: {known}"]
    if get_profile(device.profile).ask is None:
        return [
            f"{field}: {device.id!r} ({device.profile}) cannot be asked: its profile has no "
            "`set` payload (use a light, e.g. profile z2m-light)"
        ]
    return []


def _company_problems(cfg: HomeConfig) -> list[str]:
    from device_profiles import get_profile

    company = cfg.routine.company
    if company is None:
        return []
    buttons = [d for d in cfg.devices if d.kind is EventKind.BUTTON]
    if not buttons:
        return ["routine.company: needs a button device"]
    actions = {a for d in buttons for a in get_profile(d.profile).button_actions}
    if company.action.lower() not in actions:
        said = ", ".join(sorted(actions)) or "none (their profiles report no action)"
        return [f"routine.company.action: no button in this home sends {company.action!r}; "
                f"they send: {said}"]
    return []
