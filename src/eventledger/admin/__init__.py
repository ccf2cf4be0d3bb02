"""The admin web page, served by the server itself at ``/admin``.

Server-rendered HTML with a little JavaScript, every asset in the package (no CDN, no
build step): an overview of the log and the read side, streams and their events, an
event's causes and effects, aggregates in time, the global log and its live tail,
projections (rebuild, reset), the dead-letter queue (retry, skip) and process
instances. ``/`` is a small landing page and ``/docs`` the API's Swagger UI, both
offline. People log in with an API key (see :mod:`eventledger.admin.session`);
``create_app`` adds all of it unless ``admin=False``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from eventledger.admin.access import AdminSessions
from eventledger.admin.browsing import add_browsing_pages
from eventledger.admin.landing import add_landing_pages
from eventledger.admin.login import add_login_pages
from eventledger.admin.operating import add_operating_pages
from eventledger.admin.pages import add_missing_page
from eventledger.admin.sampler import Sampler
from eventledger.admin.session import SessionSigner, session_secret
from eventledger.app import Service

__all__ = ["add_admin", "start_admin", "stop_admin"]


def add_admin(
    app: FastAPI, *, secret: str | bytes | None = None, session_seconds: float = 8 * 3600
) -> None:
    """Serve the admin page, the landing page and the offline API docs on `app`."""
    app.state.sessions = AdminSessions(SessionSigner(session_secret(secret), session_seconds))
    app.mount(
        "/admin/static",
        StaticFiles(packages=[("eventledger.admin", "static")]),
        name="admin-static",
    )
    add_landing_pages(app)
    add_login_pages(app)
    add_operating_pages(app)
    add_browsing_pages(app)
    add_missing_page(app)  # last: any other /admin/... is a page that says so


def start_admin(app: FastAPI, service: Service, sample_seconds: float = 5.0) -> None:
    """Start sampling throughput for the page's charts (once the service runs)."""
    sampler = Sampler(service, every=sample_seconds)
    app.state.sampler = sampler
    sampler.start()


async def stop_admin(app: FastAPI) -> None:
    sampler: Sampler | None = getattr(app.state, "sampler", None)
    if sampler is not None:
        await sampler.stop()
