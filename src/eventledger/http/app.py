"""The ASGI app: an :class:`~eventledger.Application` behind HTTP.

``create_app(application, store_url, keys=True)`` builds a FastAPI app that
opens the store and runs the application's projections and processes for as
long as it is served (``uvicorn module:app``, or ``eventledger serve``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventledger.admin import add_admin, start_admin, stop_admin
from eventledger.app import Application, Service
from eventledger.errors import InvalidInput
from eventledger.http import models, problems
from eventledger.http.auth import ApiKeyAuthenticator, AuthenticateFirst, Authenticator
from eventledger.http.keys import ApiKeys
from eventledger.http.limits import DEFAULT_LIMITS, RateLimiter, RateLimits
from eventledger.http.live import add_routes as add_live_routes
from eventledger.http.live import close_feeds
from eventledger.http.observe import ObserveRequests
from eventledger.http.operations import add_routes as add_operation_routes
from eventledger.http.operations import cancel_rebuilds
from eventledger.http.reads import add_routes as add_read_routes
from eventledger.http.replica import ReplicaReads, replica_readiness, start_replica, stop_replica
from eventledger.http.security import SecurityHeaders, cors_options
from eventledger.http.subjects import add_routes as add_subject_routes
from eventledger.http.writes import add_routes as add_write_routes
from eventledger.projections.caching import ReadModelCache
from eventledger.replica import read_url_for
from eventledger.stores.base import EventStore

if TYPE_CHECKING:
    from eventledger.cache import QueryCache

__all__ = ["create_app"]

log = logging.getLogger("eventledger.http")

DESCRIPTION = """
The HTTP API of an eventledger service: send commands, query read models, read
streams and the global log (also live, as Server-Sent Events), travel in time,
and operate projections and the dead-letter queue.

Authenticate with an API key: `Authorization: Bearer <key>`. Errors are
[RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details.
"""


def create_app(
    application: Application,
    store: EventStore | str,
    *,
    authenticator: Authenticator | None = None,
    allow_anonymous: bool = False,
    run_projections: bool = True,
    max_body_bytes: int = 1 << 20,
    keepalive_seconds: float = 15.0,
    on_start: Callable[[Service], Awaitable[None]] | None = None,
    admin: bool = True,
    session_secret: str | bytes | None = None,
    admin_sample_seconds: float = 5.0,
    metrics: bool = True,
    public_metrics: bool = False,
    rate_limits: RateLimits | None = DEFAULT_LIMITS,
    cors_origins: Sequence[str] = (),
    retention_every: timedelta | None = None,
    read_url: str | None = None,
    cache: str | ReadModelCache | None = None,
) -> FastAPI:
    """The app serving `application` on `store` (a URL, or an open store).

    Callers authenticate with API keys kept in the store unless another
    `authenticator` is given. ``allow_anonymous=True`` serves everyone with
    every scope: for local development only (a warning says so at start).
    `on_start` runs once the service is up, before the first request is served.
    With `admin` (the default) the app also serves the admin page at ``/admin``, a
    landing page at ``/`` and the API docs at ``/docs`` from files in the package;
    `session_secret` signs the page's login sessions (default:
    ``$EVENTLEDGER_SESSION_SECRET``, or one made at start). With `metrics` (the
    default) this process counts what it does and ``GET /metrics`` answers for
    Prometheus, to keys with the ``metrics`` or ``admin`` scope, or to anyone with
    `public_metrics` (see ``docs/operations.md``). `rate_limits` holds each key (or
    client address) to a request rate per scope, in this process (None: no limits;
    see :mod:`eventledger.http.limits`). `cors_origins` are the browser origins that
    may call the API from their pages (none by default). With `retention_every` the
    application's retention policies are applied that often (one process at a time;
    see :mod:`eventledger.retention_schedule`). With `read_url` (a PostgreSQL standby of
    the store, opened read-only) streams, the log and read-model queries are read from
    the standby, and from the primary when it is behind or down (see
    :mod:`eventledger.http.replica` and ``docs/replicas.md``). With `cache` (a Redis URL,
    or an :class:`eventledger.cache.QueryCache`) read-model queries are answered from
    Redis when that is safe (see ``docs/query-cache.md``).
    """
    if authenticator is not None and allow_anonymous:
        raise InvalidInput("give an authenticator or allow anonymous access, not both")
    if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise InvalidInput(f"max_body_bytes must be a positive int, not {max_body_bytes!r}")
    if read_url is not None:
        read_url_for(read_url)  # refused here, not at start
    if isinstance(cache, str):
        from eventledger.cache import QueryCache

        QueryCache.check_url(cache)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_cache = _open_cache(cache, application) if isinstance(cache, str) else None
        try:
            service = await application.start(
                store,
                projections=run_projections,
                retention_every=retention_every,
                cache=owned_cache if isinstance(cache, str) else cache,
            )
        except BaseException:
            if owned_cache is not None:
                await owned_cache.close()
            raise
        app.state.service = service
        if allow_anonymous:
            app.state.authenticator = None
            log.warning(
                "eventledger serves %s WITHOUT authentication: anyone who reaches this"
                " server can read and change everything. Use it for local development only.",
                application.name,
            )
        else:
            app.state.authenticator = authenticator or ApiKeyAuthenticator(ApiKeys(service.store))
        if admin:
            start_admin(app, service, admin_sample_seconds)
        try:
            if read_url is not None:
                await start_replica(app, read_url, store)
            if on_start is not None:
                await on_start(service)
            yield
        finally:
            await stop_replica(app)
            await stop_admin(app)
            await close_feeds(app)
            await cancel_rebuilds(app)
            await service.stop()
            if owned_cache is not None:
                await owned_cache.close()

    app = FastAPI(
        **_without_fastapi_telemetry(),
        title=f"{application.name} (eventledger)",
        description=DESCRIPTION,
        version="1",
        lifespan=lifespan,
        docs_url=None if admin else "/docs",
        redoc_url=None,
        responses={
            "4XX": {"model": problems.Problem, "description": "A problem with the request"},
            "5XX": {"model": problems.Problem, "description": "A problem on the server"},
        },
    )
    _describe_problems(
        app,
        secured=not allow_anonymous,
        open_routes=OPEN_ROUTES | ({"/metrics"} if public_metrics else set()),
    )
    app.state.keepalive_seconds = keepalive_seconds
    app.state.rate_limiter = None if rate_limits is None else RateLimiter(rate_limits)
    cors = cors_options(cors_origins) if cors_origins else None
    app.state.application = application
    problems.install(app)
    add_write_routes(app, application)
    add_live_routes(app)  # before /events/{event_id}, which would take "live" for an id
    add_read_routes(app)
    add_operation_routes(app)
    add_subject_routes(app)
    _add_health(app)
    if metrics:
        from eventledger.http.observe import add_metrics_route
        from eventledger.observability.prometheus import enable_metrics

        enable_metrics()
        add_metrics_route(app, public=public_metrics)
    if admin:
        add_admin(app, secret=session_secret)
    if read_url is not None:
        app.add_middleware(ReplicaReads)  # innermost: says where reads came from
    app.add_middleware(LimitBody, max_bytes=max_body_bytes)
    app.add_middleware(AuthenticateFirst)  # before any body is read
    if cors is not None:
        app.add_middleware(CORSMiddleware, **cors)  # its headers on refusals too
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ObserveRequests)  # outermost: every request is measured and traced
    return app


def _open_cache(url: str, application: Application) -> QueryCache:
    """The query cache of ``create_app(cache=url)``: its keys start with the
    application's name unless the URL gives ``?prefix=``."""
    from eventledger.cache import QueryCache

    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in application.name)[:60]
    return QueryCache(url, prefix=f"eventledger:{name or 'app'}")


