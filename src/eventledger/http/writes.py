"""``POST /commands/{name}``: one route per registered command, its body the command."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import pydantic
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from eventledger.app import Application
from eventledger.commands import Command
from eventledger.errors import InvalidInput, NotFound, UnknownCommand
from eventledger.failures import ProjectionFailed
from eventledger.http import models
from eventledger.http.auth import Principal, authorise, require
from eventledger.http.problems import HttpProblem, Problem
from eventledger.projections.runner import ProjectionTimeout

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown command, aggregate or read model"},
    409: {"model": Problem, "description": "A business rule refused it, or a conflict"},
    415: {"model": Problem, "description": "The body is not JSON"},
    422: {"model": Problem, "description": "The command is not valid (each field named)"},
}


def add_routes(app: FastAPI, application: Application) -> None:
    commands: dict[str, type[Command]] = {}
    for handlers in application.handlers:
        for name, (command_type, _) in handlers.entries().items():
            commands[name] = command_type
    for name, command_type in sorted(commands.items()):
        app.router.add_api_route(
            f"/commands/{name}",
            _endpoint(name, command_type),
            methods=["POST"],
            tags=["commands"],
            summary=f"Send {name}",
            description=_doc(command_type),
            response_model=models.CommandResultOut,
            responses={
                202: {
                    "model": models.CommandResultOut,
                    "description": "Done, but the read model of ?wait= did not catch up in time",
                },
                **ERRORS,
            },
            operation_id=f"send_{name.replace('.', '_')}",
            route_class_override=CommandRoute,
        )

    from eventledger.http.app import JSON

    @app.get(
        "/commands",
        tags=["commands"],
        summary="The commands this service takes",
        response_model=list[models.CommandInfo],
    )
    async def list_commands(_: Principal = Depends(require("read"))) -> Response:
        return JSON(
            [
                {
                    "name": name,
                    "path": f"/commands/{name}",
                    "description": _doc(command_type),
                }
                for name, command_type in sorted(commands.items())
            ]
        )

    @app.post(
        "/commands/{name}",
        tags=["commands"],
        summary="(an unknown command)",
        include_in_schema=False,
    )
    async def unknown_command(name: str, _: Principal = Depends(require("write"))) -> None:
        known = ", ".join(sorted(commands)) or "none"
        raise UnknownCommand(f"no command named {name!r}; known: {known}")


def _doc(command_type: type[Command]) -> str | None:
    """The command class's own docstring (not the base class's)."""
    own = command_type.__dict__.get("__doc__")
    return inspect.cleandoc(own) if isinstance(own, str) and own.strip() else None


_PRINTABLE_ASCII = r"^[\x20-\x7e]+$"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _utf8_header(value: str | None, name: str) -> str | None:
    """A header as the client wrote it: HTTP carries bytes, which Starlette reads as
    Latin-1; UTF-8 text is read back as UTF-8, and anything else is refused."""
    if value is None:
        return None
    try:
        text = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise InvalidInput(f"{name} is UTF-8 text, not {value!r:.80}") from None
    if _CONTROL.search(text):
        raise InvalidInput(f"{name} is text without control characters, not {text!r:.80}")
    return text


async def json_body(request: Request) -> None:
    """Commands are JSON: say so plainly when a body is something else."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise HttpProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"a command is sent as JSON (Content-Type: application/json), not {kind!r:.80}",
        )


_IDEMPOTENCY_KEY = pydantic.TypeAdapter(
    Annotated[
        str, pydantic.StringConstraints(min_length=1, max_length=255, pattern=_PRINTABLE_ASCII)
    ]
)
_CORRELATION_ID = pydantic.TypeAdapter(
    Annotated[
        str,
        pydantic.StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"),
    ]
)
_TIMEOUT = pydantic.TypeAdapter(Annotated[float, pydantic.Field(gt=0, le=60)])


