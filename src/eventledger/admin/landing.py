"""``/``: where a person who opens the server lands; ``/docs``: the API's Swagger UI,
from files in the package (it works without internet)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from eventledger.admin.render import render

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
        page = get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title}: API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url="/admin/static/favicon.svg",
        )
        return page

    app.add_api_route("/", landing, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
