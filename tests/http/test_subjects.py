"""Personal data over HTTP, on a real server (SQLite and PostgreSQL): forget a customer,
export what is kept of one; admin keys only; bad subject ids refused with a reason."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.http.conftest import Api
from tests.http.test_api import BOOK, assert_problem

ANN = {
    "name": "Ann Example",
    "email": "ann@example.com",
    "shipping_address": {
        "street": "1 Main Street",
        "city": "Oslo",
        "postal_code": "0150",
        "country": "NO",
    },
}


def place(order_id: str, customer_id: str = "ann", customer: Any = ANN) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "lines": [BOOK],
        "customer": customer,
    }


async def order_doc(api: Api, order_id: str, until: Any) -> dict[str, Any]:
    """The order's order_list document once `until(doc)` holds (projections run apart)."""
    deadline = time.monotonic() + 20
    while True:
        response = await api.get(f"/read-models/order_list/documents/{order_id}")
        if response.status_code == 200 and until(response.json()):
            doc: dict[str, Any] = response.json()
            return doc
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.05)


async def test_forget_redacts_the_stream_the_export_and_the_read_model(api: Api) -> None:
    for order_id in ("o-1", "o-2"):
        placed = await api.post("/commands/PlaceOrder?wait=order_list", place(order_id))
        assert placed.status_code == 200, placed.text
    await api.post("/commands/PlaceOrder", place("o-3", "bob", {**ANN, "name": "Bob"}))
    stream = (await api.get("/streams/Order-o-1")).json()
    assert stream["items"][0]["data"]["customer"] == ANN
    doc = await order_doc(api, "o-1", lambda d: True)
    assert (doc["customer_name"], doc["customer_email"]) == ("Ann Example", "ann@example.com")

    before = await api.get("/subjects/ann/export", key=api.admin)
    assert before.status_code == 200, before.text
    exported = before.json()
    assert (exported["subject"], exported["forgotten"]) == ("ann", False)
    assert exported["streams"] == ["Order-o-1", "Order-o-2"]
    values = {(v["stream_id"], v["path"]): v["value"] for v in exported["values"]}
    assert values[("Order-o-1", "customer.email")] == "ann@example.com"
    assert values[("Order-o-2", "customer.shipping_address")] == ANN["shipping_address"]
    assert {v["event_type"] for v in exported["values"]} == {"OrderCreated"}

    forgotten = await api.post("/subjects/ann/forget?scrub=true", key=api.admin)
    assert forgotten.status_code == 200, forgotten.text
    answer = forgotten.json()
    assert answer["subject"] == "ann"
    assert answer["streams"] == ["Order-o-1", "Order-o-2"]
    assert (answer["had_key"], answer["scrubbed"]) == (True, True)
    recorded = (await api.get("/streams/Subject-ann")).json()["items"]
    assert [(e["type"], e["position"]) for e in recorded] == [
        ("SubjectForgotten", answer["position"])
    ]
    assert recorded[0]["data"] == {"subject": "ann", "streams": ["Order-o-1", "Order-o-2"]}
    assert recorded[0]["metadata"]["actor"] == "user:root"

    # Every later read of the streams shows the markers; nothing else changed.
    for order_id in ("o-1", "o-2"):
        data = (await api.get(f"/streams/Order-{order_id}")).json()["items"][0]["data"]
        marker = {"$redacted": "ann"}
        assert data["customer"] == {"name": marker, "email": marker, "shipping_address": marker}
        assert (data["customer_id"], data["lines"]) == ("ann", [BOOK])
    other = (await api.get("/streams/Order-o-3")).json()["items"][0]["data"]
    assert other["customer"]["name"] == "Bob"
    after = (await api.get("/subjects/ann/export", key=api.admin)).json()
    assert (after["forgotten"], after["values"]) == (True, [])
    # The read model dropped what it copied.
    doc = await order_doc(api, "o-1", lambda d: d.get("customer_forgotten"))
    assert "customer_name" not in doc
    assert "customer_email" not in doc
    assert "Ann" not in str(doc)
    # A forgotten customer's details are not stored again.
    again = await api.post("/commands/PlaceOrder", place("o-4"))
    assert "forgotten" in assert_problem(again, 400, "invalid-input")["detail"]
    assert await api.store.stream_version("Order-o-4") == 0


async def test_forget_and_export_need_an_admin_key(api: Api) -> None:
    await api.post("/commands/PlaceOrder", place("o-1"))
    for key in (api.reader, api.writer):
        refused = await api.get("/subjects/ann/export", key=key)
        assert "'admin' scope" in assert_problem(refused, 403, "forbidden")["detail"]
        refused = await api.post("/subjects/ann/forget", key=key)
        assert_problem(refused, 403, "forbidden")
    assert_problem(await api.client.post("/subjects/ann/forget"), 401, "unauthorized")
    data = (await api.get("/streams/Order-o-1")).json()["items"][0]["data"]
    assert data["customer"]["email"] == "ann@example.com"
    assert await api.store.stream_version("Subject-ann") == 0


async def test_a_subject_that_is_no_id_is_refused_saying_why(api: Api) -> None:
    control = assert_problem(
        await api.post("/subjects/a%01b/forget", key=api.admin), 400, "invalid-input"
    )
    assert control["detail"] == (
        "a subject id must hold no control characters and no whitespace at either end,"
        " not 'a\\x01b'"
    )
    export = await api.get("/subjects/a%7Fb/export", key=api.admin)
    assert "no control characters" in assert_problem(export, 400, "invalid-input")["detail"]
    long = await api.post("/subjects/" + "x" * 248 + "/forget", key=api.admin)
    body = assert_problem(long, 400, "invalid-input")
    assert body["errors"][0]["path"] == ["path", "subject"], body
    assert "at most 247 characters" in body["detail"]
    assert await api.store.head_position() == 0


async def test_the_routes_are_in_the_api_schema_with_their_scope(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    forget = schema["paths"]["/subjects/{subject}/forget"]["post"]
    export = schema["paths"]["/subjects/{subject}/export"]["get"]
    assert forget["security"] == export["security"] == [{"apiKey": []}]
    assert {p["name"] for p in forget["parameters"]} == {"subject", "scrub"}
    assert "$ref" in export["responses"]["200"]["content"]["application/json"]["schema"]
