"""Headers that tell browsers to be careful with every answer, and CORS.

Every response (a 500 too) says ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
no-referrer``, ``X-Frame-Options: DENY``, ``Cross-Origin-Opener-Policy: same-origin``
and ``Cross-Origin-Resource-Policy: same-origin`` (and ``Strict-Transport-Security``
over HTTPS). HTML (the admin page, ``/``, ``/docs``) gets a strict
``Content-Security-Policy``: scripts, styles and everything else only from this
server's own files, no inline script or style, no frames; any other answer gets
``default-src 'none'``. A header a route set itself is kept.

Cross-origin requests from browsers (CORS) are refused unless the server names the
origins it trusts (``create_app(cors_origins=[...])``, ``serve --cors-origin``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventledger.errors import InvalidInput

__all__ = ["API_POLICY", "HTML_POLICY", "SecurityHeaders", "cors_options"]

HTML_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
    " form-action 'self'"
)
"""The Content-Security-Policy of every HTML page."""
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of every other answer (JSON, events, files)."""

_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


class SecurityHeaders:
    """Adds the headers above to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS:
                    if name not in headers:
                        headers[name] = value
                if "content-security-policy" not in headers:
                    html = headers.get("content-type", "").startswith("text/html")
                    headers["content-security-policy"] = HTML_POLICY if html else API_POLICY
                if secure and "strict-transport-security" not in headers:
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception as error:
            if started:
                raise
            # Answered here, not by Starlette's outermost error handler, so that a 500
            # carries these headers too (the log has the traceback, under the incident).
            from eventledger.http.problems import unexpected

            await unexpected(error)(scope, receive, with_headers)


def cors_options(origins: Iterable[str]) -> dict[str, Any]:
    """The settings of Starlette's CORSMiddleware for `origins` (each
    ``scheme://host[:port]``, or ``*`` for any): API keys in headers, never cookies."""
    chosen = list(origins)
    for origin in chosen:
        if origin != "*" and (not isinstance(origin, str) or not _ORIGIN.fullmatch(origin)):
            raise InvalidInput(
                f"a CORS origin is scheme://host[:port] (no path, no trailing /), like"
                f" https://shop.example.com, or * for any; not {origin!r}"
            )
    return {
        "allow_origins": chosen,
        "allow_methods": ["GET", "POST", "HEAD", "OPTIONS"],
        "allow_headers": [
            "Authorization",
            "X-API-Key",
            "Content-Type",
            "Idempotency-Key",
            "Last-Event-ID",
            "X-Correlation-ID",
            "Eventledger-Min-Position",
            "traceparent",
            "tracestate",
        ],
        "expose_headers": [
            "Retry-After",
            "Idempotent-Replayed",
            "Location",
            "WWW-Authenticate",
            "Eventledger-Read-From",
            "Eventledger-Fallback",
        ],
        "allow_credentials": False,
        "max_age": 600,
    }
