"""Security headers on every answer that has not set its own.

The API serves a person's routine, their nights and their carers' names: no
answer may be cached by a shared proxy or the browser, framed by another
site, sniffed into another type, or allowed to run anything. Pages set a
stricter, page-specific policy themselves; this is the floor for everything.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FLOOR = {
    b"content-security-policy": b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
}
NO_STORE = (b"cache-control", b"no-store")
CACHEABLE_PREFIXES = ("/static/",)  # our own CSS and JavaScript, the same for everyone


class SecurityHeaders:
    """A pure ASGI middleware: headers are added as the response starts, bodies stream untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith(CACHEABLE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in FLOOR.items() if k not in present]
                if not cacheable and NO_STORE[0] not in present:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
