"""Who may see the admin page and press its buttons: sessions from API keys, the CSRF
token, the origin check, read-only keys, revoked keys; over real HTTP on SQLite and
PostgreSQL. (What a person does with the page is tested in a browser: tests/admin.)"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from eventledger.http import create_app
from tests.http.conftest import Api, orders_application, serve

pytestmark = pytest.mark.postgres

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def _logged_in(api: Api, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=20) as client:
        answer = await client.post("/admin/login", data={"key": key, "next": "/admin/projections"})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/admin/projections"
        yield client


async def _csrf(client: httpx.AsyncClient, path: str = "/admin/projections") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


async def test_the_page_sends_a_visitor_to_log_in_and_keeps_where_they_were_going(
    api: Api,
) -> None:
    answer = await api.client.get("/admin/dead-letters?projection=fragile")
    assert answer.status_code == 303
    assert answer.headers["location"] == (
        "/admin/login?next=%2Fadmin%2Fdead-letters%3Fprojection%3Dfragile"
    )
    form = await api.client.get(answer.headers["location"])
    assert 'value="/admin/dead-letters?projection=fragile"' in form.text


async def test_a_session_cookie_is_signed_http_only_strict_and_holds_no_key(api: Api) -> None:
    client = httpx.AsyncClient(base_url=api.url, timeout=20)
    async with client:
        answer = await client.post("/admin/login", data={"key": api.reader})
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("eventledger_session=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert api.reader not in cookie
        assert (await client.get("/admin")).status_code == 200
        # A cookie changed by hand is no session.
        value = client.cookies["eventledger_session"]
        body, signature = value.split(".")
        client.cookies.set("eventledger_session", f"{body}x.{signature}")
        assert (await client.get("/admin")).status_code == 303


async def test_login_refuses_unknown_keys_keys_without_read_and_far_away_next(api: Api) -> None:
    bad = await api.client.post("/admin/login", data={"key": "el_nonsense"})
    assert bad.status_code == 401
    assert "not valid" in bad.text
    _, write_only = await api.keys.create("service:feeder", ["write"])
    refused = await api.client.post("/admin/login", data={"key": write_only})
    assert refused.status_code == 403
    assert "no &#39;read&#39; scope" in refused.text
    for far in ("https://evil.example/", "//evil.example/admin", "/adminx/../x", "/docs"):
        answer = await api.client.post("/admin/login", data={"key": api.reader, "next": far})
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location == "/admin" or (location.startswith("/admin/") and "//" not in location)


async def test_buttons_need_the_token_this_site_and_the_admin_scope(api: Api) -> None:
    async with _logged_in(api, api.admin) as client:
        token = await _csrf(client)
        missing = await client.post("/admin/projections/order_list/reset", data={"confirm": "yes"})
        assert missing.status_code == 403
        assert "token" in missing.text
        elsewhere = await client.post(
            "/admin/projections/order_list/reset",
            data={"csrf": token, "confirm": "yes"},
            headers={"Origin": "https://evil.example"},
        )
        assert elsewhere.status_code == 403
        asked = await client.post("/admin/projections/order_list/reset", data={"csrf": token})
        assert asked.status_code == 200
        assert "Reset order_list?" in asked.text  # a page that asks first
        done = await client.post(
            "/admin/projections/order_list/reset",
            data={"csrf": token, "confirm": "yes"},
            headers={"Origin": api.url},
        )
        assert done.status_code == 303
        assert "order_list+was+reset" in done.headers["location"]
    async with _logged_in(api, api.reader) as client:
        token = await _csrf(client)
        assert '/rebuild"' not in (await client.get("/admin/projections")).text
        forged = await client.post(
            "/admin/projections/order_list/rebuild", data={"csrf": token, "confirm": "yes"}
        )
        assert forged.status_code == 403
        assert "admin" in forged.text


async def test_the_api_takes_the_session_for_reads_and_with_its_token_for_changes(
    api: Api,
) -> None:
    async with _logged_in(api, api.admin) as client:
        assert (await client.get("/projections")).status_code == 200
        without = await client.post("/projections/daily_sales/rebuild")
        assert without.status_code == 401
        token = await _csrf(client)
        started = await client.post(
            "/projections/daily_sales/rebuild", headers={"X-CSRF-Token": token}
        )
        assert started.status_code == 202, started.text


async def test_revoking_the_key_ends_its_sessions(api: Api) -> None:
    key, secret = await api.keys.create("user:temp", ["read"])
    async with _logged_in(api, secret) as client:
        assert (await client.get("/admin")).status_code == 200
        await api.keys.revoke(key.id)
        deadline = time.monotonic() + 10  # the server remembers keys for 5 s
        while (await client.get("/admin")).status_code == 200:
            assert time.monotonic() < deadline, "the session outlived its key"
            await asyncio.sleep(0.25)
        assert (await client.get("/admin")).headers["location"].startswith("/admin/login")


async def test_logging_out_needs_the_token_and_ends_the_session(api: Api) -> None:
    async with _logged_in(api, api.reader) as client:
        refused = await client.post("/admin/logout", data={})
        assert refused.status_code == 403
        token = await _csrf(client)
        out = await client.post("/admin/logout", data={"csrf": token})
        assert out.status_code == 303
        assert (await client.get("/admin")).status_code == 303


async def test_unknown_admin_pages_and_bad_parameters_are_pages_that_say_so(api: Api) -> None:
    async with _logged_in(api, api.reader) as client:
        missing = await client.get("/admin/nothing/here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "nothing at /admin/nothing/here" in missing.text
        for path, status in [
            ("/admin/log?after=-1", 400),
            ("/admin/log?since=yesterday", 400),
            ("/admin/log?types=%00", 400),
            ("/admin/streams/Nope-1", 404),
            ("/admin/events/not-a-uuid", 404),
            ("/admin/travel/Unknown-1", 404),
            ("/admin/dead-letters/99999999999999999999", 404),
            ("/admin/processes/nobody", 404),
            ("/admin/streams?prefix=%00", 400),
        ]:
            answer = await client.get(path)
            assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
            assert answer.headers["content-type"].startswith("text/html"), path


async def test_pages_are_served_with_a_content_security_policy(api: Api) -> None:
    async with _logged_in(api, api.reader) as client:
        page = await client.get("/admin")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text
        assert "onclick" not in page.text


async def test_an_anonymous_server_shows_the_page_without_login_and_says_so(
    tmp_path: Path,
) -> None:
    app = create_app(orders_application(), f"sqlite:///{tmp_path}/events.db", allow_anonymous=True)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        page = await client.get("/admin")
        assert page.status_code == 200
        assert "Anonymous demo" in page.text
        assert "eventledger_session" in page.headers["set-cookie"]
        assert (await client.get("/admin/login")).headers["location"] == "/admin"
        token = CSRF.search((await client.get("/admin/projections")).text)
        assert token is not None
        refused = await client.post("/admin/projections/order_list/reset", data={"confirm": "yes"})
        assert refused.status_code == 403
        landing = await client.get("/")
        assert "Anonymous demo" in landing.text
        docs = await client.get("/docs")
        assert "/admin/static/swagger-ui/swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        assert (await client.get("/admin/static/swagger-ui/swagger-ui.css")).status_code == 200
        assert (await client.get("/redoc")).status_code == 404