class CommandRoute(APIRoute):
    """The route of one command. FastAPI reads the endpoint's declared parameters for
    the OpenAPI document; a request is read here in one pass, with the same checks and
    the same problems as FastAPI's (the query, the headers, then the body; a header or
    query parameter that does not fit is a 400, and a 422 naming each field when the
    body does not fit either): FastAPI's dependency solving cost about a fifth of the
    server's time per command (benchmarks/README.md)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        name, command_type = self.endpoint.sends  # type: ignore[attr-defined]

        async def handle(request: Request) -> Response:
            principal = await authorise(request, "write")
            await json_body(request)
            headers = request.headers
            query = request.query_params
            errors: list[dict[str, Any]] = []
            timeout = _checked(_TIMEOUT, query.get("timeout"), errors, "query", "timeout")
            key = _checked(
                _IDEMPOTENCY_KEY,
                headers.get("idempotency-key"),
                errors,
                "header",
                "Idempotency-Key",
            )
            correlation = _checked(
                _CORRELATION_ID,
                headers.get("x-correlation-id"),
                errors,
                "header",
                "X-Correlation-ID",
            )
            try:
                command = _parsed(command_type, await request.body())
            except RequestValidationError as error:
                raise RequestValidationError([*errors, *error.errors()]) from None
            if errors:
                raise RequestValidationError(errors)
            return await send(
                request, name, command, principal, key, correlation, query.get("wait"), timeout
            )

        return handle


def _checked(
    adapter: pydantic.TypeAdapter[Any], value: str | None, errors: list[dict[str, Any]], *loc: str
) -> Any:
    if value is None:
        return None
    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as error:
        errors.extend({**e, "loc": (*loc, *e["loc"])} for e in error.errors(include_url=False))
        return None


def _parsed(command_type: type[Command], body: bytes) -> Command:
    """The body as the command, read as FastAPI reads a JSON body (the standard library's
    reader: a byte order mark or UTF-16 is read, integers keep every digit, NaN reaches
    validation as a number that is not finite) and validated as it validates one; a
    problem names each field. orjson is not used here: it reads an integer beyond 64
    bits as a float, silently another number, and refuses what FastAPI read; the
    difference is about 3 µs of the server's 500 per command."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ]
        ) from error
    except Exception as error:  # not UTF-8 or -16, nested too deep: a bad body (422)
        raise HTTPException(400, "There was an error parsing the body") from error
    try:
        return command_type.model_validate(data, from_attributes=True)
    except pydantic.ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


async def send(
    request: Request,
    name: str,
    command: Command,
    principal: Principal,
    idempotency_key: str | None,
    correlation_id: str | None,
    wait: str | None,
    timeout: float | None,
) -> Response:
    """Run the command and answer with its result (waiting for `wait` to catch up)."""
    from eventledger.http.app import JSON, service_of

    service = service_of(request)
    if wait is not None and wait not in service.runner.names:
        known = ", ".join(service.runner.names) or "none"
        raise NotFound(f"no read model named {wait!r} to wait for; known: {known}")
    result = await service.bus.send(
        command,
        idempotency_key=idempotency_key,
        actor=principal.actor,
        correlation_id=_utf8_header(correlation_id, "X-Correlation-ID"),
    )
    caught_up = None
    if wait is not None:
        try:
            await service.runner.wait_until(
                wait, result.position, 10.0 if timeout is None else timeout
            )
            caught_up = True
        except (ProjectionTimeout, ProjectionFailed):
            caught_up = False
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSON(
        models.result_json(result, caught_up),
        status_code=202 if caught_up is False else 200,
        headers=headers,
    )


def _endpoint(name: str, command_type: type[Command]) -> Any:
    async def endpoint(
        request: Request,
        command: Any,
        principal: Principal = Depends(require("write")),
        _: None = Depends(json_body),
        idempotency_key: str | None = Header(
            None,
            alias="Idempotency-Key",
            description="a repeat of the key (by the same caller) returns the first result and"
            " runs nothing",
            min_length=1,
            max_length=255,
            pattern=_PRINTABLE_ASCII,
        ),
        correlation_id: str | None = Header(
            None,
            alias="X-Correlation-ID",
            description="ties this command to a request of yours (UTF-8)",
            min_length=1,
            max_length=255,
            pattern=r"^[^\x00-\x1f\x7f]+$",
        ),
        wait: str | None = Query(
            None,
            description="a read model to wait for: answer once it shows this command's effects",
        ),
        timeout: float = Query(10.0, gt=0, le=60, description="how long to wait, in seconds"),
    ) -> Response:
        # What FastAPI documents; CommandRoute reads requests itself, the same way.
        return await send(
            request, name, command, principal, idempotency_key, correlation_id, wait, timeout
        )

    signature = inspect.signature(endpoint)
    parameters = [
        parameter.replace(annotation=command_type, default=Body(..., description=f"the {name}"))
        if parameter.name == "command"
        else parameter
        for parameter in signature.parameters.values()
    ]
    endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = f"send_{name.replace('.', '_')}"
    endpoint.sends = (name, command_type)  # type: ignore[attr-defined]
    return endpoint
