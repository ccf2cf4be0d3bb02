"""Who is calling, and may they: API keys (or any authenticator) and scopes per route.

A client presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Routes need a scope (``read``, ``write`` or ``admin``); the key's owner becomes
the actor of the commands it sends. Another authenticator (say, one that checks
JWTs from an identity provider) is any object with an async ``authenticate``
method that returns a :class:`Principal` or None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from eventledger.http.keys import ApiKeys
from eventledger.http.problems import HttpProblem

__all__ = [
    "ApiKeyAuthenticator",
    "AuthenticateFirst",
    "Authenticator",
    "CookieSessions",
    "Principal",
    "require",
]


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str
    scopes: frozenset[str]


ANONYMOUS = Principal("anonymous", frozenset({"read", "write", "admin"}))


class Authenticator(Protocol):
    async def authenticate(self, request: Request) -> Principal | None: ...


class CookieSessions(Protocol):
    """Who a request's session cookie speaks for (the admin page's login); None when it
    has no valid session. A request that changes something must also carry the
    session's CSRF token (``X-CSRF-Token``), or it is refused."""

    async def principal(self, request: Request) -> Principal | None: ...


class ApiKeyAuthenticator:
    """Checks API keys kept in the store (see :class:`eventledger.http.ApiKeys`)."""

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys

    async def authenticate(self, request: Request) -> Principal | None:
        presented = presented_key(request)
        if presented is None:
            return None
        key = await self.keys.verify(presented)
        return None if key is None else Principal(key.owner, key.scopes)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key")


def require(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, who must hold `scope`."""

    async def dependency(request: Request) -> Principal:
        return await authorise(request, scope)

    return dependency


async def authorise(request: Request, scope: str) -> Principal:
    """The caller of `request`, who must hold `scope` (401 or 403 otherwise)."""
    authenticator: Authenticator | None = request.app.state.authenticator
    if authenticator is None:  # explicitly open, for local development
        return ANONYMOUS
    early: Principal | None = getattr(request.state, "principal", None)
    principal = early or await authenticator.authenticate(request)
    sessions: CookieSessions | None = getattr(request.app.state, "sessions", None)
    if principal is None and sessions is not None and presented_key(request) is None:
        principal = await sessions.principal(request)
    if principal is None:
        missing = presented_key(request) is None
        raise Unauthorized(
            "no API key given: send 'Authorization: Bearer <key>'"
            if missing
            else "the API key is not valid (unknown, wrong or revoked)"
        )
    if scope not in principal.scopes:
        raise HttpProblem(
            403,
            "forbidden",
            "Forbidden",
            f"this route needs the {scope!r} scope; the key of {principal.actor} has"
            f" {', '.join(sorted(principal.scopes)) or 'none'}",
        )
    return principal


class AuthenticateFirst:
    """Check the caller of a request with a body (a command) before anything reads the
    body: an anonymous or unauthorised caller gets 401 or 403, never a 422 about a body
    it had no right to send. The caller found is kept for the route's own check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
        if authenticator is None or not scope["path"].startswith("/commands/"):
            await self.app(scope, receive, send)
            return
        try:
            principal = await authorise(request, "write")
        except HttpProblem as refused:
            from eventledger.http.problems import for_exception

            await for_exception(refused)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class Unauthorized(HttpProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(401, "unauthorized", "Unauthorized", detail)
