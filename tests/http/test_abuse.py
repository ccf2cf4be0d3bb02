"""An API that holds against abuse, over real HTTP: rate limits per key and per address,
keys that expire and rotate, CORS only where configured, and browser-hardening headers
on every answer (issue 15). Rate limits are tested with small configured rates whose
refill is far slower than a test, so each check is a count, not a timing."""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventledger import EventStore, open_store
from eventledger.errors import InvalidInput, NotFound
from eventledger.http import ApiKeys, create_app
from eventledger.http.limits import RateLimits
from eventledger.http.security import HTML_POLICY
from tests.http.conftest import orders_application, serve


@dataclass
class Served:
    client: httpx.AsyncClient
    store: EventStore
    keys: ApiKeys
    reader: str
    writer: str

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def served(store_url: str, **options: Any) -> AsyncIterator[Served]:
    """The Orders application on `store_url` with `create_app` `options`, and two keys."""
    store = await open_store(store_url)
    try:
        keys = ApiKeys(store)
        _, reader = await keys.create("user:auditor", ["read"])
        _, writer = await keys.create("service:shop", ["read", "write"])
        app = create_app(orders_application(), store_url, **options)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
            yield Served(client, store, keys, reader, writer)
    finally:
        await store.close()


def limits(*specs: str) -> RateLimits:
    return RateLimits.parse(specs)


def assert_too_many(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) >= 1
    problem: dict[str, Any] = answer.json()
    assert problem["type"].endswith("/too-many-requests")
    assert problem["status"] == 429
    return problem


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/events.db"


def place(order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "alice",
        "lines": [{"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}],
    }


# --- rate limits ----------------------------------------------------------------------------


async def test_a_key_gets_its_burst_of_reads_then_429_with_retry_after(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path), rate_limits=limits("read=1/h,burst=3")) as api:
        for _ in range(3):
            assert (await api.client.get("/streams", headers=api.auth(api.reader))).is_success
        refused = await api.client.get("/streams", headers=api.auth(api.reader))
        problem = assert_too_many(refused)
        assert "user:auditor" in problem["detail"]
        assert 3000 <= int(refused.headers["retry-after"]) <= 3600  # a token an hour
        # Per key: another key has its own bucket; health checks are not limited.
        assert (await api.client.get("/streams", headers=api.auth(api.writer))).is_success
        assert (await api.client.get("/healthz")).is_success


async def test_commands_count_once_against_the_write_limit_not_the_read_one(
    tmp_path: Path,
) -> None:
    async with served(sqlite_url(tmp_path), rate_limits=limits("write=1/h,burst=2")) as api:
        writer = api.auth(api.writer)
        stock = {"sku": "BOOK", "quantity": 5}
        for _ in range(2):  # checked before the body is read and again by the route: once
            answer = await api.client.post("/commands/AddStock", json=stock, headers=writer)
            assert answer.status_code == 200, answer.text
        assert_too_many(await api.client.post("/commands/AddStock", json=stock, headers=writer))
        assert (await api.client.get("/streams", headers=writer)).is_success
        assert await api.store.stream_version("Stock-BOOK") == 2


async def test_wrong_keys_use_up_the_address_then_even_a_right_key_waits(
    tmp_path: Path,
) -> None:
    async with served(sqlite_url(tmp_path), rate_limits=limits("failures=1/h,burst=2")) as api:
        wrong = api.auth("el_0123456789abcdef_" + "x" * 43)
        for _ in range(3):  # no key at all is a plain 401 and is not counted
            assert (await api.client.get("/streams")).status_code == 401
        for _ in range(2):
            assert (await api.client.get("/streams", headers=wrong)).status_code == 401
        problem = assert_too_many(await api.client.get("/streams", headers=wrong))
        assert "failed authentications from 127.0.0.1" in problem["detail"]
        assert_too_many(await api.client.get("/streams", headers=api.auth(api.reader)))
        assert_too_many(
            await api.client.post(
                "/commands/AddStock", json={"sku": "B", "quantity": 1}, headers=wrong
            )
        )
        login = await api.client.post("/admin/login", data={"key": api.reader})
        assert login.status_code == 429
        assert int(login.headers["retry-after"]) >= 1
        assert "too many failed authentications" in login.text


async def test_failed_logins_are_limited_per_address(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path), rate_limits=limits("failures=1/h,burst=2")) as api:
        for _ in range(2):
            answer = await api.client.post("/admin/login", data={"key": "el_nope"})
            assert answer.status_code == 401
            assert "not valid" in answer.text
        refused = await api.client.post("/admin/login", data={"key": api.reader})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1


