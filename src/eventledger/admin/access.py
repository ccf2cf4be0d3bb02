"""Who is looking at the admin page, and whether they may press its buttons.

Viewing needs the ``read`` scope; buttons that change something need ``admin``, the
session's CSRF token in the form, and (when the browser sends one) an ``Origin``
of this server. An anonymous server (local development) skips the login, and every
page says so; it still hands out a session, for the CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from eventledger.admin.session import COOKIE, Session, SessionSigner
from eventledger.http.auth import (
    ANONYMOUS,
    ApiKeyAuthenticator,
    Authenticator,
    Principal,
    caller_of,
    client_address,
)
from eventledger.http.limits import RateLimiter
from eventledger.http.problems import HttpProblem

__all__ = ["AdminSessions", "NeedsLogin", "Viewer", "form_of", "viewer_of"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Viewer:
    actor: str
    scopes: frozenset[str]
    anonymous: bool
    csrf: str

    @property
    def can_change(self) -> bool:
        return "admin" in self.scopes


class NeedsLogin(Exception):
    """The request has no session: the page sends the browser to the login form."""


class AdminSessions:
    """Reads sessions from cookies (for the admin page and for the API it calls)."""

    def __init__(self, signer: SessionSigner) -> None:
        self.signer = signer

    async def session(self, request: Request) -> Session | None:
        session = self.signer.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        authenticator: Authenticator | None = request.app.state.authenticator
        if session.key_id is not None:
            if not isinstance(authenticator, ApiKeyAuthenticator):
                return None
            if await authenticator.keys.active(session.key_id) is None:
                return None  # the key was revoked: its sessions end with it
        elif authenticator is not None and session.actor == ANONYMOUS.actor:
            return None  # made while the server was anonymous; it is not now
        return session

    async def principal(self, request: Request) -> Principal | None:
        session = await self.session(request)
        if session is None:
            return None
        if request.method not in SAFE_METHODS and not self.signer.token_matches(
            session, request.headers.get("x-csrf-token")
        ):
            return None
        return Principal(session.actor, session.scopes, session.key_id)


async def viewer_of(request: Request) -> tuple[Viewer, str | None]:
    """The person looking, and a new cookie to set (anonymous servers hand one out)."""
    sessions: AdminSessions = request.app.state.sessions
    session = await sessions.session(request)
    anonymous = request.app.state.authenticator is None
    cookie = None
    if session is None:
        if not anonymous:
            raise NeedsLogin
        cookie, session = sessions.signer.issue(ANONYMOUS.actor, ANONYMOUS.scopes, None)
    if "read" not in session.scopes:
        raise HttpProblem(
            403, "forbidden", "Forbidden", "the admin page needs a key with the 'read' scope"
        )
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        kind = "read" if request.method in SAFE_METHODS else "admin"
        if anonymous:
            address = client_address(request)
            limiter.admit(kind, f"address:{address}", f"the address {address}")
        else:
            who = Principal(session.actor, session.scopes, session.key_id)
            limiter.admit(kind, caller_of(who), session.actor)
    return Viewer(session.actor, session.scopes, anonymous, session.csrf), cookie


def set_session_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each), without python-multipart."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HttpProblem(413, "too-large", "Form too large", "the form is over 64 KiB")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise HttpProblem(400, "bad-form", "Bad form", "the form is not UTF-8") from None
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


async def checked_form(request: Request, viewer: Viewer) -> dict[str, str]:
    """The form of a button that changes something, once its origin, its CSRF token and
    the viewer's scope are checked."""
    if not same_origin(request):
        raise HttpProblem(403, "cross-site", "Forbidden", "the form came from another site")
    form = await form_of(request)
    if not SessionSigner.token_matches(
        Session(viewer.actor, viewer.scopes, None, 0, viewer.csrf), form.get("csrf")
    ):
        raise HttpProblem(
            403, "csrf", "Forbidden", "the form's token is missing or old: reload the page"
        )
    if not viewer.can_change:
        raise HttpProblem(
            403,
            "forbidden",
            "Forbidden",
            f"this needs the 'admin' scope; {viewer.actor} has {', '.join(sorted(viewer.scopes))}",
        )
    return form


def login_redirect(request: Request) -> RedirectResponse:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    from urllib.parse import quote

    return RedirectResponse(f"/admin/login?next={quote(wanted, safe='')}", status_code=303)


def safe_next(value: Any) -> str:
    """Where to go after logging in: a page of the admin site, nothing else."""
    if (
        isinstance(value, str)
        and (value == "/admin" or value.startswith(("/admin/", "/admin?")))
        and not any(part in value for part in ("//", "\\", "/..", "\r", "\n"))
    ):
        return value
    return "/admin"
