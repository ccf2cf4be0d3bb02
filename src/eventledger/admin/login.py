"""Logging in to the admin page with an API key, and out."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from eventledger.admin.access import (
    AdminSessions,
    form_of,
    safe_next,
    same_origin,
    set_session_cookie,
)
from eventledger.admin.render import render
from eventledger.admin.session import COOKIE, SessionSigner
from eventledger.http.auth import (
    ApiKeyAuthenticator,
    Authenticator,
    Unauthorized,
    client_address,
)
from eventledger.http.keys import ApiKeys
from eventledger.http.limits import RateLimiter, TooManyRequests

__all__ = ["add_login_pages"]


def _form(
    request: Request, status: int = 200, error: str | None = None, wanted: str | None = None
) -> Response:
    return render(
        "login.html",
        status,
        viewer=None,
        path="/admin/login",
        notice=None,
        error=error,
        next=safe_next(wanted or request.query_params.get("next")),
    )


def add_login_pages(app: FastAPI) -> None:
    async def login_form(request: Request) -> Response:
        if request.app.state.authenticator is None:
            return RedirectResponse("/admin", 303)  # anonymous: nothing to log in to
        return _form(request)

    async def login(request: Request) -> Response:
        authenticator: Authenticator | None = request.app.state.authenticator
        if authenticator is None:
            return RedirectResponse("/admin", 303)
        if not same_origin(request):
            return _form(request, 403, "the form came from another site")
        form = await form_of(request)
        key = form.get("key", "").strip()
        wanted = form.get("next")
        if not key:
            return _form(
                request, 400, "enter an API key (eventledger keys create makes one)", wanted
            )
        limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
        address = client_address(request)
        try:
            if limiter is not None:
                limiter.refuse_if_failing(address)
            principal = await authenticator.authenticate(_with_key(request, key))
        except TooManyRequests as refused:
            answer = _form(request, 429, refused.detail, wanted)
            answer.headers.update(refused.headers or {})
            return answer
        except Unauthorized as refused:  # say why (an expired key)
            principal, why = None, refused.detail
        else:
            why = "that key is not valid (unknown, wrong or revoked)"
        if principal is None:
            if limiter is not None:
                limiter.failed(address)
            return _form(request, 401, why, wanted)
        if "read" not in principal.scopes:
            return _form(
                request,
                403,
                f"the key of {principal.actor} has no 'read' scope; the admin page needs it",
                wanted,
            )
        key_id = ApiKeys.id_of(key) if isinstance(authenticator, ApiKeyAuthenticator) else None
        sessions: AdminSessions = request.app.state.sessions
        cookie, _ = sessions.signer.issue(principal.actor, principal.scopes, key_id)
        response = RedirectResponse(safe_next(form.get("next")), 303)
        set_session_cookie(response, request, cookie, int(sessions.signer.lifetime))
        return response

    async def logout(request: Request) -> Response:
        sessions: AdminSessions = request.app.state.sessions
        session = await sessions.session(request)
        form = await form_of(request)
        if session is not None and (
            not same_origin(request) or not SessionSigner.token_matches(session, form.get("csrf"))
        ):
            return render(
                "error.html",
                403,
                viewer=None,
                path="/admin/logout",
                notice=None,
                title="Forbidden",
                detail="the form's token is missing or old: reload the page",
            )
        response = RedirectResponse("/admin/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    app.add_api_route("/admin/login", login_form, methods=["GET"], include_in_schema=False)
    app.add_api_route("/admin/login", login, methods=["POST"], include_in_schema=False)
    app.add_api_route("/admin/logout", logout, methods=["POST"], include_in_schema=False)


def _with_key(request: Request, key: str) -> Request:
    """The login request as the authenticator expects it: the key in the header."""
    headers = [
        (name, value)
        for name, value in request.scope["headers"]
        if name not in (b"authorization", b"x-api-key", b"cookie")
    ]
    headers.append((b"authorization", f"Bearer {key}".encode()))
    return Request({**request.scope, "headers": headers})