async def test_the_admin_page_counts_against_the_keys_reads(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path), rate_limits=limits("read=1/h,burst=3")) as api:
        assert (await api.client.post("/admin/login", data={"key": api.reader})).status_code == 303
        assert (await api.client.get("/admin")).status_code == 200
        assert (await api.client.get("/streams")).status_code == 200  # the session, via the API
        assert (await api.client.get("/admin/streams")).status_code == 200
        refused = await api.client.get("/admin/log")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many requests" in refused.text


async def test_an_anonymous_server_limits_each_client_address(tmp_path: Path) -> None:
    async with served(
        sqlite_url(tmp_path), allow_anonymous=True, rate_limits=limits("read=1/h,burst=2")
    ) as api:
        assert (await api.client.get("/streams")).is_success
        assert (await api.client.get("/events")).is_success
        problem = assert_too_many(await api.client.get("/streams"))
        assert "the address 127.0.0.1" in problem["detail"]
        stock = {"sku": "BOOK", "quantity": 1}  # writes have a bucket of their own
        assert (await api.client.post("/commands/AddStock", json=stock)).status_code == 200


async def test_without_rate_limits_nothing_is_refused_for_its_rate(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path), rate_limits=None) as api:
        wrong = api.auth("el_0123456789abcdef_" + "x" * 43)
        for _ in range(110):  # more than the default failures burst (100)
            assert (await api.client.get("/streams", headers=wrong)).status_code == 401
        assert (await api.client.get("/streams", headers=api.auth(api.reader))).is_success


def test_rate_limits_are_written_kind_count_unit_and_burst() -> None:
    parsed = RateLimits.parse(["write=20/s", "admin=60/min,burst=10", "failures=5/h,burst=3"])
    assert (parsed.write.per_second, parsed.write.burst) == (20.0, 20)
    assert (parsed.admin.per_second, parsed.admin.burst) == (1.0, 10)
    assert parsed.failures.burst == 3
    assert parsed.read == RateLimits().read
    assert parsed.of("metrics") == parsed.read
    for bad in ("write=20", "writes=1/s", "read=0/s", "read=1/s,burst=0", "read=1/fortnight"):
        with pytest.raises(InvalidInput, match=r"KIND=COUNT/UNIT|more than 0|burst"):
            RateLimits.parse([bad])


# --- key expiry and rotation ----------------------------------------------------------------


async def test_an_expired_key_is_refused_with_a_401_that_says_it_expired(
    server_store_url: str,
) -> None:
    async with served(server_store_url) as api:
        key, secret = await api.keys.create("user:temp", ["read"], expires_in=timedelta(days=1))
        assert key.expires_at is not None
        assert timedelta(hours=23) < key.expires_at - datetime.now(UTC) <= timedelta(days=1)
        _, _, old = await api.keys.rotate(key.id, overlap=timedelta(0))  # expires now
        assert old.expired
        assert not old.active
        refused = await api.client.get("/streams", headers=api.auth(secret))
        assert refused.status_code == 401
        detail = refused.json()["detail"]
        assert detail.startswith(f"the API key {key.id} expired at ")
        assert secret not in detail
        login = await api.client.post("/admin/login", data={"key": secret})
        assert login.status_code == 401
        assert "expired at" in login.text
        assert await api.keys.verify(secret) is None
        assert [k.id for k in await api.keys.list()] == [
            k.id for k in await api.keys.list(include_revoked=True) if k.id != key.id
        ]


async def test_rotation_keeps_both_keys_valid_for_the_overlap(server_store_url: str) -> None:
    async with served(server_store_url) as api:
        old, old_secret = await api.keys.create("service:billing", ["read", "write"])
        new, new_secret, before = await api.keys.rotate(old_secret, overlap=timedelta(hours=1))
        assert (new.owner, new.scopes) == ("service:billing", frozenset({"read", "write"}))
        assert new.id != old.id
        assert new.expires_at is None  # the old key never expired: neither does the new one
        assert before.expires_at is not None
        assert timedelta(minutes=59) < before.expires_at - datetime.now(UTC) <= timedelta(hours=1)
        for secret in (old_secret, new_secret):
            answer = await api.client.get("/streams", headers=api.auth(secret))
            assert answer.status_code == 200, answer.text
        # A second rotation with a longer overlap never makes the old key live longer.
        _, _, again = await api.keys.rotate(old.id, overlap=timedelta(days=7))
        assert again.expires_at == before.expires_at


