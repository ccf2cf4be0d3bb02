"""The HTTP API over a real socket: commands, queries, streams, time travel, auth, errors."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.http.conftest import Api, Fragile

BOOK = {"sku": "BOOK", "quantity": 2, "unit_price": "12.50"}


def place(order_id: str, customer: str = "alice", lines: Any = None) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer, "lines": lines or [BOOK]}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith(f"/{slug}"), body
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


async def test_a_command_answers_with_what_it_wrote_and_can_wait_for_a_read_model(
    api: Api,
) -> None:
    stocked = await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    assert stocked.status_code == 200, stocked.text
    response = await api.post("/commands/PlaceOrder?wait=order_list", place("o-1"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["command"] == "PlaceOrder"
    assert result["writes"] == [
        {"stream_id": "Order-o-1", "version": 1, "position": result["position"], "events": 1}
    ]
    assert (result["value"], result["replayed"], result["caught_up"]) == ("o-1", False, True)
    # The read model shows it already: read-your-writes.
    doc = await api.get("/read-models/order_list/documents/o-1")
    assert doc.status_code == 200
    assert doc.json()["status"] == "created"
    # The key's owner is the actor of what it caused.
    event = (await api.get("/streams/Order-o-1")).json()["items"][0]
    assert event["metadata"]["actor"] == "service:shop"
    assert event["metadata"]["causation_id"] == result["command_id"]


async def test_an_idempotency_key_replays_the_first_answer(api: Api) -> None:
    headers = {"Idempotency-Key": "checkout-1"}
    first = await api.post("/commands/PlaceOrder", place("o-2"), headers=headers)
    again = await api.post("/commands/PlaceOrder", place("o-2"), headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["command_id"] == first.json()["command_id"]
    assert again.json()["replayed"] is True
    other = await api.post("/commands/PlaceOrder", place("o-3"), headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    assert await api.store.stream_version("Order-o-3") == 0


async def test_bad_commands_are_answered_with_problems_naming_each_field(api: Api) -> None:
    invalid = await api.post(
        "/commands/PlaceOrder",
        {"order_id": "o-4", "lines": [{"sku": "BOOK", "quantity": -1, "unit_price": "x"}]},
    )
    body = assert_problem(invalid, 422, "invalid-command")
    paths = {tuple(error["path"]) for error in body["errors"]}
    assert paths == {("customer_id",), ("lines", 0, "quantity"), ("lines", 0, "unit_price")}
    malformed = await api.client.post(
        "/commands/PlaceOrder",
        content=b'{"order_id": ',
        headers={**api.auth(api.writer), "Content-Type": "application/json"},
    )
    assert_problem(malformed, 422, "invalid-command")
    assert_problem(await api.post("/commands/ShipTheMoon", {}), 404, "not-found")
    await api.post("/commands/PlaceOrder", place("o-5"))
    refused = await api.post("/commands/DeliverOrder", {"order_id": "o-5"})
    assert "cannot be delivered" in assert_problem(refused, 409, "rule-broken")["detail"]
    missing = await api.post(
        "/commands/PayOrder", {"order_id": "nope", "amount": "1", "payment_id": "p"}
    )
    assert_problem(missing, 404, "not-found")
    assert_problem(
        await api.post("/commands/PlaceOrder?wait=nothing", place("o-6")), 404, "not-found"
    )
    assert await api.store.stream_version("Order-o-6") == 0


async def test_keys_and_scopes_guard_every_route(api: Api) -> None:
    no_key = await api.client.get("/streams")
    assert_problem(no_key, 401, "unauthorized")
    assert no_key.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await api.client.get("/streams", headers=api.auth("el_0123456789abcdef_" + "x" * 43))
    assert_problem(wrong, 401, "unauthorized")
    garbage = await api.client.get("/streams", headers={"X-API-Key": "letmein"})
    assert_problem(garbage, 401, "unauthorized")
    assert (await api.client.get("/streams", headers={"X-API-Key": api.reader})).status_code == 200
    forbidden = await api.post("/commands/PlaceOrder", place("o-7"), key=api.reader)
    assert "'write' scope" in assert_problem(forbidden, 403, "forbidden")["detail"]
    assert_problem(
        await api.post("/projections/order_list/reset", key=api.writer), 403, "forbidden"
    )
    assert await api.store.stream_version("Order-o-7") == 0
    key, secret = await api.keys.create("user:temp", ["read"])
    assert (await api.get("/streams", key=secret)).status_code == 200
    await api.keys.revoke(key.id)
    await asyncio.sleep(5.1)  # the server remembers verified keys for 5 seconds
    assert_problem(await api.get("/streams", key=secret), 401, "unauthorized")
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}


async def test_streams_page_forwards_and_backwards_and_show_state_then(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "PEN", "quantity": 1})
    for n in range(5):
        await api.post("/commands/AddStock", {"sku": "PEN", "quantity": n + 1})
    before_last = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await api.post("/commands/AddStock", {"sku": "PEN", "quantity": 100})
    page = (await api.get("/streams/Stock-PEN?limit=4")).json()
    assert (page["version"], [e["version"] for e in page["items"]], page["next_version"]) == (
        7,
        [1, 2, 3, 4],
        5,
    )
    back = (await api.get("/streams/Stock-PEN?backwards=true&limit=3")).json()
    assert [e["version"] for e in back["items"]] == [7, 6, 5]
    assert back["next_version"] == 4
    now = (await api.get("/streams/Stock-PEN/state")).json()
    assert (now["aggregate"], now["version"], now["state"]["on_hand"]) == ("StockItem", 7, 116)
    then = (await api.get("/streams/Stock-PEN/state?version=2")).json()
    assert then["state"]["on_hand"] == 2
    at = await api.get("/streams/Stock-PEN/state", params={"at": before_last.isoformat()})
    assert at.json()["state"]["on_hand"] == 16
    assert_problem(
        await api.get("/streams/Stock-PEN/state?at=2026-01-01T00:00:00"), 400, "invalid-input"
    )
    assert_problem(await api.get("/streams/Stock-NONE"), 404, "not-found")
    assert_problem(await api.get("/streams/Unknown-1/state"), 404, "not-found")
    listed = (await api.get("/streams?prefix=Stock-")).json()
    assert [s["stream_id"] for s in listed["items"]] == ["Stock-PEN"]


async def test_the_global_feed_pages_in_order(api: Api) -> None:
    for n in range(5):
        await api.post("/commands/AddStock", {"sku": f"S{n}", "quantity": 1})
    first = (await api.get("/events?limit=3")).json()
    assert len(first["items"]) == 3
    rest = (await api.get(f"/events?after={first['next_after']}&limit=3")).json()
    positions = [e["position"] for e in first["items"] + rest["items"]]
    assert positions == sorted(positions)
    assert len(positions) == 5
    assert rest["next_after"] is None  # nothing follows: no empty page to fetch
    exact = (await api.get("/events?limit=5")).json()
    assert exact["next_after"] is None
    event = first["items"][0]
    assert (await api.get(f"/events/{event['id']}")).json() == event
    chain = (await api.get(f"/events/{event['id']}/chain")).json()
    assert [link["name"] for link in chain["causes"]] == ["AddStock"]
    assert_problem(await api.get("/events/not-a-uuid"), 400, "invalid-input")


async def test_document_queries_filter_order_and_page(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 100})
    for n in range(1, 6):
        lines = [{"sku": "BOOK", "quantity": n, "unit_price": "10.00"}]
        await api.post("/commands/PlaceOrder", place(f"q-{n}", "bob" if n % 2 else "eve", lines))
    await api.post("/commands/CancelOrder?wait=order_list", {"order_id": "q-1", "reason": "no"})
    found = await api.get(
        "/read-models/order_list/documents",
        params={"customer_id": "bob", "total.gte": "20", "order_by": "-total"},
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert [d["order_id"] for d in body["items"]] == ["q-5", "q-3"]
    assert body["total"] == 2
    paged = (
        await api.get("/read-models/order_list/documents?order_by=total&limit=2&offset=2")
    ).json()
    assert [d["order_id"] for d in paged["items"]] == ["q-3", "q-4"]
    either = await api.get("/read-models/order_list/documents?status=cancelled&status=paid")
    assert [d["order_id"] for d in either.json()["items"]] == ["q-1"]
    for bad in ("colour=red", "total=lots", "total.gte=1&total=2", "order_by=colour"):
        response = await api.get(f"/read-models/order_list/documents?{bad}")
        assert_problem(response, 400, "invalid-input")
    assert_problem(await api.get("/read-models/nothing/documents"), 404, "not-found")
    assert_problem(await api.get("/read-models/order_list/documents/none"), 404, "not-found")
    models = {m["name"]: m for m in (await api.get("/read-models")).json()}
    assert models["order_list"]["kind"] == "DocumentProjection"
    assert (models["daily_sales"]["kind"], models["daily_sales"]["tables"]) == (
        "SqlProjection",
        ["daily_sales"],
    )
    assert "order_fulfilment" not in models


async def test_sql_read_models_are_read_a_page_at_a_time(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    await api.post("/commands/PlaceOrder", place("s-1"))
    paid = {"order_id": "s-1", "amount": "25.00", "payment_id": "p-s-1"}
    assert (await api.post("/commands/PayOrder?wait=daily_sales", paid)).status_code == 200
    page = (await api.get("/read-models/daily_sales/tables/daily_sales?order_by=-day")).json()
    assert page["columns"] == ["day", "orders_paid", "revenue_cents"]
    assert [(r["orders_paid"], r["revenue_cents"]) for r in page["items"]] == [(1, 2500)]
    assert page["items"][0]["day"] == datetime.now(UTC).date().isoformat()
    bad = await api.get("/read-models/daily_sales/tables/daily_sales?order_by=colour")
    assert "day, orders_paid, revenue_cents" in assert_problem(bad, 400, "invalid-input")["detail"]
    assert_problem(await api.get("/read-models/daily_sales/tables/nope"), 404, "not-found")
    assert_problem(await api.get("/read-models/order_list/tables/x"), 404, "not-found")


async def test_projections_report_rebuild_and_reset(api: Api) -> None:
    result = (await api.post("/commands/PlaceOrder?wait=order_list", place("r-1"))).json()
    statuses = {s["name"]: s for s in (await api.get("/projections")).json()}
    assert statuses["order_list"]["state"] in ("running", "catching_up")
    assert statuses["order_list"]["position"] >= result["position"]
    started = await api.post("/projections/order_list/rebuild", key=api.admin)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 20
    while (await api.get("/projections/order_list")).json()["generation"] != 2:
        assert time.monotonic() < deadline, "the rebuild never finished"
        await asyncio.sleep(0.05)
    assert (await api.get("/read-models/order_list/documents/r-1")).status_code == 200
    reset = await api.post("/projections/order_list/reset", key=api.admin)
    assert reset.status_code == 200
    refused = await api.post("/projections/order_fulfilment/rebuild", key=api.admin)
    assert_problem(refused, 400, "invalid-input")
    assert_problem(await api.get("/projections/nothing"), 404, "not-found")
    instance = await api.get("/processes/order_fulfilment/instances/r-1")
    assert instance.status_code == 200
    # No stock was ever added: the process could not reserve any and failed the order.
    assert instance.json()["status"] == "failed"
    assert instance.json()["reason"].startswith("ReserveStock was refused")


async def test_dead_letters_are_listed_retried_and_skipped(api: Api) -> None:
    await api.post("/commands/PlaceOrder", place("d-1", "mallory"))
    await api.post("/commands/PlaceOrder", place("d-2", "mallory"))
    deadline = time.monotonic() + 20
    while not (letters := (await api.get("/dead-letters", key=api.admin)).json()):
        assert time.monotonic() < deadline, "nothing was parked"
        await asyncio.sleep(0.05)
    assert_problem(await api.get("/dead-letters", key=api.reader), 403, "forbidden")
    (letter,) = letters
    assert (letter["projection"], letter["event_type"], letter["attempts"]) == (
        "fragile",
        "OrderCreated",
        2,
    )
    assert "mallory's orders break" in letter["error"]
    assert (await api.get("/projections/fragile")).json()["state"] == "failed"
    ready = await api.client.get("/readyz")
    assert "fragile" in assert_problem(ready, 503, "read-model-failed")["detail"]
    failed_again = await api.post(f"/dead-letters/{letter['id']}/retry", key=api.admin)
    assert_problem(failed_again, 409, "failed-again")
    Fragile.broken = False
    retried = await api.post(f"/dead-letters/{letter['id']}/retry", key=api.admin)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "retried"
    assert_problem(
        await api.post(f"/dead-letters/{letter['id']}/skip", key=api.admin), 409, "resolved"
    )
    assert_problem(await api.post("/dead-letters/99999/skip", key=api.admin), 404, "not-found")
    while (await api.client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the projection never went on"
        await asyncio.sleep(0.05)
    doc = await api.get("/read-models/fragile/documents/d-2")
    assert doc.json() == {"customer_id": "mallory"}


async def test_a_burst_of_hostile_requests_gets_4xx_and_writes_nothing(api: Api) -> None:
    head = await api.store.head_position()
    writer = api.auth(api.writer)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/commands/PlaceOrder", {"content": b"\xff\xfe not json"}),
        ("POST", "/commands/PlaceOrder", {"content": b"[]"}),
        ("POST", "/commands/PlaceOrder", {"content": b'{"order_id": 5, "lines": "x"}'}),
        ("POST", "/commands/PlaceOrder", {"content": b"{" * 10_000}),
        ("POST", "/commands/PlaceOrder", {"content": b"x" * (2 << 20)}),
        ("POST", "/commands/PlaceOrder", {"json": place("\x00evil")}),
        ("POST", "/commands/PlaceOrder", {"json": place("sku", lines=[{**BOOK, "sku": "\x9a«"}])}),
        ("POST", "/commands/PlaceOrder", {"json": place("o" * 10_000)}),
        (
            "POST",
            "/commands/PlaceOrder",
            {"json": place("ok", lines=[{**BOOK, "quantity": 1e9}])},
        ),
        ("POST", "/commands/..%2F..%2Fetc", {"json": {}}),
        ("GET", "/streams/%00bad", {}),
        ("GET", "/streams/" + "x" * 5000, {}),
        ("GET", "/streams?limit=-1", {}),
        ("GET", "/streams?limit=abc", {}),
        ("GET", "/events?after=99999999999999999999999", {}),
        ("GET", "/events?since=yesterday", {}),
        ("GET", "/events/live?types=%00", {}),
        ("DELETE", "/streams/Order-1", {}),
        ("GET", "/no/such/route", {}),
        ("PUT", "/commands/PlaceOrder", {"json": place("o-put")}),
    ]
    for method, path, options in requests:
        headers = {**writer, "Content-Type": "application/json"}
        response = await api.client.request(method, path, headers=headers, **options)
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.text,
        )
        assert response.headers["content-type"] == "application/problem+json", path
    form = await api.client.post(
        "/commands/AddStock",
        content=b"sku=BOOK&quantity=1",
        headers={**writer, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "JSON" in assert_problem(form, 415, "unsupported-media-type")["detail"]
    too_big = await api.client.post(
        "/commands/PlaceOrder", content=b"x" * (2 << 20), headers=writer
    )
    assert_problem(too_big, 413, "too-large")
    assert await api.store.head_position() == head


async def test_openapi_and_interactive_docs_are_served(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    assert "/commands/PlaceOrder" in schema["paths"]
    place_order = schema["paths"]["/commands/PlaceOrder"]["post"]
    assert place_order["requestBody"]["required"] is True
    assert place_order["description"].startswith("Place an order for a customer")
    assert place_order["security"] == [{"apiKey": []}]
    assert "application/problem+json" in place_order["responses"]["422"]["content"]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert "security" not in schema["paths"]["/healthz"]["get"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
