"""Server-rendered pages: Jinja2 templates and our own CSS, nothing from another server.

Every page extends `templates/base.html` (a header, a main area, cards) and
links `/static/tecmon.css`. Autoescaping is on for every template, so names,
reasons and notes typed by people are shown as text, never run as markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"

CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
"""No script at all, styles only from our own /static, forms only back to us, never framed."""

TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,  # a misspelt variable fails the test instead of showing a blank
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_headers(private: bool = False) -> dict[str, str]:
    """Headers every page gets; `private` pages (a credential in the URL) are never cached or referred."""
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
    if private:
        headers |= {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return headers


def render(request: Request, template: str, status: int = 200, *, private: bool = False,
           headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A page from `template`; `root` is the app's mount point, so links work behind a path prefix."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    html = TEMPLATES.get_template(template).render(root=root, **context)
    return HTMLResponse(html, status_code=status, headers={**page_headers(private), **(headers or {})})


def mount_static(app: FastAPI) -> None:
    """`/static/...`: public, like the login page (see `gateway.access`)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