async def test_a_rotated_key_that_expires_gives_a_successor_with_the_same_lifetime() -> None:
    async with await open_store("memory://") as store:
        keys = ApiKeys(store)
        old, _ = await keys.create("user:ops", ["admin"], expires_in=timedelta(days=90))
        new, _, _ = await keys.rotate(old.id, overlap=300)
        assert new.expires_at is not None
        lifetime = new.expires_at - new.created_at
        assert abs(lifetime - timedelta(days=90)) < timedelta(seconds=1)
        shorter, _, _ = await keys.rotate(new.id, expires_in=timedelta(days=1))
        assert shorter.expires_at is not None
        assert shorter.expires_at - shorter.created_at == timedelta(days=1)


async def test_expiry_and_rotation_refuse_what_makes_no_sense() -> None:
    async with await open_store("memory://") as store:
        keys = ApiKeys(store)
        past = datetime.now(UTC) - timedelta(seconds=1)
        with pytest.raises(InvalidInput, match="not in the future"):
            await keys.create("user:a", ["read"], expires_at=past)
        with pytest.raises(InvalidInput, match="time zone"):
            await keys.create("user:a", ["read"], expires_at=datetime(2999, 1, 1))
        with pytest.raises(InvalidInput, match="not both"):
            await keys.create("user:a", ["read"], expires_at=past, expires_in=60)
        with pytest.raises(InvalidInput, match="more than 0"):
            await keys.create("user:a", ["read"], expires_in=0)
        key, secret = await keys.create("user:a", ["read"])
        with pytest.raises(InvalidInput, match="overlap"):
            await keys.rotate(key.id, overlap=-1)
        await keys.revoke(key.id)
        with pytest.raises(InvalidInput, match="revoked"):
            await keys.rotate(key.id)
        with pytest.raises(NotFound) as missing:
            await keys.rotate("el_0123456789abcdef_" + "y" * 43)
        assert "y" * 43 not in str(missing.value)  # a secret is never echoed
        assert secret not in str(missing.value)


# --- CORS -----------------------------------------------------------------------------------


