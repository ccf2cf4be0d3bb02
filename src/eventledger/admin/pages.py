"""How an admin page is served: who is looking, the page's own work, errors as pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from eventledger.admin.access import NeedsLogin, Viewer, login_redirect, set_session_cookie
from eventledger.admin.render import render
from eventledger.app import Service
from eventledger.errors import EventLedgerError, InvalidInput, NotFound
from eventledger.http.params import parse_time
from eventledger.http.problems import HttpProblem

__all__ = [
    "Page",
    "PageHandler",
    "add_missing_page",
    "add_page",
    "int_param",
    "show",
    "text_param",
    "time_param",
]

log = logging.getLogger("eventledger.admin")

PAGE_SIZE = 50


class Page:
    """What a page handler gets: the request, who is looking, the running service."""

    def __init__(self, request: Request, viewer: Viewer) -> None:
        self.request = request
        self.viewer = viewer
        self.service: Service = request.app.state.service

    @property
    def fragment(self) -> bool:
        """Asked for the part that refreshes itself, not the whole page."""
        return self.request.query_params.get("fragment") == "1"

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        return render(
            template,
            status_code,
            viewer=self.viewer,
            path=self.request.url.path,
            notice=self.request.query_params.get("done"),
            **context,
        )


PageHandler = Callable[[Page], Awaitable[Response]]


def add_page(
    app: FastAPI, path: str, handler: PageHandler, methods: tuple[str, ...] = ("GET",)
) -> None:
    """Serve `handler` at `path` (outside the API's schema): to people with a session,
    others are sent to the login form; errors become pages that say what was wrong."""
    from eventledger.admin.access import viewer_of

    async def endpoint(request: Request) -> Response:
        try:
            viewer, cookie = await viewer_of(request)
        except NeedsLogin:
            if request.method != "GET":
                return render(
                    "error.html",
                    401,
                    viewer=None,
                    path=request.url.path,
                    notice=None,
                    title="Logged out",
                    detail="log in again, then repeat this",
                )
            return login_redirect(request)
        except HttpProblem as refused:
            refusal = render(
                "error.html",
                refused.status,
                viewer=None,
                path=request.url.path,
                notice=None,
                title=refused.title,
                detail=refused.detail,
            )
            refusal.headers.update(refused.headers or {})  # Retry-After of a 429
            return refusal
        page = Page(request, viewer)
        try:
            response = await handler(page)
        except HttpProblem as problem:
            response = page.render(
                "error.html", problem.status, title=problem.title, detail=problem.detail
            )
        except NotFound as missing:
            response = page.render("error.html", 404, title="Not found", detail=str(missing))
        except EventLedgerError as error:
            status = 400 if isinstance(error, InvalidInput) else 503
            response = page.render(
                "error.html", status, title=type(error).__name__, detail=str(error)
            )
        if cookie is not None:
            set_session_cookie(
                response, request, cookie, int(request.app.state.sessions.signer.lifetime)
            )
        return response

    app.add_api_route(path, endpoint, methods=list(methods), include_in_schema=False)


def add_missing_page(app: FastAPI) -> None:
    async def missing(page: Page) -> Response:
        raise NotFound(f"the admin page has nothing at {page.request.url.path}")

    add_page(app, "/admin/{rest:path}", missing)


def show(page: Page, template: str, fragment: str | None = None, **context: Any) -> Response:
    """The page, or (asked with ``fragment=1``) only its self-refreshing part."""
    if fragment is not None and page.fragment:
        return page.render(fragment, **context)
    return page.render(template, **context)


def text_param(page: Page, name: str, max_length: int = 200) -> str | None:
    value = page.request.query_params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_length or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{name}: at most {max_length} printable characters")
    return value.strip()


def int_param(
    page: Page,
    name: str,
    default: int | None = None,
    minimum: int = 0,
    maximum: int = (1 << 63) - 1,
) -> int | None:
    value = page.request.query_params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not minimum <= int(value) <= maximum:
        raise InvalidInput(
            f"{name} is a whole number from {minimum} to {maximum}, not {value!r:.40}"
        )
    return int(value)


def time_param(page: Page, name: str) -> datetime | None:
    value = text_param(page, name, 64)
    return None if value is None else parse_time(value, name)
