"""Every HTTP request measured and traced; ``GET /metrics`` for Prometheus.

:class:`ObserveRequests` counts requests and their durations by route template
(never by raw path, so that ids do not multiply the series) and makes a ``SERVER``
span that continues the caller's trace (``traceparent``). ``/metrics`` needs an API
key with the ``metrics`` (or ``admin``) scope, unless the app is made with
``public_metrics=True`` (for a Prometheus that scrapes a private network).
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventledger.http.auth import authorise
from eventledger.http.problems import HttpProblem
from eventledger.observability import instruments, tracing

__all__ = ["ObserveRequests", "add_metrics_route"]

UNMATCHED = "unmatched"


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500
        answered = False

        def route() -> str:
            found = scope.get("route")
            path = getattr(found, "path", None)
            return path if isinstance(path, str) else UNMATCHED

        async def measuring(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                status = message["status"]
                instruments.current.request(method, route(), status, time.perf_counter() - started)
            await send(message)

        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name in (b"traceparent", b"tracestate")
        }
        with tracing.span(
            f"{method} request", kind="server", parent=headers, attributes={"http.method": method}
        ) as current:
            try:
                await self.app(scope, receive, measuring)
            finally:
                if not answered:  # the app failed before it answered
                    instruments.current.request(method, route(), 500, time.perf_counter() - started)
                if current is not None:
                    current.update_name(f"{method} {route()}")
                    current.set_attribute("http.route", route())
                    current.set_attribute("http.status_code", status)


def add_metrics_route(app: FastAPI, *, public: bool) -> None:
    from eventledger.http.app import service_of
    from eventledger.observability.prometheus import CONTENT_TYPE
    from eventledger.observability.scrape import exposition

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (the metrics or admin scope, unless public)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "the metrics"}},
    )
    async def metrics(request: Request) -> Response:
        if not public:
            try:
                await authorise(request, "metrics")
            except HttpProblem as refused:
                if refused.status != 403:
                    raise
                await authorise(request, "admin")
        text = await exposition(service_of(request))
        return Response(text, media_type=CONTENT_TYPE)