async def test_a_cross_origin_request_gets_no_cors_headers_by_default(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path)) as api:
        origin = {"Origin": "https://elsewhere.example"}
        answer = await api.client.get("/streams", headers={**origin, **api.auth(api.reader)})
        assert answer.status_code == 200
        assert not any(name.startswith("access-control-") for name in answer.headers)
        preflight = await api.client.options(
            "/commands/AddStock",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert not any(name.startswith("access-control-") for name in preflight.headers)


async def test_configured_origins_get_cors_headers_and_others_do_not(tmp_path: Path) -> None:
    shop = "https://shop.example"
    async with served(sqlite_url(tmp_path), cors_origins=[shop]) as api:
        preflight = await api.client.options(
            "/commands/AddStock",
            headers={
                "Origin": shop,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == shop
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "idempotency-key"} <= set(
            re.split(r",\s*", allowed)
        )
        assert "access-control-allow-credentials" not in preflight.headers
        answer = await api.client.get("/streams", headers={"Origin": shop, **api.auth(api.reader)})
        assert answer.headers["access-control-allow-origin"] == shop
        refused = await api.client.get("/streams", headers={"Origin": shop})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == shop  # the page may read why
        other = await api.client.get(
            "/streams", headers={"Origin": "https://evil.example", **api.auth(api.reader)}
        )
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_are_checked_when_the_app_is_made() -> None:
    for bad in ("shop.example", "https://shop.example/", "https://shop.example/path", ""):
        with pytest.raises(InvalidInput, match="CORS origin"):
            create_app(orders_application(), "memory://", cors_origins=[bad])


# --- headers --------------------------------------------------------------------------------

HARDENING = {
    "x-content-type-options": "nosniff",
    "referrer-policy": None,
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


async def test_every_answer_carries_the_hardening_headers(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path), max_body_bytes=1000) as api:
        answers = {
            "json": await api.client.get("/streams", headers=api.auth(api.reader)),
            "401": await api.client.get("/streams"),
            "404": await api.client.get("/no/such/route"),
            "413": await api.client.post(
                "/commands/AddStock", content=b"x" * 2000, headers=api.auth(api.writer)
            ),
            "health": await api.client.get("/healthz"),
            "openapi": await api.client.get("/openapi.json"),
            "static": await api.client.get("/admin/static/admin.js"),
            "landing": await api.client.get("/"),
            "login": await api.client.get("/admin/login"),
            "docs": await api.client.get("/docs"),
        }
        for name, answer in answers.items():
            for header, value in HARDENING.items():
                assert header in answer.headers, (name, header)
                if value is not None:
                    assert answer.headers[header] == value, (name, header)
            policy = answer.headers["content-security-policy"]
            assert "'unsafe-inline'" not in policy
            assert "'unsafe-eval'" not in policy
            if name in ("landing", "login", "docs"):
                assert policy == HTML_POLICY, name
                assert "frame-ancestors 'none'" in policy
            else:
                assert policy.startswith("default-src 'none'"), name
        assert answers["413"].status_code == 413


async def test_the_html_pages_have_no_inline_script_or_style(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path)) as api:
        assert (await api.client.post("/admin/login", data={"key": api.reader})).status_code == 303
        for path in ("/", "/docs", "/admin", "/admin/streams", "/admin/projections"):
            page = await api.client.get(path)
            assert page.status_code == 200, path
            scripts = re.findall(r"<script\b[^>]*>", page.text)
            assert scripts, path
            assert all("src=" in tag for tag in scripts), (path, scripts)
            assert "<style" not in page.text, path
            assert not re.search(r"\sstyle=|\son[a-z]+=", page.text), path


# --- secrets compared in constant time ------------------------------------------------------

SECRET_NAMES = re.compile(r"secret|csrf|signature|password|session_token", re.IGNORECASE)
SOURCE = Path(__file__).resolve().parents[2] / "src" / "eventledger"


def _names(node: ast.AST) -> set[str]:
    return {
        n.id if isinstance(n, ast.Name) else n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Name | ast.Attribute)
    }


def test_no_secret_is_compared_with_equals() -> None:
    """Keys' secrets, session signatures and CSRF tokens go through hmac.compare_digest;
    `==` would answer sooner the less of a guess is right."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.parts[-2] == "testing":  # the test kits compare stored records
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
            ):
                operands = [node.left, *node.comparators]
                if any(SECRET_NAMES.search(name) for o in operands for name in _names(o)):
                    found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert found == []


async def test_a_forged_cookie_or_token_in_any_text_is_refused_not_a_500(tmp_path: Path) -> None:
    async with served(sqlite_url(tmp_path)) as api:
        assert (await api.client.post("/admin/login", data={"key": api.reader})).status_code == 303
        session = api.client.cookies["eventledger_session"]
        body, _, _ = session.partition(".")
        forged = {b"Cookie": f"eventledger_session={body}.\u00e9t\u00e9".encode()}
        async with httpx.AsyncClient(base_url=api.client.base_url) as other:
            assert (await other.get("/admin", headers=forged)).status_code == 303  # log in
            assert (await other.get("/streams", headers=forged)).status_code == 401
        changed = await api.client.post(
            "/commands/AddStock",
            json={"sku": "BOOK", "quantity": 1},
            headers={b"X-CSRF-Token": "\u00e9t\u00e9".encode()},
        )
        assert changed.status_code == 401
        origin = str(api.client.base_url).rstrip("/")
        form = await api.client.post(
            "/admin/logout", data={"csrf": "\u00e9t\u00e9\ud7ff"}, headers={"Origin": origin}
        )
        assert form.status_code == 403


async def test_an_unexpected_error_is_a_500_with_the_headers_too(tmp_path: Path) -> None:
    app = create_app(orders_application(), sqlite_url(tmp_path), allow_anonymous=True)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        answer = await client.get("/boom")
        assert answer.status_code == 500
        assert answer.json()["type"].endswith("/internal")
        assert "a bug" not in answer.text
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert (await client.get("/healthz")).status_code == 200
