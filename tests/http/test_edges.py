"""Inputs and loads at the edges, over HTTP on SQLite and PostgreSQL: each answer is the
same on both, a problem naming what was wrong, never a 500 (issue 13's findings)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.http.conftest import Api


def place(order_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "alice",
        "lines": [{"sku": "BOOK", "quantity": quantity, "unit_price": "12.50"}],
    }


async def post_body(api: Api, body: bytes) -> httpx.Response:
    """`body` as it is, sent as JSON to AddStock."""
    return await api.client.post(
        "/commands/AddStock",
        content=body,
        headers={**api.auth(api.writer), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "path",
    [
        "/streams?prefix=%00",
        "/streams?after=%00",
        "/read-models/order_list/documents?total.gte=1e999999",
        "/read-models/order_list/documents?total.gte=1e301",
        "/read-models/order_list/documents?status=a%00b",
        "/events?since=1700000000",
        "/streams/Order-o-1/state?at=12",
        "/read-models/order_list/documents?order_by=--total",
        "/read-models/order_list/documents?order_by=",
        "/events/not-a-uuid",
        "/processes/order_fulfilment/instances/%00",
    ],
)
async def test_what_no_backend_can_take_is_a_400_naming_it(api: Api, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_times_beyond_the_years_1_to_9999_in_utc_bound_as_the_ends_of_time(
    api: Api,
) -> None:
    # Valid ISO 8601 that leaves the calendar once in UTC: every event lies after the
    # first and before the last, so these select all or nothing, never a 400 or a 500.
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 5})
    early, late = "0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00"
    everything = (await api.get("/events")).json()["items"]
    assert everything
    assert (await api.get(f"/events?since={early}&until={late}")).json()["items"] == everything
    assert (await api.get(f"/events?until={early}")).json()["items"] == []
    stream = everything[0]["stream_id"]
    state = await api.get(f"/streams/{stream}/state?at={late}")
    assert state.status_code == 200, state.text


async def test_a_document_id_with_a_nul_is_refused(api: Api) -> None:
    response = await api.get("/read-models/order_list/documents/%00")
    assert response.status_code == 400, response.text


async def test_a_nul_in_a_commands_text_is_refused_naming_the_field(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 5})
    placed = await api.post("/commands/PlaceOrder", place("o-nul"))
    assert placed.status_code == 200
    response = await api.post("/commands/CancelOrder", {"order_id": "o-nul", "reason": "a\x00b"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == ["reason"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested"),
        (b'{"sku": "BOOK", "quantity": \xff}', "not UTF-8"),
        (b'{"sku": "BOOK", "quantity": ' + b"9" * 5000 + b"}", "long integer"),
    ],
)
async def test_bodies_that_cannot_be_read_are_a_422(api: Api, body: bytes, why: str) -> None:
    response = await post_body(api, body)
    assert response.status_code == 422, (why, response.text)
    assert response.json()["type"].endswith("/invalid-command")


@pytest.mark.parametrize(
    ("body", "quantity"),
    [
        (b'\xef\xbb\xbf{"sku": "BOM", "quantity": 2}', 2),  # a UTF-8 byte order mark
        ('{"sku": "BOM", "quantity": 3}'.encode("utf-16"), 3),
    ],
)
async def test_json_with_a_byte_order_mark_or_in_utf16_is_read(
    api: Api, body: bytes, quantity: int
) -> None:
    response = await post_body(api, body)
    assert response.status_code == 200, response.text
    assert (await api.get("/streams/Stock-BOM")).json()["items"][-1]["data"] == {
        "quantity": quantity
    }


@pytest.mark.parametrize(
    ("body", "path", "kind"),
    [
        # Every digit is read: the number is too big, not some float near it.
        (b'{"sku": "B", "quantity": 100000000000000000000001}', ["quantity"], "less_than_equal"),
        (b'{"sku": "B", "quantity": NaN}', ["quantity"], "finite_number"),
        (b'{"sku": "B", "quantity": 1} x', [28], "json_invalid"),  # where it goes wrong
        (b"", [], "missing"),
        (b"null", [], "model_attributes_type"),
    ],
)
async def test_a_body_that_does_not_fit_names_where(
    api: Api, body: bytes, path: list[Any], kind: str
) -> None:
    response = await post_body(api, body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["path"], error["type"]) == (path, kind)


async def test_bad_headers_and_query_are_reported_with_the_bodys_errors(api: Api) -> None:
    headers = {**api.auth(api.writer), "Idempotency-Key": ""}
    both = await api.client.post("/commands/AddStock?timeout=0", json={}, headers=headers)
    assert both.status_code == 422, both.text
    assert [e["path"] for e in both.json()["errors"]] == [
        ["query", "timeout"],
        ["header", "Idempotency-Key"],
        ["sku"],
        ["quantity"],
    ]
    stock = {"sku": "BOOK", "quantity": 1}
    alone = await api.client.post("/commands/AddStock?timeout=0", json=stock, headers=headers)
    assert alone.status_code == 400, alone.text
    assert [e["path"] for e in alone.json()["errors"]] == [
        ["query", "timeout"],
        ["header", "Idempotency-Key"],
    ]


async def test_the_caller_is_checked_before_the_body_is_read(api: Api) -> None:
    bad = b"{ not json"
    anonymous = await api.client.post(
        "/commands/AddStock", content=bad, headers={"Content-Type": "application/json"}
    )
    assert anonymous.status_code == 401
    reader = await api.client.post(
        "/commands/AddStock",
        content=bad,
        headers={**api.auth(api.reader), "Content-Type": "application/json"},
    )
    assert reader.status_code == 403


async def test_idempotency_keys_belong_to_their_caller(api: Api) -> None:
    _, other = await api.keys.create("service:billing", ["read", "write"])
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    key = {"Idempotency-Key": "k-1"}
    mine = await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 1}, headers=key)
    theirs = await api.post(
        "/commands/AddStock", {"sku": "BOOK", "quantity": 1}, key=other, headers=key
    )
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["command_id"] != theirs.json()["command_id"]  # both ran
    assert theirs.headers.get("Idempotent-Replayed") is None
    # Another body under someone else's key says nothing of the first command.
    different = await api.post(
        "/commands/PlaceOrder", place("o-9"), key=other, headers={"Idempotency-Key": "k-2"}
    )
    assert different.status_code == 200
    reused = await api.post("/commands/AddStock", {"sku": "PEN", "quantity": 1}, headers=key)
    assert reused.status_code == 422
    assert "AddStock" in reused.text  # the caller's own first command, nobody else's
    stock = (await api.get("/streams/Stock-BOOK")).json()
    # Three additions; the fulfilment process may have reserved a book for o-9 as well.
    added = [e["data"]["quantity"] for e in stock["items"] if e["type"] == "StockAdded"]
    assert added == [10, 1, 1]


async def test_twenty_concurrent_commands_on_one_aggregate_all_succeed(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "GLUE", "quantity": 1})
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=api.url, timeout=30, limits=limits) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/commands/AddStock",
                    json={"sku": "GLUE", "quantity": 1},
                    headers=api.auth(api.writer),
                )
                for _ in range(20)
            )
        )
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers][:3]
    stock = (await api.get("/streams/Stock-GLUE")).json()
    assert stock["version"] == 21


async def test_creating_what_exists_is_a_409_at_once(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    assert (await api.post("/commands/PlaceOrder", place("o-twice"))).status_code == 200
    started = asyncio.get_running_loop().time()
    again = await api.post("/commands/PlaceOrder", place("o-twice"))
    assert again.status_code == 409
    assert again.json()["type"].endswith("/already-exists")
    assert "exists already" in again.json()["detail"]
    assert asyncio.get_running_loop().time() - started < 2  # no retries


async def test_a_correlation_id_in_utf8_is_kept_as_written(api: Api) -> None:
    response = await api.client.post(
        "/commands/AddStock",
        json={"sku": "BOOK", "quantity": 1},
        headers=[
            (b"Authorization", f"Bearer {api.writer}".encode()),
            (b"X-Correlation-ID", "commande-été".encode()),
        ],
    )
    assert response.status_code == 200, response.text
    stream = response.json()["writes"][0]["stream_id"]
    event = (await api.get(f"/streams/{stream}")).json()["items"][-1]
    assert event["metadata"]["correlation_id"] == "commande-été"


async def test_the_log_reads_a_window_of_time(api: Api) -> None:
    added = await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 1})
    assert added.status_code == 200, added.text
    every = (await api.get("/events")).json()["items"]
    first = every[0]["recorded_at"]
    window = await api.get("/events", params={"since": first, "until": first})
    assert window.status_code == 200
    assert [e["id"] for e in window.json()["items"]] == [
        e["id"] for e in every if e["recorded_at"] == first
    ]
    before = await api.get("/events", params={"until": "2000-01-01T00:00:00Z"})
    assert before.json()["items"] == []
