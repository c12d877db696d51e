"""Steps carried out after their time: which of them are still worth a call.

Two things make steps late: the service was down when they fell due (found
again by `recovery` at start), or the wall clock stepped forward past them
(found by the timer loop). Either way the engine decides every step of the
gap, stamped at its own instant; all are recorded and marked late, but
only alerts still open are called, and each contact once, for the last of
its calls, instead of a burst of repeats for time that passed unseen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from alerts.decisions import SendAlert

if TYPE_CHECKING:  # the runtime imports this module
    from gateway.runtime import Dispatch


def calls_worth_making(pending: list[Dispatch], still_open: Iterable[str]) -> list[Dispatch]:
    """The same steps, all late; `call` only for the last call per (open alert, contact)."""
    open_ids = set(still_open)
    last_call: dict[tuple[str, str], int] = {}
    for index, item in enumerate(pending):
        if isinstance(item.decision, SendAlert):
            last_call[(item.decision.alert.id, item.decision.contact.name)] = index
    kept: list[Dispatch] = []
    for index, item in enumerate(pending):
        decision = item.decision
        wanted = isinstance(decision, SendAlert) and (
            decision.alert.id in open_ids and last_call[(decision.alert.id, decision.contact.name)] == index
        )
        kept.append(replace(item, late=True, call=wanted))
    return kept
