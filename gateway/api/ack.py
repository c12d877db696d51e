"""The pages an acknowledgement link opens: see the alert, say "I'm dealing with it", resolve it.

`GET` only shows: link previewers and mail scanners fetch every URL they see,
and must never stop the calls. `POST` acknowledges, as the contact named in
the link, once; after that the same link may resolve the alert, once. The
forms are plain HTML (no JavaScript); the signed token in the URL is their
authentication, so they need no CSRF token.

Every refusal is a page that says what happened and a 4xx: 400 for a link
that is not ours or was damaged, 410 for one expired or used, 409 when the
alert is closed already.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from alerts.events import Acknowledge, ResolveAlert
from gateway.ack_links import AckClaims, AckLinks, LinkRefused
from gateway.api.ack_view import AlertView, alert_view
from gateway.api.alerts import OUTCOME_WORDS, apply_at_owner, outcome_text
from gateway.api.context import ApiContext, context
from gateway.store import StoreUnavailable
from gateway.web import render

router = APIRouter(tags=["acknowledgement links"], include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
NOTE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Opened:
    claims: AckClaims
    alert: AlertView


def links(ctx: ApiContext) -> AckLinks:
    return AckLinks(ctx.accounts, ctx.settings.public_url, ctx.settings.auth.ack_link_minutes)


async def _open(ctx: ApiContext, token: str) -> Opened:
    """A genuine link, in time, for an alert still open, for one of that alert's contacts."""
    claims = links(ctx).read(token)
    alert = await alert_view(ctx, claims.alert)
    if alert is None:
        raise LinkRefused(409, "This alert is already closed",
                          "Someone resolved it (or its home is no longer monitored). Nothing more to do.")
    if claims.contact not in alert.contacts:
        raise LinkRefused(403, "This link is no longer yours to use",
                          f"{claims.contact} is not one of this alert's contacts any more.")
    return Opened(claims, alert)


def _refused(request: Request, why: LinkRefused) -> HTMLResponse:
    return render(request, "ack_refused.html", why.status, private=True, title=why.title, detail=why.detail)


def _page(request: Request, token: str, opened: Opened, stage: str, status: int = 200,
          notice: str | None = None, **extra: Any) -> HTMLResponse:
    fields: dict[str, Any] = {"error": None, "chosen": None, "note": "", **extra}
    action = f"{request.scope.get('root_path', '')}/ack/{token}"
    return render(request, "ack.html", status, private=True, alert=opened.alert,
                  contact=opened.claims.contact, stage=stage, action=action, notice=notice,
                  notice_tone="ok", outcomes=list(OUTCOME_WORDS.items()), note_limit=NOTE_LIMIT, **fields)


async def _use(ctx: ApiContext, token_id: str, claims: AckClaims) -> bool:
    """Mark one use of the link in the store (single use across restarts); refuse when it is away."""
    try:
        return await ctx.store.use_ack_link(token_id, claims.alert, claims.contact, ctx.clock.now())
    except StoreUnavailable:
        raise LinkRefused(503, "Please try again in a minute",
                          "tecmon could not record this just now. If it keeps happening, use the tecmon "
                          "app; until someone acknowledges, the next contact is called as planned.") from None


async def _acknowledged_with(ctx: ApiContext, claims: AckClaims) -> bool:
    try:
        return await ctx.store.ack_link_used_at(claims.jti) is not None
    except StoreUnavailable:
        return False


@router.get("/ack/{token}", response_class=HTMLResponse, summary="See the alert a link is for")
async def show(token: str, request: Request, ctx: Ctx) -> HTMLResponse:
    """Shows and changes nothing; once the link has acknowledged, it offers to resolve."""
    try:
        opened = await _open(ctx, token)
    except LinkRefused as why:
        return _refused(request, why)
    stage = "resolve" if await _acknowledged_with(ctx, opened.claims) else "ask"
    return _page(request, token, opened, stage)


@router.post("/ack/{token}", response_class=HTMLResponse, summary="I'm dealing with it")
async def acknowledge(token: str, request: Request, ctx: Ctx) -> HTMLResponse:
    """Acknowledge as the link's contact: escalation stops at once."""
    try:
        opened = await _open(ctx, token)
        claims = opened.claims
        if not await _use(ctx, claims.jti, claims):
            raise LinkRefused(410, "This link has already been used",
                              "It acknowledged this alert earlier. Open the link again to resolve "
                              "the alert when it is over.")
        steps = await _apply(ctx, claims.jti, Acknowledge(claims.alert, claims.contact))
    except LinkRefused as why:
        return _refused(request, why)
    after = await _open_or_none(ctx, token) or opened
    if "acknowledged" in steps:
        notice = "Thank you. You are dealing with it: nobody else will be called."
    else:
        notice = f"{after.alert.acknowledged_by or 'Someone'} was already dealing with it."
    return _page(request, token, after, "resolve", notice=notice)


@router.post("/ack/{token}/resolve", response_class=HTMLResponse, summary="Resolve with what happened")
async def resolve(token: str, request: Request, ctx: Ctx, outcome: Annotated[str, Form()] = "",
                  note: Annotated[str, Form()] = "") -> HTMLResponse:
    """Close the alert with its outcome, once, with a link that has acknowledged it."""
    try:
        opened = await _open(ctx, token)
        claims = opened.claims
        if not await _acknowledged_with(ctx, claims):
            raise LinkRefused(409, "Say you are dealing with it first",
                              "This link has not acknowledged the alert yet. Open it again and press "
                              "\"I'm dealing with it\".")
        error = _form_error(outcome, note)
        if error is not None:
            return _page(request, token, opened, "resolve", 422, error=error, chosen=outcome, note=note)
        if not await _use(ctx, claims.resolve_id, claims):
            raise LinkRefused(410, "This link has already been used", "It resolved this alert already.")
        text = outcome_text(outcome, note)
        await _apply(ctx, claims.resolve_id, ResolveAlert(claims.alert, claims.contact, text))
    except LinkRefused as why:
        return _refused(request, why)
    return render(request, "ack_done.html", private=True, headline=opened.alert.headline, outcome=text)


def _form_error(outcome: str, note: str) -> str | None:
    if outcome not in OUTCOME_WORDS:
        return "Choose what happened."
    if len(note) > NOTE_LIMIT:
        return f"The note is too long: at most {NOTE_LIMIT} characters."
    return None


async def _apply(ctx: ApiContext, token_id: str, inp: Acknowledge | ResolveAlert) -> list[str]:
    """Through the same path as the API's ack and resolve (to the instance that runs the home);
    a closed alert is a page, not JSON. Not applied (the home changing hands): the use is given
    back, so the same link can be used once when it is pressed again."""
    try:
        steps: list[str] = (await apply_at_owner(ctx, inp.alert, inp))["steps"]
    except HTTPException as exc:
        if exc.status_code != 503:
            raise LinkRefused(exc.status_code, "This alert is already closed", str(exc.detail)) from None
        await _give_back(ctx, token_id)
        raise LinkRefused(503, "Please try again in a minute",
                          "tecmon could not pass this on just now; nothing was recorded. Until someone "
                          "acknowledges, the next contact is called as planned.") from None
    return steps


async def _give_back(ctx: ApiContext, token_id: str) -> None:
    with contextlib.suppress(StoreUnavailable):  # else the link stays used: the tecmon app still works
        await ctx.store.release_ack_link(token_id)


async def _open_or_none(ctx: ApiContext, token: str) -> Opened | None:
    try:
        return await _open(ctx, token)
    except LinkRefused:
        return None
