"""Care features of a routine: ask the person first, and company mode. Pure, like the engine.

- check_with_me (`{within: 2m, device: bedside-light}`): a new alert of a kind
  in `ASK_FIRST` asks the person before anyone is called: an `AskPerson`
  decision (step `asked`, the shell blinks the light) right after `raised`,
  and the first call waits until raised + within. A press before then is the
  usual "I'm OK" (the alert resolves by the person; nobody was called); a
  press at exactly raised + within comes after the call, as every input at a
  deadline does. Help and exits are never delayed: a `not_back_after_exit`
  that joins an alert still waiting on the person calls at once.
- company (`{action: double, for: 2h}`): that button action, or a carer
  (`SetCompany`), starts company mode; the action again, a carer, or `for`
  passing ends it (at exactly start + for it is over). While it lasts no
  person-safety alert other than `help_requested` is raised; alerts already
  open carry on. Its end restarts the out-of-bed and stillness periods (see
  `rules._up_period_start`), so timing resumes from the moment she is alone
  again rather than raising at once for the time someone was with her.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.decisions import AlertKind, AskPerson, Decision
from alerts.durations import describe_duration
from alerts.state import HomeState, OpenAlert

ASK_FIRST = frozenset(
    {AlertKind.OUT_OF_BED_TOO_LONG, AlertKind.STILL_WHILE_UP, AlertKind.NOT_IN_BED_BY,
     AlertKind.NOT_UP_BY}
)
NEVER_PAUSED = frozenset({AlertKind.HELP_REQUESTED})

Out = list[Decision]


def ask_first(state: HomeState, alert: OpenAlert, at: datetime, out: Out) -> None:
    """A new person-safety alert: ask the person first when the routine says so."""
    ask = state.plan.check_with_me
    if ask is None or alert.info.kind not in ASK_FIRST or alert.notify_at is None:
        return
    alert.asked_until = alert.notify_at = at + ask.within
    plan = state.plan
    device = plan.devices[ask.device]
    reason = (
        f"Asked {plan.person} first: the {device.label} light blinks; a press on the button "
        f"within {describe_duration(ask.within)} (by {plan.local(at + ask.within)}) means "
        "nobody is called."
    )
    out.append(AskPerson(alert.info, at, ask.device, ask.within, reason))


def joined(alert: OpenAlert, kind: AlertKind, at: datetime) -> None:
    """A condition joins the open alert: one that is never delayed ends the wait on the person."""
    waiting = alert.asked_until is not None and alert.asked_until > at and not alert.notified
    if kind not in ASK_FIRST and waiting and alert.notify_at is not None:
        alert.notify_at = at


def company_on(state: HomeState, at: datetime) -> bool:
    start, until = state.company_from, state.company_until
    return start is not None and until is not None and start <= at < until


def paused(state: HomeState, kind: AlertKind, at: datetime) -> bool:
    """Someone is with her: person-safety rules other than help wait."""
    return kind.person_safety and kind not in NEVER_PAUSED and company_on(state, at)


def is_company_action(state: HomeState, action: str | None) -> bool:
    company = state.plan.company
    return company is not None and action is not None and action == company.action.lower()


def on_company_action(state: HomeState, pressed_at: datetime, now: datetime, debounce: timedelta) -> None:
    """The routine's button action: toggles company mode; a redelivery or shaky repeat is one."""
    last = state.company_action_at
    if last is not None and abs(pressed_at - last) < debounce:
        return
    state.company_action_at = pressed_at if last is None else max(last, pressed_at)
    set_company(state, None, now)


def set_company(state: HomeState, on: bool | None, at: datetime) -> None:
    """Start (`on`), end, or (None: the button action) toggle company mode at `at`."""
    company = state.plan.company
    if company is None:
        return  # the routine has no company mode; the API refuses before it gets here
    active = company_on(state, at)
    start = (not active) if on is None else on
    if start:
        state.company_from, state.company_until = at, at + company.lasts
    elif active:
        state.company_until = at
