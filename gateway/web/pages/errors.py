"""Errors on page routes as pages: a person who follows a link to a night that is not one of theirs,
or types a date wrongly, gets a page in words with a way back, not a problem+json document.

The API's handlers (`gateway.api.problems`) stay the single source of what an error says; this
wraps them: for a route whose access rule is a page (`gateway.access`), the same status, headers
and words are rendered with `error.html`. Redirects (the sign-in for a signed-out visitor) and
every API route are left exactly as the API's handlers answer them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from alerts.homeconfig import ConfigError
from gateway.access import rule_for
from gateway.home_admin import HomeProblem
from gateway.web.pages.common import render, role_home

Handler = Callable[[Request, Any], Awaitable[Response]]
WRAPPED = (StarletteHTTPException, RequestValidationError, ConfigError, HomeProblem)
KEEP = ("retry-after", "www-authenticate", "allow")


def is_page(request: Request) -> bool:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return False
    rule = rule_for(request.method, route.path)
    return rule is not None and rule.page


def _as_page(original: Handler) -> Handler:
    async def handle(request: Request, exc: Any) -> Response:
        answer = await original(request, exc)
        if answer.status_code < 400 or not is_page(request):
            return answer
        problem = json.loads(bytes(answer.body))
        messages = [e["message"] if not e.get("field") else f"{e['field']}: {e['message']}"
                    for e in problem.get("errors") or []]
        who = getattr(request.state, "principal", None)
        signed_in = who if who is not None and who.role else None
        back = role_home(signed_in) if signed_in else "/login"
        headers = {k: v for k, v in answer.headers.items() if k.lower() in KEEP}
        return render(request, request.app.state.ctx, "error.html", signed_in, status=answer.status_code,
                      headers=headers, current="", title=problem.get("title", "Error"),
                      detail=problem.get("detail", ""), messages=messages, back=back)

    return handle


def install(app: FastAPI) -> None:
    """Wrap the API's error handlers (installed first) so that page routes answer with a page."""
    for kind in WRAPPED:
        original = app.exception_handlers.get(kind)
        if original is not None:
            app.exception_handlers[kind] = _as_page(original)  # type: ignore[arg-type]
