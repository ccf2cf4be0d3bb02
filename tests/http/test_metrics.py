"""``GET /metrics`` from a real server on SQLite and PostgreSQL, parsed with
prometheus_client's own parser: who may scrape, and counters and gauges that move with
real commands, reads and projections."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventledger.http import create_app
from tests.http.conftest import Api, orders_application, serve
from tests.http.test_api import place

pytestmark = pytest.mark.postgres

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(api: Api) -> Samples:
    answer = await api.get("/metrics", key=api.admin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return parse(answer.text)


async def test_only_keys_with_the_metrics_or_admin_scope_may_scrape(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 401
    assert (await api.get("/metrics", key=api.reader)).status_code == 403
    assert (await api.get("/metrics", key=api.writer)).status_code == 403
    assert (await api.get("/metrics", key=api.admin)).status_code == 200
    _, prometheus = await api.keys.create("service:prometheus", ["metrics"])
    assert (await api.get("/metrics", key=prometheus)).status_code == 200
    # The metrics key reads nothing else.
    assert (await api.get("/streams", key=prometheus)).status_code == 403


async def test_commands_are_counted_by_name_and_outcome(api: Api) -> None:
    before = await scrape(api)
    stock = await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    assert stock.status_code == 200, stock.text
    for order in ("m-1", "m-2"):
        assert (await api.post("/commands/PlaceOrder", place(order, "ann"))).status_code == 200
    again = await api.post("/commands/PlaceOrder", place("m-1", "ann"))
    assert again.status_code == 409  # it exists already: a conflict no retry changes
    missing = await api.post(
        "/commands/PayOrder", {"order_id": "nope", "amount": "1.00", "payment_id": "p"}
    )
    assert missing.status_code == 404  # the domain said no: rejected
    assert (await api.get("/streams/Order-m-1")).status_code == 200
    after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("eventledger_commands_total", command="PlaceOrder", outcome="ok") == 2
    assert moved("eventledger_commands_total", command="PlaceOrder", outcome="conflict") == 1
    assert moved("eventledger_commands_total", command="PayOrder", outcome="rejected") == 1
    assert moved("eventledger_commands_total", command="AddStock", outcome="ok") == 1
    assert (
        moved("eventledger_command_duration_seconds_count", command="PlaceOrder", outcome="ok") == 2
    )
    backend = "postgres" if "postgresql" in api.store.url else "sqlite"
    # AddStock and two orders commit; each order also reserves stock through the process.
    assert moved("eventledger_appends_total", backend=backend) >= 3
    assert moved("eventledger_events_appended_total", backend=backend) >= 3
    assert moved("eventledger_append_duration_seconds_count", backend=backend) >= 3
    place_route = {"method": "POST", "route": "/commands/PlaceOrder"}  # one per command
    assert moved("eventledger_http_requests_total", **place_route, status="200") == 2
    assert moved("eventledger_http_requests_total", **place_route, status="409") == 1
    pay_route = {"method": "POST", "route": "/commands/PayOrder"}
    assert moved("eventledger_http_requests_total", **pay_route, status="404") == 1
    stream_route = {"method": "GET", "route": "/streams/{stream_id:path}"}
    assert moved("eventledger_http_requests_total", **stream_route, status="200") == 1
    # Ids never become labels: they would multiply the series.
    assert not any("Order-m-1" in label for (_, labels) in after for _, label in labels)


async def test_reads_and_projection_handling_are_counted(api: Api) -> None:
    backend = "postgres" if "postgresql" in api.store.url else "sqlite"
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    result = (await api.post("/commands/PlaceOrder", place("r-1", "bea"))).json()
    await wait_caught_up(api, result["position"])
    before = await scrape(api)
    page = await api.get("/events?after=0&limit=3")
    assert len(page.json()["items"]) == 3
    after = await scrape(api)
    assert (
        value(after, "eventledger_events_read_total", backend=backend)
        - value(before, "eventledger_events_read_total", backend=backend)
    ) >= 3
    assert value(after, "eventledger_projection_events_handled_total", projection="order_list") >= 1
    assert (
        value(after, "eventledger_projection_batch_duration_seconds_count", projection="order_list")
        >= 1
    )


async def wait_caught_up(api: Api, position: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        statuses: list[dict[str, Any]] = (await api.get("/projections")).json()
        if all(s["position"] >= position for s in statuses):
            return statuses
        assert time.monotonic() < deadline, statuses
        await asyncio.sleep(0.05)


async def test_gauges_say_what_the_store_knows(api: Api) -> None:
    await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 10})
    await api.post("/commands/PlaceOrder", place("g-1", "cat"))
    broken = (await api.post("/commands/PlaceOrder", place("g-2", "mallory"))).json()
    deadline = time.monotonic() + 20
    while not (await api.get("/dead-letters", key=api.admin)).json():
        assert time.monotonic() < deadline, "nothing was parked"
        await asyncio.sleep(0.05)
    statuses = await wait_caught_up(api, broken["position"] - 1)
    samples = await scrape(api)
    assert value(samples, "eventledger_head_position") >= broken["position"]
    assert value(samples, "eventledger_visible_head_lag_events") == 0
    for status in statuses:
        name = status["name"]
        assert (
            value(samples, "eventledger_projection_position", projection=name) >= status["position"]
        )
        assert ("eventledger_projection_lag_events", frozenset({("projection", name)})) in samples
        assert ("eventledger_projection_lag_seconds", frozenset({("projection", name)})) in samples
    assert value(samples, "eventledger_dead_letters", projection="fragile") == 1
    assert value(samples, "eventledger_dead_letters", projection="order_list") == 0
    assert value(samples, "eventledger_projection_state", projection="fragile", state="failed") == 1
    active = value(
        samples, "eventledger_process_instances", process="order_fulfilment", state="active"
    )
    assert active >= 2  # the two orders wait for payment


async def test_public_metrics_need_no_key_and_the_schema_says_so(tmp_path: Path) -> None:
    app = create_app(orders_application(), f"sqlite:///{tmp_path}/events.db", public_metrics=True)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        answer = await client.get("/metrics")
        assert answer.status_code == 200
        assert "eventledger_head_position" in answer.text
        assert (await client.get("/streams")).status_code == 401  # nothing else opens
        schema = (await client.get("/openapi.json")).json()
        assert "security" not in schema["paths"]["/metrics"]["get"]
        assert "security" in schema["paths"]["/streams"]["get"]
