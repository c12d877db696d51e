"""The one place that authenticates and scopes every request.

Every route of the app is listed in `RULES` with the roles that may use it
and where its home comes from; `authorize` runs before every route (a global
dependency) and refuses what the table does not allow. A route missing from
the table is refused outright, and a test walks the app's routes so a new
route without a rule fails the build.

- No credentials: 401, except on the public routes.
- A home outside the caller's scope: 404, the same answer as a home that does
  not exist, so home ids do not leak.
- A role that may not use the route: 403.

Handlers that list things filter with `Principal.visible`/`sees`; what they
record as "who did it" is always `Principal.display`, never a name sent in
the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from alerts.lifecycle import home_of
from gateway.accounts import ANONYMOUS, Accounts, Principal
from gateway.store.accounts import Role

SESSION_COOKIE = "tecmon_session"

HomeFrom = Literal["path", "alert"] | None


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may use a route; `home` says where the home it is about comes from."""

    roles: frozenset[Role]
    home: HomeFrom = None
    public: bool = False
    metrics_token: bool = False  # the Prometheus scrape token is accepted too
    page: bool = False  # an HTML page: without a session, go to the login page instead of a 401


def allow(*roles: Role, home: HomeFrom = None) -> Rule:
    return Rule(frozenset(roles), home)


def page(*roles: Role, home: HomeFrom = None) -> Rule:
    return Rule(frozenset(roles), home, page=True)


PUBLIC_PAGE = Rule(frozenset(), public=True, page=True)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


