"""Who is calling, and may they: API keys (or any authenticator) and scopes per route.

A client presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Routes need a scope (``read``, ``write`` or ``admin``); the key's owner becomes
the actor of the commands it sends. Another authenticator (say, one that checks
JWTs from an identity provider) is any object with an async ``authenticate``
method that returns a :class:`Principal` or None (or raises :class:`Unauthorized` to
say why a credential is refused, as for an expired key).

Every caller is also held to the server's rate limits (:mod:`eventledger.http.limits`):
per key and scope, and per client address for failed authentications.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from eventledger.http.keys import ApiKeys
from eventledger.http.limits import RateLimiter
from eventledger.http.problems import HttpProblem

__all__ = [
    "ApiKeyAuthenticator",
    "AuthenticateFirst",
    "Authenticator",
    "CookieSessions",
    "Principal",
    "Unauthorized",
    "require",
]


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str
    scopes: frozenset[str]
    key_id: str | None = None
    """The API key's id, when the caller used one of the store's keys (its rate limits
    are the key's own)."""


log = logging.getLogger("eventledger.http")

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
        key = await self.keys.identify(presented)
        if key is None or key.revoked_at is not None:
            return None
        if key.expired:
            assert key.expires_at is not None
            raise Unauthorized(
                f"the API key {key.id} expired at {key.expires_at.isoformat(timespec='seconds')};"
                " ask for a new one (eventledger keys rotate makes a successor)"
            )
        return Principal(key.owner, key.scopes, key.id)


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
    """The caller of `request`, who must hold `scope` (401 or 403 otherwise, 429 over
    its rate limit)."""
    authenticator: Authenticator | None = request.app.state.authenticator
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if authenticator is None:  # explicitly open, for local development
        if limiter is not None:
            address = client_address(request)
            limiter.admit(scope, f"address:{address}", f"the address {address}")
        return ANONYMOUS
    early: Principal | None = getattr(request.state, "principal", None)
    if early is not None:  # checked, and counted, before the body was read
        principal = early
    else:
        principal = await _authenticate(request, authenticator, limiter)
        if limiter is not None:
            limiter.admit(scope, caller_of(principal), _who(principal))
    if scope not in principal.scopes:
        raise HttpProblem(
            403,
            "forbidden",
            "Forbidden",
            f"this route needs the {scope!r} scope; the key of {principal.actor} has"
            f" {', '.join(sorted(principal.scopes)) or 'none'}",
        )
    return principal


async def _authenticate(
    request: Request, authenticator: Authenticator, limiter: RateLimiter | None
) -> Principal:
    presented = presented_key(request)
    address = client_address(request)
    if limiter is not None and presented is not None:
        limiter.refuse_if_failing(address)
    try:
        principal = await authenticator.authenticate(request)
    except Unauthorized:
        _failed(limiter, address, presented)
        raise
    sessions: CookieSessions | None = getattr(request.app.state, "sessions", None)
    if principal is None and sessions is not None and presented is None:
        principal = await sessions.principal(request)
    if principal is None:
        if presented is None:
            raise Unauthorized("no API key given: send 'Authorization: Bearer <key>'")
        _failed(limiter, address, presented)
        raise Unauthorized("the API key is not valid (unknown, wrong or revoked)")
    return principal


def _failed(limiter: RateLimiter | None, address: str, presented: str | None) -> None:
    """Count a failed authentication; the log names the key's id, never its secret."""
    key_id = ApiKeys.id_of(presented) if presented is not None else None
    log.debug(
        "authentication failed from %s (%s)",
        address,
        f"key {key_id}" if key_id else "not an eventledger key",
    )
    if limiter is not None:
        limiter.failed(address)


def client_address(request: Request) -> str:
    """The address the request came from (the proxy's, unless uvicorn is told to trust
    its ``X-Forwarded-For``)."""
    return request.client.host if request.client is not None else "unknown"


def caller_of(principal: Principal) -> str:
    """Whose rate limits a principal uses: its key's, or its actor's."""
    return f"key:{principal.key_id}" if principal.key_id else f"actor:{principal.actor}"


def _who(principal: Principal) -> str:
    if principal.key_id:
        return f"the key {principal.key_id} of {principal.actor}"
    return principal.actor


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
