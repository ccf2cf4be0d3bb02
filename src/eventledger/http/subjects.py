"""Personal data over HTTP: forget a subject, export what the store keeps of one.

Both need the ``admin`` scope. ``POST /subjects/{subject}/forget`` deletes the
subject's data key (every value sealed with it reads as ``{"$redacted": subject}``
from then on) and records a ``SubjectForgotten`` event; with ``?scrub=true`` it also
cleans freed database space (:func:`eventledger.personal.scrub`).
``GET /subjects/{subject}/export`` answers an access request: every personal value of
the subject, in clear. See docs/personal-data.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response

from eventledger.context import message_context
from eventledger.http.auth import Principal, require
from eventledger.http.problems import Problem
from eventledger.personal import export, forget, scrub, subject_stream

__all__ = ["add_routes"]

ADMIN = Depends(require("admin"))
MAX_SUBJECT_LENGTH = 255 - len(subject_stream(""))
SUBJECT = Path(
    min_length=1,
    max_length=MAX_SUBJECT_LENGTH,
    description=f"The subject's id (a customer id, say): 1 to {MAX_SUBJECT_LENGTH} characters"
    " (Subject-<id> names the stream of their SubjectForgotten event), no control characters",
    # Said in the schema; checked by the library, whose message says what a subject id is.
    json_schema_extra={
        "pattern": "^[^\\s\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]"
        "([^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*[^\\s\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029])?$"
    },
)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Not a subject id, or the store keeps no personal data"},
}


class ForgottenOut(pydantic.BaseModel):
    subject: str
    position: int = pydantic.Field(description="The position of the SubjectForgotten event")
    streams: list[str] = pydantic.Field(
        description="The streams whose values of the subject now read as redacted"
    )
    had_key: bool = pydantic.Field(
        description="False when the store held no value of the subject (still marked forgotten)"
    )
    scrubbed: bool = pydantic.Field(description="Whether freed database space was cleaned")


class PersonalValueOut(pydantic.BaseModel):
    stream_id: str
    version: int
    position: int
    event_type: str
    recorded_at: datetime
    path: str = pydantic.Field(description="The field, a dotted path into the event's data")
    value: Any


class SubjectExportOut(pydantic.BaseModel):
    subject: str
    forgotten: bool
    streams: list[str]
    values: list[PersonalValueOut]


def add_routes(app: FastAPI) -> None:
    from eventledger.http.app import JSON, service_of

    @app.post(
        "/subjects/{subject}/forget",
        tags=["personal data"],
        summary="Forget a subject: their personal values read as redacted from now on",
        response_model=ForgottenOut,
        responses=ERRORS,
    )
    async def forget_subject(
        request: Request,
        subject: str = SUBJECT,
        clean: bool = Query(
            False,
            alias="scrub",
            description="Also clean freed database space (SQLite: fold the write-ahead"
            " log; PostgreSQL: VACUUM), so no copy of the deleted key remains in it",
        ),
        principal: Principal = ADMIN,
    ) -> Response:
        store = service_of(request).store
        with message_context(actor=principal.actor):
            forgotten = await forget(store, subject)
        if clean:
            await scrub(store)
        return JSON(
            {
                "subject": forgotten.subject,
                "position": forgotten.position,
                "streams": forgotten.streams,
                "had_key": forgotten.had_key,
                "scrubbed": clean,
            }
        )

    @app.get(
        "/subjects/{subject}/export",
        tags=["personal data"],
        summary="Every personal value the store keeps of a subject, in clear",
        response_model=SubjectExportOut,
        responses=ERRORS,
    )
    async def export_subject(
        request: Request, subject: str = SUBJECT, _: Principal = ADMIN
    ) -> Response:
        found = await export(service_of(request).store, subject)
        return JSON(found.to_json())
