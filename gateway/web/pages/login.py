"""Signing in and out of the web pages: the same accounts and rate limit as `POST /auth/token`.

The session is a signed token in an HttpOnly, SameSite=Strict cookie: script
cannot read it and another site cannot make the browser send it; changes made
with it also carry the page's CSRF token (see `gateway.access`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.access import SESSION_COOKIE, caller
from gateway.accounts import LoginRefused, Principal, principal_of
from gateway.api.context import ApiContext, context
from gateway.settings import Settings
from gateway.web.pages.common import redirect, render, role_home

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: `next=https://evil.example` must not send a carer elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def secure_cookies(settings: Settings) -> bool:
    if settings.auth.secure_cookies is not None:
        return settings.auth.secure_cookies
    return bool(settings.public_url and settings.public_url.startswith("https"))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ctx: Ctx, next: str | None = None, signed_out: bool = False) -> HTMLResponse:
    notice = "You have signed out." if signed_out else None
    return render(request, ctx, "login.html", next=safe_next(next) or "", error=None, notice=notice,
                  username="")


@router.post("/login", response_model=None)
async def login(request: Request, ctx: Ctx, username: Annotated[str, Form(max_length=200)] = "",
                password: Annotated[str, Form(max_length=1000)] = "",
                next: Annotated[str, Form(max_length=2000)] = "") -> HTMLResponse | RedirectResponse:
    address = request.client.host if request.client else "unknown"
    try:
        user = await ctx.accounts.login(username.strip(), password, address)
    except LoginRefused as refused:
        # 400, not 401: the page itself is public; 401 would say "this needs credentials"
        status, headers = (429, {"Retry-After": str(refused.retry_after_s)}) if refused.retry_after_s \
            else (400, {})
        return render(request, ctx, "login.html", status=status, headers=headers, next=safe_next(next) or "",
                      error=str(refused), notice=None, username=username)
    token, seconds = ctx.accounts.issue(user, "session")
    response = redirect(safe_next(next) or role_home(principal_of(user)))
    response.set_cookie(SESSION_COOKIE, token, max_age=seconds, httponly=True, samesite="strict",
                        secure=secure_cookies(ctx.settings), path="/")
    return response


@router.post("/logout")
def logout(who: Annotated[Principal, Depends(caller)]) -> RedirectResponse:
    response = redirect("/login", signed_out="1")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/")
def home(who: Annotated[Principal, Depends(caller)]) -> RedirectResponse:
    return redirect(role_home(who))
