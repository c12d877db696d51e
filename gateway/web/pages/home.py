"""A coordinator's page for one home: the person's own words beside the routine, an editor, the
what-if preview before saving, and the change history with who, when, why.

Saving goes through `HomeAdmin.update` like `PUT /homes/{home}` (a version
with who and why, applied at once); the preview is the one `POST
/homes/{home}/preview` answers, over the same stored nights. A home defined
by a file is shown read-only: its file is its source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from alerts.describe import explain
from alerts.homeconfig import ConfigError, parse_home_config
from gateway.access import caller, not_found
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.history import PreviewBody, post_preview
from gateway.api.homes import list_homes
from gateway.history.nights import last_completed
from gateway.home_admin import HomeProblem
from gateway.web.pages import versions
from gateway.web.pages.common import redirect, render
from gateway.web.pages.routine_form import (
    CARE,
    RULES,
    RoutineForm,
    config_from_form,
    form_from_config,
    form_from_post,
    place_errors,
)

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(caller)]
PREVIEW_NIGHTS = 14
WHY_LIMIT = 500


async def saved_config(ctx: ApiContext, home: str) -> dict[str, Any]:
    """The configuration as saved (real addresses, no service defaults mixed in), else as running."""
    rt = ctx.runtime.homes.get(home)
    if rt is None:
        raise not_found()
    if ctx.homes.source(home) == "database":
        latest = await ctx.store.home_config_version(home)
        if latest is not None:
            return dict(latest.config)
    return rt.config.model_dump(mode="json", by_alias=True)


async def _posted(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def preview_for(ctx: ApiContext, home: str, proposed: dict[str, Any]) -> dict[str, Any]:
    """The preview's figures, with each night that differs, in plain words."""
    found = await post_preview(home, PreviewBody(config=proposed, nights=PREVIEW_NIGHTS), ctx)
    nights = [n for n in found["nights"] if len(n["current"]) != len(n["proposed"])]
    return {"nights": PREVIEW_NIGHTS, "current": found["totals"]["current"],
            "proposed": found["totals"]["proposed"], "differing": nights}


async def _check(ctx: ApiContext, home: str, posted: Mapping[str, str]
                 ) -> tuple[RoutineForm, dict[str, Any], dict[str, Any] | None]:
    """The form as sent, the configuration it proposes, and the preview when it is valid."""
    base = await saved_config(ctx, home)
    form = form_from_post(base, posted)
    proposed, problems = config_from_form(base, form)
    preview = None
    if not problems:
        try:
            parse_home_config(proposed, "config")
            preview = await preview_for(ctx, home, proposed)
        except ConfigError as exc:
            problems = exc.problems
    place_errors(form, problems)
    return form, proposed, preview


async def _page(request: Request, ctx: ApiContext, who: Principal, home: str, form: RoutineForm | None = None,
                preview: dict[str, Any] | None = None, status: int = 200, notice: str | None = None,
                why: str = "", why_error: str | None = None) -> HTMLResponse:
    base = await saved_config(ctx, home)
    rt = ctx.runtime.homes[home]
    editable = ctx.homes.source(home) == "database"
    history = await versions.recent(ctx, home)
    return render(request, ctx, "home.html", who, status=status, current="homes", home=home,
                  person=rt.plan.person, words=rt.plan.in_my_words, plain=explain(rt.config),
                  editable=editable, form=form or form_from_config(base), rules=RULES, care=CARE,
                  preview=preview, notice=notice, why=why, why_error=why_error, why_limit=WHY_LIMIT,
                  history=history,
                  last_night=last_completed(rt.plan.night, ctx.clock.now()).isoformat())


@router.get("/caseload", response_class=HTMLResponse)
def caseload(request: Request, ctx: Ctx, who: Who,
             cursor: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    found = list_homes(ctx, who, cursor=cursor, limit=50)
    now = ctx.clock.now()
    rows = [{**item, "last_night": last_completed(ctx.runtime.homes[item["home"]].plan.night, now)}
            for item in found["items"]]
    return render(request, ctx, "caseload.html", who, current="homes", homes=rows,
                  next_cursor=found["next_cursor"], first_page=cursor is None,
                  can_edit=who.role in ("admin", "coordinator"))


@router.get("/homes/{home}/page", response_class=HTMLResponse)
async def home_page(home: str, request: Request, ctx: Ctx, who: Who,
                    saved: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    notice = f"Saved as version {saved}: the new routine applies now." if saved else None
    return await _page(request, ctx, who, home, notice=notice)


@router.post("/homes/{home}/page", response_model=None)
async def save_or_preview(home: str, request: Request, ctx: Ctx, who: Who) -> HTMLResponse | RedirectResponse:
    """`action=preview` shows what the edited routine would have done (the no-JavaScript path);
    `action=save` saves it with the reason given, once it is valid."""
    posted = await _posted(request)
    form, proposed, preview = await _check(ctx, home, posted)
    why = posted.get("why", "").strip()[:WHY_LIMIT]
    if posted.get("action") != "save" or form.errors or form.general:
        status = 422 if form.errors or form.general else 200
        return await _page(request, ctx, who, home, form, preview, status, why=why)
    if not why:
        return await _page(request, ctx, who, home, form, preview, 422, why=why,
                           why_error="Say why it changes, for the history: for example \"Rose wants more "
                           "time: she sits in the kitchen\".")
    try:
        result = await ctx.homes.update(home, proposed, who.display, why)
    except ConfigError as exc:
        place_errors(form, exc.problems)
        return await _page(request, ctx, who, home, form, preview, 422, why=why)
    except HomeProblem as exc:
        return await _page(request, ctx, who, home, form, preview, exc.status, notice=str(exc), why=why)
    return redirect(f"/homes/{home}/page", saved=str(result.version))


@router.post("/homes/{home}/page/preview", response_class=HTMLResponse)
async def live_preview(home: str, request: Request, ctx: Ctx, who: Who) -> HTMLResponse:
    """The preview panel alone, for the page's script to swap in as the routine is edited."""
    form, _, preview = await _check(ctx, home, await _posted(request))
    return render(request, ctx, "home_preview.html", who, status=200, preview=preview, form=form)