def _without_fastapi_telemetry() -> dict[str, Any]:
    """FastAPI 0.160 and later make OpenTelemetry spans of their own; eventledger makes
    the request's span (ObserveRequests), so theirs would be a second server span."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


OPEN_ROUTES = {"/healthz", "/readyz"}
"""Routes that need no key (``/metrics`` too when the app's metrics are public)."""


def _describe_problems(app: FastAPI, *, secured: bool, open_routes: set[str]) -> None:
    """Document every error answer as what it is (problem details, not FastAPI's own
    validation error shape), and the API key every other route needs."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            problem = {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
            if secured:
                schema.setdefault("components", {})["securitySchemes"] = {
                    "apiKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "an eventledger API key: el_<id>_<secret>",
                    }
                }
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    if secured and path not in open_routes:
                        operation["security"] = [{"apiKey": []}]
                    for status, response in operation.get("responses", {}).items():
                        if not str(status).startswith("2"):
                            response["content"] = problem
                            if str(status) == "422":
                                response["description"] = "The request is not valid"
            components = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            for component in components.values():
                _no_nul_in_text(component)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _no_nul_in_text(schema: Any) -> None:
    """Say in the schema what the server refuses in every command: text with a NUL
    character (no store keeps one)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema:
            schema["pattern"] = "^[^\\u0000]*$"
        for value in schema.values():
            _no_nul_in_text(value)
    elif isinstance(schema, list):
        for value in schema:
            _no_nul_in_text(value)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


class JSON(Response):
    """JSON through orjson (the shapes are plain JSON already)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_plain)


def _plain(value: Any) -> Any:
    """What SQL read models hand back beyond JSON: decimals as text, bytes as hex."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The store answers and no projection is stopped by a failure",
        responses={503: {"model": problems.Problem}},
    )
    async def readyz(request: Request) -> Response:
        service = service_of(request)
        try:
            head = await service.store.head_position()
        except Exception as error:
            return problems.problem(
                503, "unavailable", "Not ready", f"the event store does not answer: {error}"
            )
        statuses = await service.runner.status()
        failed = [s.name for s in statuses if s.state == "failed"]
        if failed:
            return problems.problem(
                503,
                "read-model-failed",
                "Not ready",
                f"stopped by a failure: {', '.join(failed)} (see the dead-letter queue)",
            )
        stalled = [f"{s.name} ({s.last_error})" for s in statuses if s.state == "stalled"]
        if stalled:
            return problems.problem(
                503, "read-model-stalled", "Not ready", f"cannot move: {'; '.join(stalled)}"
            )
        horizon = await service.store.horizon()
        return JSON(
            {
                "status": "ready",
                "head_position": head,
                "held_back": models.horizon_json(horizon) if horizon.lagging else None,
                **(await replica_readiness(request)),
            }
        )


class LimitBody:
    """Refuse request bodies over `max_bytes` with 413, before the app reads them all."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        too_large = False
        refused = False

        async def counting() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # Whatever the app answers to a body cut short (FastAPI makes it a 400),
            # the client gets the 413.
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(scope, receive, send)

        try:
            await self.app(scope, counting, guarded)
        except Exception:
            if not too_large:
                raise
        if too_large and not refused:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(
            413,
            "too-large",
            "Request body too large",
            f"the body is over {self.max_bytes} bytes; send less",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
