"""Alerts: the open ones and the record, one alert with every step, acknowledge, resolve.

Acknowledging and resolving go through the engine like every other input, so
they are recorded as lifecycle steps and stop escalation at once; who did it
is the signed-in account, never a name sent in the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.events import Acknowledge, EngineInput, ResolveAlert
from alerts.lifecycle import home_of
from gateway.access import caller, not_found, problem
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses
from gateway.store.base import StepRow

router = APIRouter(tags=["alerts"])
AlertState = Literal["open", "acknowledged", "resolved"]
Outcome = Literal["false_alarm", "needed_help", "no_action_needed", "other"]
OUTCOME_WORDS: dict[str, str] = {"false_alarm": "false alarm", "needed_help": "needed help",
                                 "no_action_needed": "no action needed", "other": "other"}
EXAMPLE_ID = "julie-12-oak-road:20261201T021400Z:out_of_bed_too_long"


class AlertItem(BaseModel):
    alert: str = Field(examples=[EXAMPLE_ID])
    home: str = Field(examples=["julie-12-oak-road"])
    kind: str = Field(examples=["out_of_bed_too_long"])
    state: AlertState
    raised_at: str = Field(examples=["2026-12-01T02:14:00+00:00"])
    reason: str = Field(examples=["Julie has been out of bed for 45 minutes (since 01:29)."])
    acknowledged_by: str | None = Field(None, examples=["Sam (daughter)"])
    notified: list[str] = Field(default_factory=list, examples=[["Sam (daughter)"]])
    outcome: str | None = Field(None, examples=["false alarm: making tea"])


class AlertPage(BaseModel):
    items: list[AlertItem]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next (older) page")


class Step(BaseModel):
    step: str = Field(examples=["notified"])
    at: str
    contact: str | None = Field(None, examples=["Sam (daughter)"])
    reason: str
    late: bool = False


class Attempt(BaseModel):
    contact: str
    target: str = Field(examples=["ntfy://…"], description="redacted")
    attempt: int
    ok: bool
    error: str | None
    started_at: str
    seconds: float


class AlertDetail(AlertItem):
    steps: list[Step]
    attempts: list[Attempt]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome = Field(examples=["false_alarm"])
    note: str = Field("", max_length=1000, examples=["making tea"])


class Applied(BaseModel):
    alert: str = Field(examples=[EXAMPLE_ID])
    steps: list[str] = Field(examples=[["acknowledged"]])


def outcome_text(outcome: str, note: str) -> str:
    """`false_alarm`, "making tea" -> "false alarm: making tea" (the replay contract's wording)."""
    words = OUTCOME_WORDS[outcome]
    return f"{words}: {note.strip()}" if note.strip() else words


def _from_steps(steps: list[StepRow]) -> dict[str, Any]:
    raised = steps[0]
    item: dict[str, Any] = {"alert": raised.alert, "home": raised.home, "kind": raised.kind, "state": "open",
                            "raised_at": raised.at.isoformat(), "reason": raised.reason,
                            "acknowledged_by": None, "notified": [], "outcome": None}
    for s in steps:
        if s.step in ("notified", "escalated") and s.contact and s.contact not in item["notified"]:
            item["notified"].append(s.contact)
        elif s.step == "acknowledged":
            item["state"], item["acknowledged_by"] = "acknowledged", s.contact
        elif s.step == "resolved":
            item["state"] = "resolved"
            item["outcome"] = s.reason
    return item


def _open_item(ctx: ApiContext, home: str, alert_id: str) -> dict[str, Any] | None:
    rt = ctx.runtime.homes.get(home)
    for alert in rt.state.open_alerts() if rt else ():
        if alert.info.id == alert_id:
            return {"alert": alert_id, "home": home, "kind": alert.info.kind.value,
                    "state": "acknowledged" if alert.acknowledged_by else "open",
                    "raised_at": alert.raised_at.isoformat(), "reason": " ".join(alert.reasons.values()),
                    "acknowledged_by": alert.acknowledged_by, "notified": [c.name for c in alert.notified],
                    "outcome": None}
    return None


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text:
        return None
    at, _, alert = text.partition("|")
    try:
        return datetime.fromisoformat(at), alert
    except ValueError:
        raise problem(422, "Invalid", "cursor: pass back the next_cursor of a previous page") from None


@router.get("/alerts", response_model=AlertPage, summary="Alerts of my homes, newest first",
            responses=responses(401, 403, 422))
async def list_alerts(
    ctx: Annotated[ApiContext, Depends(context)], who: Annotated[Principal, Depends(caller)],
    home: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[Literal["open", "all", "closed"], Query(description="open: live")] = "open",
    kind: Annotated[str | None, Query(max_length=50)] = None,
    since: datetime | None = None, until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    homes = [home] if home is not None else (None if who.homes is None else sorted(who.homes))
    if home is not None and not who.sees(home):
        return {"items": [], "next_cursor": None}
    if state == "open":
        return await _open_page(ctx, who, homes, kind, since, until, _cursor(cursor), limit)
    raised = await ctx.store.raised_alerts(homes, kind=kind, since=since, until=until,
                                           before=_cursor(cursor), limit=limit + 1)
    items = []
    for row in raised[:limit]:
        live = _open_item(ctx, row.home, row.alert)
        items.append(live or _from_steps(await ctx.store.alert_steps(row.alert)))
    if state == "closed":
        items = [i for i in items if i["state"] == "resolved"]
    more = len(raised) > limit
    return {"items": items, "next_cursor": f"{raised[limit - 1].at.isoformat()}|{raised[limit - 1].alert}"
            if more else None}


async def _open_page(ctx: ApiContext, who: Principal, homes: list[str] | None, kind: str | None,
                     since: datetime | None, until: datetime | None, before: tuple[datetime, str] | None,
                     limit: int) -> dict[str, Any]:
    found = _run_here(ctx, who, homes, kind, since, until, before)
    if ctx.commands is not None:  # one instance of several: the others' open alerts, as stored
        found += await _run_elsewhere(ctx, who, homes, kind, since, until, before, limit + 1 + len(found))
    found.sort(key=lambda pair: (pair[0], pair[1]["alert"]), reverse=True)
    page = [item for _, item in found[:limit]]
    last = found[limit - 1] if len(found) > limit else None
    return {"items": page, "next_cursor": f"{last[0].isoformat()}|{last[1]['alert']}" if last else None}


def _run_here(ctx: ApiContext, who: Principal, homes: list[str] | None, kind: str | None,
              since: datetime | None, until: datetime | None,
              before: tuple[datetime, str] | None) -> list[tuple[datetime, dict[str, Any]]]:
    """Open alerts of the homes this process runs, from their live state."""
    found = []
    for a in ctx.runtime.open_alerts():
        if (homes is not None and a["home"] not in homes) or not who.sees(a["home"]):
            continue
        at = datetime.fromisoformat(a["raised_at"])
        if (kind and a["kind"] != kind) or (since and at < since) or (until and at >= until):
            continue
        if before and (at, a["alert"]) >= before:
            continue
        item = _open_item(ctx, a["home"], a["alert"])
        if item:
            found.append((at, item))
    return found


async def _run_elsewhere(ctx: ApiContext, who: Principal, homes: list[str] | None, kind: str | None,
                         since: datetime | None, until: datetime | None, before: tuple[datetime, str] | None,
                         limit: int) -> list[tuple[datetime, dict[str, Any]]]:
    """Open alerts of homes other instances run, from the shared record (a fraction of a second behind)."""
    rows = await ctx.store.raised_alerts(homes, kind=kind, since=since, until=until, before=before,
                                         limit=limit, unresolved=True)
    found = []
    for row in rows:
        if row.home not in ctx.runtime.homes and who.sees(row.home):
            found.append((row.at, _from_steps(await ctx.store.alert_steps(row.alert))))
    return found


@router.get("/alerts/history", response_model=list[dict[str, Any]],
            summary="Recent lifecycle steps of my homes (as `tecmon replay` lines)",
            responses=responses(401))
def alert_history(ctx: Annotated[ApiContext, Depends(context)], who: Annotated[Principal, Depends(caller)],
                  limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> list[dict[str, Any]]:
    return [line for line in ctx.history if who.sees(line["home"])][-limit:]


@router.get("/alerts/{alert_id}", response_model=AlertDetail, summary="One alert: every step and call",
            responses=responses(401, 403, 404))
async def get_alert(alert_id: str, ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    steps = await ctx.store.alert_steps(alert_id)
    item = _open_item(ctx, home_of(alert_id), alert_id) or (_from_steps(steps) if steps else None)
    if item is None:
        raise not_found("alert")
    if not steps:  # raised a moment ago: the record is written a fraction of a second later
        steps = [StepRow.from_line(line) for line in ctx.history if line["alert"] == alert_id]
    attempts = await ctx.store.alert_attempts(alert_id)
    return {**item,
            "steps": [{"step": s.step, "at": s.at.isoformat(), "contact": s.contact, "reason": s.reason,
                       "late": s.late} for s in steps],
            "attempts": [{"contact": a.contact, "target": a.target, "attempt": a.attempt, "ok": a.ok,
                          "error": a.error, "started_at": a.started_at.isoformat(), "seconds": a.seconds}
                         for a in attempts]}


async def apply_at_owner(ctx: ApiContext, alert_id: str, inp: Acknowledge | ResolveAlert) -> dict[str, Any]:
    """`apply`, by whichever process runs the home (`ingest: nats`, see `gateway/commands.py`)."""
    if ctx.commands is None:
        return apply(ctx, alert_id, inp)
    from gateway.commands import Command

    done = await ctx.commands.apply(Command.of(inp))
    if done.outcome in ("not_open", "unknown_home"):
        raise problem(409, "Conflict", "This alert is not open any more (resolved, or never raised).")
    if done.outcome != "applied":
        raise problem(503, "Service Unavailable", "The home is changing hands; try again shortly.")
    return {"alert": alert_id, "steps": list(done.steps)}


def apply(ctx: ApiContext, alert_id: str, inp: EngineInput) -> dict[str, Any]:
    """Hand an acknowledgement or resolution to the engine; 409 when the alert is no longer open."""
    home = ctx.runtime.find_alert_home(alert_id)
    if home is None:
        raise problem(409, "Conflict", "This alert is not open any more (resolved, or never raised).")
    steps = ctx.runtime.apply(home, inp)
    return {"alert": alert_id, "steps": [d.step for d in steps]}


@router.post("/alerts/{alert_id}/ack", response_model=Applied, summary="I'm dealing with it",
             responses=responses(401, 403, 404, 409, 503))
async def acknowledge(alert_id: str, ctx: Annotated[ApiContext, Depends(context)],
                      who: Annotated[Principal, Depends(caller)],
                      body: AckBody | None = None) -> dict[str, Any]:
    return await apply_at_owner(ctx, alert_id, Acknowledge(alert_id, who.display))


@router.post("/alerts/{alert_id}/resolve", response_model=Applied, summary="Close it with what happened",
             responses=responses(401, 403, 404, 409, 422, 503))
async def resolve(alert_id: str, body: ResolveBody, ctx: Annotated[ApiContext, Depends(context)],
                  who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    inp = ResolveAlert(alert_id, who.display, outcome_text(body.outcome, body.note))
    return await apply_at_owner(ctx, alert_id, inp)