PUBLIC = Rule(frozenset(), public=True)
EVERYONE: tuple[Role, ...] = ("admin", "coordinator", "carer", "engineer")
CARE: tuple[Role, ...] = ("admin", "coordinator", "carer")
EDITORS: tuple[Role, ...] = ("admin", "coordinator")

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("POST", "/auth/token"): PUBLIC,
    ("GET", "/ack/{token}"): PUBLIC,  # the signed link is the credential
    ("POST", "/ack/{token}"): PUBLIC,
    ("POST", "/ack/{token}/resolve"): PUBLIC,
    ("GET", "/openapi.json"): allow(*EVERYONE),
    ("GET", "/me"): allow(*EVERYONE),
    ("GET", "/metrics"): Rule(frozenset({"admin", "engineer"}), metrics_token=True),
    ("GET", "/users"): allow("admin"),
    ("POST", "/users"): allow("admin"),
    ("DELETE", "/users/{name}"): allow("admin"),
    ("GET", "/homes"): allow(*EVERYONE),
    ("POST", "/homes"): allow(*EDITORS),
    ("GET", "/homes/{home}"): allow(*CARE, home="path"),
    ("PUT", "/homes/{home}"): allow(*EDITORS, home="path"),
    ("DELETE", "/homes/{home}"): allow(*EDITORS, home="path"),
    ("GET", "/homes/{home}/versions"): allow(*EDITORS, home="path"),
    ("GET", "/homes/{home}/versions/{n}"): allow(*EDITORS, home="path"),
    ("GET", "/homes/{home}/versions/{n}/diff"): allow(*EDITORS, home="path"),
    ("POST", "/homes/{home}/versions/{n}/restore"): allow(*EDITORS, home="path"),
    ("POST", "/homes/{home}/preview"): allow(*EDITORS, home="path"),
    ("GET", "/homes/{home}/nights/{date}"): allow(*CARE, home="path"),
    ("GET", "/homes/{home}/summary"): allow(*CARE, home="path"),
    ("POST", "/homes/{home}/company"): allow("admin", "coordinator", "carer", home="path"),
    ("GET", "/alerts"): allow(*CARE),
    ("GET", "/alerts/history"): allow(*CARE),
    ("GET", "/alerts/{alert_id}"): allow(*CARE, home="alert"),
    ("POST", "/alerts/{alert_id}/ack"): allow(*CARE, home="alert"),
    ("POST", "/alerts/{alert_id}/resolve"): allow(*CARE, home="alert"),
    ("GET", "/devices"): allow("admin", "coordinator", "engineer"),
    ("GET", "/dead-letters"): allow("admin", "engineer"),
    # web pages (gateway.web.pages): signed-out visitors are sent to the login page
    ("GET", "/login"): PUBLIC_PAGE,
    ("POST", "/login"): PUBLIC_PAGE,
    ("POST", "/logout"): page(*EVERYONE),
    ("GET", "/"): page(*EVERYONE),
    ("GET", "/inbox"): page(*CARE),
    ("POST", "/inbox/{alert_id}/ack"): page(*CARE, home="alert"),
    ("POST", "/inbox/{alert_id}/resolve"): page(*CARE, home="alert"),
    ("GET", "/events/alerts"): page(*CARE),
    ("GET", "/caseload"): page(*CARE),
    ("GET", "/homes/{home}/page"): page(*EDITORS, home="path"),
    ("POST", "/homes/{home}/page"): page(*EDITORS, home="path"),
    ("POST", "/homes/{home}/page/preview"): page(*EDITORS, home="path"),
    ("GET", "/homes/{home}/page/versions/{n}"): page(*EDITORS, home="path"),
    ("POST", "/homes/{home}/page/versions/{n}/restore"): page(*EDITORS, home="path"),
    ("GET", "/homes/{home}/nights/{date}/page"): page(*CARE, home="path"),
    ("GET", "/devices/page"): page("admin", "coordinator", "engineer"),
}


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route of an app, through the routers it includes (FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from api_routes(route.routes)


def rule_for(method: str, path: str) -> Rule | None:
    return RULES.get(("GET" if method == "HEAD" else method, path))


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
    exc = HTTPException(status, detail, headers=headers)
    exc.title = title  # type: ignore[attr-defined]  # read by the problem+json handler
    return exc


def not_found(what: str = "home") -> HTTPException:
    return problem(404, "Not found", f"There is no such {what}, or it is not one of yours.")


def credentials(request: Request) -> tuple[str | None, bool]:
    """(the token, whether it came from the session cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie, cookie is not None


async def _check_csrf(request: Request, accounts: Accounts, session: str) -> None:
    """A cookie is sent by the browser on its own, so a change made with one must also carry the
    page's CSRF token (a form field or a header) that another site cannot read."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not accounts.csrf_ok(session, sent):
        raise problem(403, "Forbidden", "This form has expired or did not come from tecmon: reload the page "
                      "and try again.")


def _unauthenticated(request: Request, rule: Rule) -> HTTPException:
    if rule.page:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return HTTPException(303, "Sign in first.", headers={"Location": f"/login?next={quote(target)}"})
    return problem(401, "Not signed in", "Sign in first: POST /auth/token, then send "
                   "'Authorization: Bearer <token>'.", {"WWW-Authenticate": "Bearer"})


async def authorize(request: Request) -> None:
    """The global dependency: authenticate, check the route's rule, and keep the caller."""
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else request.url.path
    rule = rule_for(request.method, path)
    if rule is None:  # a route nobody wrote a rule for is closed, not open
        raise problem(403, "Forbidden", f"{request.method} {path} has no access rule.")
    request.state.principal = ANONYMOUS
    if rule.public:
        return
    accounts: Accounts = request.app.state.ctx.accounts
    token, from_cookie = credentials(request)
    if rule.metrics_token and token and accounts.metrics_token_ok(token):
        return
    principal = await accounts.principal(token) if token else None
    if principal is None:
        raise _unauthenticated(request, rule)
    if from_cookie and token:
        await _check_csrf(request, accounts, token)
    request.state.principal = principal
    home = _home_of_request(request, rule.home)
    if home is not None and not principal.sees(home):
        raise not_found("alert" if rule.home == "alert" else "home")
    if principal.role not in rule.roles:
        raise problem(403, "Forbidden", f"A {principal.role} cannot use {request.method} {path}.")


def _home_of_request(request: Request, home_from: HomeFrom) -> str | None:
    if home_from == "path":
        return str(request.path_params.get("home", ""))
    if home_from == "alert":
        return home_of(str(request.path_params.get("alert_id", "")))
    return None


def caller(request: Request) -> Principal:
    """The principal `authorize` found (a handler dependency)."""
    principal: Principal = request.state.principal
    return principal
