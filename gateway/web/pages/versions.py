"""A home's change history on its page: who changed what, when and why; one change as a diff; restore.

The diff is the one `GET /homes/{home}/versions/{n}/diff` gives (addresses
redacted), and restoring is `HomeAdmin.restore`, as `POST
/homes/{home}/versions/{n}/restore`: a new version, with its own reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.access import caller, not_found
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.versions import Number, diff_version
from gateway.home_admin import HomeProblem, is_tombstone
from gateway.web.pages.common import redirect, render

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(caller)]
SHOWN = 20


@dataclass(frozen=True, slots=True)
class VersionLine:
    version: int
    saved_at: str
    saved_by: str
    why: str
    deleted: bool


async def recent(ctx: ApiContext, home: str, limit: int = SHOWN) -> list[VersionLine]:
    """The latest versions, newest first."""
    history = await ctx.store.home_config_history(home)
    zone = ctx.runtime.homes[home].plan.zone if home in ctx.runtime.homes else UTC
    return [VersionLine(v.version, f"{v.saved_at.astimezone(zone):%a %d %b %Y %H:%M}", v.saved_by, v.why,
                        is_tombstone(v)) for v in reversed(history[-limit:])]


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    return str(value)


@router.get("/homes/{home}/page/versions/{n}", response_class=HTMLResponse)
async def version_page(home: str, n: Number, request: Request, ctx: Ctx, who: Who) -> HTMLResponse:
    if home not in ctx.runtime.homes:
        raise not_found()
    diff = await diff_version(home, n, ctx, against=None)
    found = await ctx.store.home_config_version(home, n)
    assert found is not None  # diff_version answered 404 otherwise
    latest = (await ctx.store.home_config_version(home))
    changes = [{"field": c["field"], "before": _text(c["before"]), "after": _text(c["after"])}
               for c in diff["changes"]]
    return render(request, ctx, "version.html", who, current="homes", home=home, n=n, against=diff["against"],
                  changes=changes, saved_by=found.saved_by, why=found.why,
                  saved_at=f"{found.saved_at:%a %d %b %Y %H:%M} UTC",
                  editable=ctx.homes.source(home) == "database",
                  is_latest=latest is not None and latest.version == n)


@router.post("/homes/{home}/page/versions/{n}/restore", response_model=None)
async def restore(home: str, n: Number, request: Request, ctx: Ctx, who: Who,
                  why: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse | RedirectResponse:
    try:
        result = await ctx.homes.restore(home, n, who.display, why.strip() or None)
    except HomeProblem as exc:
        return render(request, ctx, "message.html", who, status=exc.status, current="homes",
                      title="This version cannot be restored", detail=str(exc), back=f"/homes/{home}/page")
    return redirect(f"/homes/{home}/page", saved=str(result.version))
