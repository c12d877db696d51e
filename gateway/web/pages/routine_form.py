"""The routine editor's form, both ways: a home configuration into fields, fields back into one.

Each input is named by the configuration path `tecmon check-config` uses in
its messages (`routine.out_of_bed.alert_after`, `away[0].to`), so every
problem the validator reports lands beside the field it is about. Parts of
the configuration the form does not show (devices, contact addresses, other
routine keys) are carried over from the saved version untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RULES: tuple[tuple[str, str, str, str, str], ...] = (
    # (toggle, value field, the rule's name, its value's label, the value when it is switched on)
    ("out_of_bed", "routine.out_of_bed.alert_after", "Out of bed too long", "Call if out of bed at night for",
     "45m"),
    ("exit_door", "routine.exit_door.alert_if_not_back_within", "Went out and not back",
     "Call if not back after going out within", "15m"),
    ("still_while_up", "routine.still_while_up.alert_after", "Up and not moving",
     "Call if up and not moving for", "20m"),
    ("in_bed_by", "routine.in_bed_by", "Not in bed yet", "Call if not in bed by", "01:00"),
    ("up_by", "routine.up_by", "Not up yet", "Call if still in bed at", "10:30"),
)
CARE: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    # (toggle, the switch's words, its fields: (path, label, the value when it is switched on))
    ("check_with_me", "Ask first: blink a light, and call nobody if the button is pressed in time",
     (("routine.check_with_me.device", "The light that blinks", ""),
      ("routine.check_with_me.within", "Call nobody if the button is pressed within", "2m"))),
    ("company", "Someone is with them: a press on the button pauses every call but a call for help",
     (("routine.company.action", "The press that says someone has come (and, again, that they have left)",
       "double"),
      ("routine.company.for", "Pause the calls for at most", "2h"))),
)
DURATIONS = ("routine.device_offline_after", "routine.bed_occupied_max", "escalation.ack_within",
             "escalation.repeat_every")
DEFAULTS = {"routine.device_offline_after": "10m", "routine.bed_occupied_max": "16h",
            "escalation.ack_within": "10m", "escalation.repeat_every": "5m"}
PRESS_WORDS = {"single": "pressed once", "double": "pressed twice", "triple": "pressed three times",
               "hold": "held down", "long": "held down"}


@dataclass
class RoutineForm:
    """What the fields show: values by field path, which rules are on, the errors by field."""

    values: dict[str, str]
    on: dict[str, bool]
    away: list[dict[str, str]]
    contacts: list[dict[str, Any]]
    choices: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # select fields: (value, words)
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)  # problems that name no field shown here

    def error(self, name: str) -> str | None:
        return self.errors.get(name)


def _get(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def form_from_config(config: Mapping[str, Any]) -> RoutineForm:
    routine = config.get("routine", {})
    values = {"routine.night.from": str(_get(config, "routine.night.from") or ""),
              "routine.night.to": str(_get(config, "routine.night.to") or "")}
    on = {}
    for toggle, name, _, _, default in RULES:
        on[toggle] = routine.get(toggle) is not None
        values[name] = str(_get(config, name) or default)
    for toggle, _, fields in CARE:
        on[toggle] = routine.get(toggle) is not None
        for name, _, default in fields:
            values[name] = str(_get(config, name) or default)
    for name in DURATIONS:
        values[name] = str(_get(config, name) or DEFAULTS[name])
    away = [{"from": str(p.get("from", ""))[:16], "to": str(p.get("to", ""))[:16],
             "reason": str(p.get("reason", ""))} for p in config.get("away", [])]
    contacts = [{"name": c.get("name", ""), "position": str(i + 1),
                 "summary": str(c.get("morning_summary") or "")}
                for i, c in enumerate(config.get("contacts", []))]
    return RoutineForm(values, on, away, contacts, _choices(config, values))


def _choices(config: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The home's lights to blink, and the presses its buttons can send; the saved value is always offered."""
    from device_profiles import ProfileError, get_profile

    devices = [d for d in config.get("devices", []) if isinstance(d, Mapping)]
    lights = [(str(d.get("id")), f"{d.get('id')} ({d['room']})" if d.get("room") else str(d.get("id")))
              for d in devices if d.get("kind") == "light"]
    presses: set[str] = set()
    for d in devices:
        if d.get("kind") == "button":
            try:
                presses |= get_profile(str(d.get("profile"))).button_actions
            except ProfileError:
                continue
    actions = [(a, PRESS_WORDS.get(a, a)) for a in sorted(presses)]
    out = {"routine.check_with_me.device": lights, "routine.company.action": actions}
    for name, offered in out.items():
        if values.get(name) and values[name] not in {value for value, _ in offered}:
            offered.insert(0, (values[name], values[name]))
    return out


