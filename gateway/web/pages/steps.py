"""An alert's lifecycle steps in the words a carer uses, for the inbox and the night timeline.

The record keeps the contract's step names (`asked`, `notified`, ...); people
read what happened: "Asked Julie if all is OK (light blinked)", "Sam called",
"Julie pressed: I'm OK". The routine's config names no pronoun for the
person, so the words use their name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def step_words(step: Mapping[str, Any], person: str) -> str:
    """One step (`{"step", "contact", ...}`, as `GET /alerts/{id}` and the night chart give it)."""
    name, contact = step["step"], step.get("contact")
    if name == "raised":
        return "raised"
    if name == "asked":
        return f"Asked {person} if all is OK (light blinked)"
    if name == "notified":
        return f"{contact} called"
    if name == "escalated":
        return f"{contact} called (nobody had answered)"
    if name == "acknowledged":
        return f"{contact} is dealing with it"
    if name == "resolved":
        if contact == person:
            return f"{person} pressed: I'm OK"
        return f"closed by {contact}" if contact else "over: the reason for it has ended"
    return f"{name} {contact}" if contact else str(name)
