"""Errors as RFC 9457 problem details (``application/problem+json``).

Exceptions are mapped by type, walking the exception's MRO, so a subclass of
a known error answers like its parent. Bad input is a 4xx that names what was
wrong; an unexpected error is a 500 that says nothing of the server's insides
(the log has the traceback, under the same id the client sees).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from eventledger.aggregate import DomainError
from eventledger.errors import (
    AlreadyExists,
    CommandInvalid,
    ConflictError,
    EventLedgerError,
    EventTooLarge,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    OperationalError,
)
from eventledger.failures import ProjectionFailed
from eventledger.projections.runner import ProjectionTimeout

log = logging.getLogger("eventledger.http")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://eventledger.dev/problems/"


class ProblemError(pydantic.BaseModel):
    path: list[str | int]
    message: str
    type: str


class Problem(pydantic.BaseModel):
    """An error, as RFC 9457 describes it."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class HttpProblem(Exception):
    """Raised by routes for an error that is not an eventledger error."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers


# (status, slug, title) by exception type; the nearest class in the MRO wins.
_MAPPING: dict[type[BaseException], tuple[int, str, str]] = {
    CommandInvalid: (422, "invalid-command", "The command is not valid"),
    IdempotencyKeyReused: (422, "idempotency-key-reused", "The idempotency key was used before"),
    EventTooLarge: (413, "event-too-large", "An event is larger than the store allows"),
    InvalidInput: (400, "invalid-input", "The request is not valid"),
    NotFound: (404, "not-found", "Not found"),
    AlreadyExists: (409, "already-exists", "It exists already"),
    ConflictError: (409, "conflict", "Conflict with the current state"),
    DomainError: (409, "rule-broken", "A business rule refused the command"),
    ProjectionTimeout: (504, "read-model-timeout", "The read model did not catch up in time"),
    ProjectionFailed: (503, "read-model-failed", "The read model is stopped by a failure"),
    OperationalError: (503, "unavailable", "The event store is not available"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def for_exception(error: BaseException) -> JSONResponse:
    if isinstance(error, HttpProblem):
        challenge = {"WWW-Authenticate": 'Bearer realm="eventledger"'}
        extra = {**(challenge if error.status == 401 else {}), **(error.headers or {})}
        return problem(error.status, error.slug, error.title, error.detail, headers=extra)
    for klass in type(error).__mro__:
        found = _MAPPING.get(klass)
        if found is not None:
            status, slug, title = found
            errors = None
            if isinstance(error, CommandInvalid):
                errors = [
                    {"path": list(e.path), "message": e.message, "type": e.kind}
                    for e in error.errors
                ]
            if status >= 500:
                log.warning("%s: %s", title, error)
            # The store should be back soon (a restart, a failover): say when to try again.
            headers = {"Retry-After": "1"} if isinstance(error, OperationalError) else None
            return problem(status, slug, title, str(error), errors, headers=headers)
    return unexpected(error)


def unexpected(error: BaseException) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error("unexpected error (incident %s)", incident, exc_info=error)
    return problem(
        500,
        "internal",
        "Internal server error",
        f"the server failed to answer; its log has the details under incident {incident}",
    )


def validation_problem(error: RequestValidationError) -> JSONResponse:
    errors = []
    in_body = False
    for item in error.errors():
        location = list(item.get("loc", ()))
        if location and location[0] == "body":
            in_body = True
            location = location[1:]
        errors.append(
            {
                "path": [p if isinstance(p, int) else str(p) for p in location],
                "message": str(item.get("msg", "invalid")),
                "type": str(item.get("type", "value_error")),
            }
        )
    where = "; ".join(
        f"{'.'.join(str(p) for p in e['path']) or '(the body)'}: {e['message']}"
        for e in errors[:10]
    )
    if in_body:
        return problem(422, "invalid-command", "The command is not valid", where, errors)
    return problem(400, "invalid-input", "The request is not valid", where, errors)


def install(app: FastAPI) -> None:
    """Answer every error of `app` with problem details."""

    async def on_eventledger_error(request: Request, error: Exception) -> JSONResponse:
        return for_exception(error)

    async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return validation_problem(error)

    async def on_http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        if error.status_code == 400 and error.detail == "There was an error parsing the body":
            # JSON nested too deep, not UTF-8, integers too long to read: a bad body.
            cause = error.__cause__
            why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            return problem(
                422,
                "invalid-command",
                "The command is not valid",
                f"the body is not JSON that can be read{why}"[:300],
                [{"path": [], "message": "the body is not valid JSON", "type": "json_invalid"}],
            )
        slugs = {404: "no-route", 405: "method-not-allowed", 401: "unauthorized"}
        titles = {404: "Not found", 405: "Method not allowed"}
        return problem(
            error.status_code,
            slugs.get(error.status_code, "http-error"),
            titles.get(error.status_code, "HTTP error"),
            str(error.detail),
            headers=getattr(error, "headers", None),
        )

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        return unexpected(error)

    app.add_exception_handler(EventLedgerError, on_eventledger_error)
    app.add_exception_handler(DomainError, on_eventledger_error)
    app.add_exception_handler(HttpProblem, on_eventledger_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