def form_from_post(config: Mapping[str, Any], posted: Mapping[str, str]) -> RoutineForm:
    """The fields as they were sent (kept when the form comes back with errors)."""
    form = form_from_config(config)
    for name in form.values:
        if name in posted:
            form.values[name] = posted[name].strip()
    toggles = [toggle for toggle, *_ in RULES] + [toggle for toggle, *_ in CARE]
    form.on = {toggle: posted.get(f"use.{toggle}") == "on" for toggle in toggles}
    form.away = [row for row in _away_rows(posted) if not row.get("remove")]
    for i, contact in enumerate(form.contacts):
        contact["position"] = posted.get(f"contacts[{i}].position", contact["position"]).strip()
        contact["summary"] = posted.get(f"contacts[{i}].morning_summary", contact["summary"]).strip()
    return form


def _away_rows(posted: Mapping[str, str]) -> list[dict[str, str]]:
    rows = []
    i = 0
    while f"away[{i}].from" in posted:
        row = {key: posted.get(f"away[{i}].{key}", "").strip() for key in ("from", "to", "reason")}
        if posted.get(f"away[{i}].remove") == "on":
            row["remove"] = "on"
        if row["from"] or row["to"] or row["reason"]:
            rows.append(row)
        i += 1
    return rows


def _order(form: RoutineForm, contacts: list[Any]) -> list[Any] | str:
    """Contacts sorted by the positions typed in; an error message for a position that is not a number."""
    keyed = []
    for i, contact in enumerate(contacts):
        text = form.contacts[i]["position"] if i < len(form.contacts) else str(i + 1)
        if not text.isdigit():
            return f"contacts[{i}].position: expected a number like 1 or 2, got {text!r}"
        keyed.append((int(text), i, contact))
    return [contact for _, _, contact in sorted(keyed, key=lambda k: (k[0], k[1]))]


def _with_summaries(form: RoutineForm, contacts: list[Any]) -> list[Any]:
    """Each contact's morning summary time as typed; empty: none."""
    out = []
    for i, contact in enumerate(contacts):
        entry = {k: v for k, v in dict(contact).items() if k != "morning_summary"}
        summary = form.contacts[i]["summary"] if i < len(form.contacts) else contact.get("morning_summary")
        if summary:
            entry["morning_summary"] = summary
        out.append(entry)
    return out


def config_from_form(config: Mapping[str, Any], form: RoutineForm) -> tuple[dict[str, Any], list[str]]:
    """The proposed configuration, and the problems found before validation (as "field: message")."""
    out = copy.deepcopy(dict(config))
    routine = dict(out.get("routine", {}))
    routine["night"] = {"from": form.values["routine.night.from"], "to": form.values["routine.night.to"]}
    for toggle, name, *_ in RULES:
        routine.pop(toggle, None)
        if not form.on[toggle]:
            continue
        parts = name.split(".")
        routine[toggle] = {parts[2]: form.values[name]} if len(parts) == 3 else form.values[name]
    for toggle, _, fields in CARE:
        routine.pop(toggle, None)
        if form.on[toggle]:
            routine[toggle] = {name.split(".")[2]: form.values[name] for name, _, _ in fields}
    routine["device_offline_after"] = form.values["routine.device_offline_after"]
    stuck = form.values["routine.bed_occupied_max"]
    if "bed_occupied_max" in routine or stuck != DEFAULTS["routine.bed_occupied_max"]:
        routine["bed_occupied_max"] = stuck  # left out, 16h: a form saved unchanged stays unchanged
    out["routine"] = routine
    out["escalation"] = {**out.get("escalation", {}), "ack_within": form.values["escalation.ack_within"],
                         "repeat_every": form.values["escalation.repeat_every"]}
    out["away"] = [{k: v for k, v in row.items() if k != "remove" and (v or k != "reason")}
                   for row in form.away]
    problems = []
    ordered = _order(form, _with_summaries(form, list(out.get("contacts", []))))
    if isinstance(ordered, str):
        problems.append(ordered)
    else:
        out["contacts"] = ordered
    return out, problems


def place_errors(form: RoutineForm, problems: list[str]) -> None:
    """Put each "field: message" beside its field; a rule's own problem goes beside its switch."""
    known = set(form.values) | {f"contacts[{i}].{key}" for i in range(len(form.contacts))
                                for key in ("position", "morning_summary")}
    known |= {f"away[{i}].{k}" for i in range(len(form.away)) for k in ("from", "to", "reason")}
    for text in problems:
        name, sep, message = text.partition(": ")
        target = name if sep else ""
        if target.startswith("routine.") and target.count(".") == 1 and target.split(".")[1] in form.on:
            target = f"use.{target.split('.')[1]}" if target not in known else target
        if target.startswith("routine.night") and target not in known:
            target = "routine.night.from"
        if target.startswith("away[") and target not in known:
            target = target.split(".")[0] + ".to"
        if target in known or target.startswith("use."):
            form.errors.setdefault(target, message)
        else:
            form.general.append(text)
