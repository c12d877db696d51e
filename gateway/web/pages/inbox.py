"""The carer's inbox: open alerts of my homes, newest first; "I'm dealing with it" and resolve.

The alerts and their steps come from the same functions as `GET /alerts` and
`GET /alerts/{id}`; acknowledging and resolving go through the same
`gateway.api.alerts.apply_at_owner`, so a page and the API can never disagree on what
happened or who did it. The list refreshes itself when a lifecycle step
arrives (`/static/inbox.js`); without JavaScript, reloading does the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from alerts import care
from alerts.decisions import AlertKind
from alerts.events import Acknowledge, ResolveAlert
from alerts.messages import WHAT_HAPPENED
from gateway.access import caller
from gateway.accounts import Principal
from gateway.api.alerts import OUTCOME_WORDS, apply_at_owner, get_alert, list_alerts, outcome_text
from gateway.api.context import ApiContext, context
from gateway.web.pages.common import ago, local_time, redirect, render
from gateway.web.pages.steps import step_words

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(caller)]
PAGE_SIZE = 20
CLOSED_SHOWN = 10
NOTE_LIMIT = 1000
NOTICES = {"ack": "Thank you: you are dealing with it, and nobody else will be called.",
           "resolved": "The alert is closed, with what happened.",
           "closed": "That alert was already closed: someone else resolved it, or the condition cleared.",
           "retry": "That could not be passed on just now (nothing was recorded): please try again."}


@dataclass(frozen=True, slots=True)
class Call:
    contact: str
    when: str
    escalated: bool


@dataclass(frozen=True, slots=True)
class InboxAlert:
    alert: str
    home: str
    headline: str
    reason: str
    raised: str
    ago: str
    calls: list[Call]
    acknowledged_by: str | None
    safety: bool
    asked: str | None = None  # check_with_me: asked the person first, and until when nobody is called


def _headline(ctx: ApiContext, item: dict[str, Any]) -> tuple[str, bool]:
    rt = ctx.runtime.homes.get(item["home"])
    person = rt.plan.person if rt else item["home"]
    try:
        kind = AlertKind(item["kind"])
    except ValueError:
        return f"{person}: {item['kind']}", True
    what = WHAT_HAPPENED.get(kind, item["kind"])
    return (f"{person}: {what}", True) if kind.person_safety else (f"{person}'s home: {what}", False)


async def _view(ctx: ApiContext, item: dict[str, Any], now: datetime) -> InboxAlert:
    rt = ctx.runtime.homes.get(item["home"])
    zone = rt.plan.zone if rt else UTC
    raised = datetime.fromisoformat(item["raised_at"])
    try:
        steps = (await get_alert(item["alert"], ctx))["steps"]
    except HTTPException:  # closed between the list and now
        steps = []
    calls = [Call(s["contact"], local_time(datetime.fromisoformat(s["at"]), zone, now),
                  s["step"] == "escalated")
             for s in steps if s["step"] in ("notified", "escalated") and s["contact"]]
    headline, safety = _headline(ctx, item)
    return InboxAlert(item["alert"], item["home"], headline, item["reason"], local_time(raised, zone, now),
                      ago(raised, now), calls, item["acknowledged_by"], safety, _asked(ctx, item, steps, now))


def _asked(ctx: ApiContext, item: dict[str, Any], steps: list[dict[str, Any]], now: datetime) -> str | None:
    """'Asked Julie if all is OK (light blinked) at 02:45; nobody is called unless Julie has not pressed
    the button by 02:47' (the second part only while nobody has been called yet)."""
    rt = ctx.runtime.homes.get(item["home"])
    asked = next((s for s in steps if s["step"] == "asked"), None)
    if asked is None or rt is None:
        return None
    at = datetime.fromisoformat(asked["at"])
    words = f"{step_words(asked, rt.plan.person)} at {local_time(at, rt.plan.zone, now)}"
    ask = rt.plan.check_with_me
    if ask is not None and not any(s["step"] in ("notified", "escalated") for s in steps):
        words += (f"; nobody is called unless {rt.plan.person} has not pressed the button by "
                  f"{local_time(at + ask.within, rt.plan.zone, now)}")
    return words


@dataclass(frozen=True, slots=True)
class ClosedAlert:
    headline: str
    raised: str
    ended: str  # how it ended: "Julie pressed: I'm OK at 02:46", "Resolved by Sam: false alarm (02:50)"


