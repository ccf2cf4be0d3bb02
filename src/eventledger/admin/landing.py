"""``/``: where a person who opens the server lands; ``/docs``: the API's Swagger UI,
from files in the package (it works without internet)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response

from eventledger.admin.render import environment, render
from eventledger.http.security import HTML_POLICY

__all__ = ["add_landing_pages"]

SWAGGER = "/admin/static/swagger-ui"


def add_landing_pages(app: FastAPI) -> None:
    async def landing(request: Request) -> Response:
        return render(
            "landing.html",
            viewer=None,
            path="/",
            notice=None,
            name=request.app.state.application.name,
            anonymous=getattr(request.app.state, "authenticator", None) is None,
        )

    async def docs(request: Request) -> HTMLResponse:
        # FastAPI's own page starts Swagger UI with an inline script, which the pages'
        # Content-Security-Policy forbids: this one starts it from a file (docs.js).
        html = (
            environment()
            .get_template("docs.html")
            .render(
                title=f"{request.app.title}: API",
                openapi_url=request.app.openapi_url or "/openapi.json",
                swagger=SWAGGER,
            )
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": HTML_POLICY})

    app.add_api_route("/", landing, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
