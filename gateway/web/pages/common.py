"""What every signed-in page shares: rendering with the security headers, CSRF, navigation, times.

Pages are personal (a carer's alerts, a person's routine), so none is ever
cached; the policy allows our own scripts and styles only, so a name or a
note that someone typed can never run as code even if escaping failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.access import CSRF_FIELD, SESSION_COOKIE
from gateway.accounts import Principal
from gateway.api.context import ApiContext
from gateway.web import TEMPLATES

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin"}

ENV = TEMPLATES  # one environment for every page: one loader, one set of rules


@dataclass(frozen=True, slots=True)
class NavLink:
    href: str
    label: str
    key: str


def role_home(who: Principal) -> str:
    """Where a person lands after signing in: the thing their role is for."""
    if who.role == "engineer":
        return "/devices/page"
    return "/inbox"


def nav_for(who: Principal) -> list[NavLink]:
    links = []
    if who.role in ("admin", "coordinator", "carer"):
        links.append(NavLink("/inbox", "Alerts", "inbox"))
        links.append(NavLink("/caseload", "Homes", "homes"))
    if who.role in ("admin", "coordinator", "engineer"):
        links.append(NavLink("/devices/page", "Devices", "devices"))
    return links


def csrf_token(request: Request, ctx: ApiContext) -> str:
    """The session's token for the hidden `csrf_token` field (empty when signed in with a bearer)."""
    session = request.cookies.get(SESSION_COOKIE)
    return ctx.accounts.csrf_for(session) if session else ""


def render(request: Request, ctx: ApiContext, template: str, who: Principal | None = None,
           status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    html = ENV.get_template(template).render(
        root=root, who=who, nav=nav_for(who) if who and who.role else [], csrf=csrf_token(request, ctx),
        csrf_field=CSRF_FIELD, **context)
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def redirect(url: str, **query: str) -> RedirectResponse:
    """303 after a form: the browser then GETs the page, so a reload never sends the form twice."""
    target = f"{url}?{urlencode(query)}" if query else url
    return RedirectResponse(target, status_code=303, headers=HEADERS)


def ago(then: datetime, now: datetime) -> str:
    """'just now', '4 minutes ago', '2 hours 5 minutes ago': how long a carer has been waited for."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        rest = f" {minutes} minute{'s' if minutes != 1 else ''}" if minutes else ""
        return f"{hours} hour{'s' if hours != 1 else ''}{rest} ago"
    return f"{hours // 24} days ago"


def local_time(at: datetime, zone: Any, now: datetime | None = None) -> str:
    """'02:14' today, 'Mon 12 Jan 02:14' otherwise, in the home's own time zone."""
    here = at.astimezone(zone)
    if now is not None and now.astimezone(zone).date() == here.date():
        return f"{here:%H:%M}"
    return f"{here:%a %d %b %H:%M}"