async def _closed(ctx: ApiContext, who: Principal, now: datetime) -> list[ClosedAlert]:
    """The latest closed alerts of my homes, from the record: what each was and how it ended."""
    found = await list_alerts(ctx, who, home=None, state="closed", kind=None, since=None, until=None,
                              cursor=None, limit=CLOSED_SHOWN)
    out = []
    for item in found["items"]:
        rt = ctx.runtime.homes.get(item["home"])
        zone, person = (rt.plan.zone, rt.plan.person) if rt else (UTC, item["home"])
        try:
            steps = (await get_alert(item["alert"], ctx))["steps"]
        except HTTPException:
            continue
        end = next((s for s in reversed(steps) if s["step"] == "resolved"), None)
        if end is None:
            continue
        when = local_time(datetime.fromisoformat(end["at"]), zone, now)
        by_carer = item.get("outcome") and end.get("contact") not in (None, person)
        ended = f"{item['outcome']} ({when})" if by_carer else f"{step_words(end, person)} at {when}"
        raised = local_time(datetime.fromisoformat(item["raised_at"]), zone, now)
        out.append(ClosedAlert(_headline(ctx, item)[0], raised, ended))
    return out


def _company(ctx: ApiContext, who: Principal, now: datetime) -> list[str]:
    """"Someone is with Julie until 01:30: only a call for help is passed on", for each of my homes."""
    homes = ctx.runtime.homes
    mine = sorted(who.homes) if who.homes is not None else sorted(homes)
    out = []
    for home in mine:
        rt = homes.get(home)
        if rt is None or not care.company_on(rt.state, now) or rt.state.company_until is None:
            continue
        until = local_time(rt.state.company_until, rt.plan.zone, now)
        out.append(f"Someone is with {rt.plan.person} until {until} (company mode): only a call for help "
                   "is passed on.")
    return out


async def _page(request: Request, ctx: ApiContext, who: Principal, cursor: str | None, status: int = 200,
                notice: str | None = None, errors: dict[str, str] | None = None) -> HTMLResponse:
    found = await list_alerts(ctx, who, home=None, state="open", kind=None, since=None, until=None,
                              cursor=cursor, limit=PAGE_SIZE)
    now = ctx.clock.now()
    alerts = [await _view(ctx, item, now) for item in found["items"]]
    return render(request, ctx, "inbox.html", who, status=status, current="inbox", alerts=alerts,
                  closed=await _closed(ctx, who, now) if cursor is None else [],
                  company=_company(ctx, who, now),
                  next_cursor=found["next_cursor"], first_page=cursor is None, notice=notice,
                  errors=errors or {}, outcomes=list(OUTCOME_WORDS.items()), note_limit=NOTE_LIMIT)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request, ctx: Ctx, who: Who,
                cursor: Annotated[str | None, Query(max_length=300)] = None,
                done: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    return await _page(request, ctx, who, cursor, notice=NOTICES.get(done or ""))


async def _applied(ctx: ApiContext, alert_id: str, inp: Acknowledge | ResolveAlert,
                   done: str) -> RedirectResponse:
    """By the instance that runs the home, as the API's ack and resolve (`apply_at_owner`)."""
    try:
        await apply_at_owner(ctx, alert_id, inp)
    except HTTPException as exc:
        if exc.status_code not in (409, 503):
            raise
        return redirect("/inbox", done="closed" if exc.status_code == 409 else "retry")
    return redirect("/inbox", done=done)


@router.post("/inbox/{alert_id}/ack")
async def acknowledge(alert_id: str, ctx: Ctx, who: Who) -> RedirectResponse:
    return await _applied(ctx, alert_id, Acknowledge(alert_id, who.display), "ack")


@router.post("/inbox/{alert_id}/resolve", response_model=None)
async def resolve(alert_id: str, request: Request, ctx: Ctx, who: Who,
                  outcome: Annotated[str, Form(max_length=50)] = "",
                  note: Annotated[str, Form(max_length=5000)] = "") -> HTMLResponse | RedirectResponse:
    if outcome not in OUTCOME_WORDS:
        return await _page(request, ctx, who, None, 422, errors={alert_id: "Choose what happened."})
    if len(note) > NOTE_LIMIT:
        return await _page(request, ctx, who, None, 422,
                           errors={alert_id: f"The note is too long: at most {NOTE_LIMIT} characters."})
    text = outcome_text(outcome, note)
    return await _applied(ctx, alert_id, ResolveAlert(alert_id, who.display, text), "resolved")
