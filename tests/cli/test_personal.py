"""`eventledger forget`, `export-subject` and `personal-key`, run as a real program on
SQLite and PostgreSQL (and through a real server with --server); `serve` without a
key-encryption key refuses, `demo` makes one."""

from __future__ import annotations

import asyncio
import json
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from eventledger import open_store
from eventledger.examples.orders.app import application as orders_application
from eventledger.examples.orders.commands import PlaceOrder
from eventledger.examples.orders.domain import Customer, OrderLine, ShippingAddress
from eventledger.http import ApiKeys, create_app
from eventledger.personal import ENVIRONMENT_VARIABLE, LocalKeyWrapper
from tests.cli.conftest import ORDERS_APP, Cli, Spawned, cli_env, command, settle, stop
from tests.cli.test_demo import free_port, interrupt, serving
from tests.http.conftest import serve as serve_in_process

ANN = Customer(
    name="Ann Example",
    email="ann@example.com",
    shipping_address=ShippingAddress(
        street="1 Main Street", city="Oslo", postal_code="0150", country="NO"
    ),
)
MARKER = {"$redacted": "ann"}


def placed(order_id: str, customer_id: str = "ann", customer: Customer | None = ANN) -> PlaceOrder:
    line = OrderLine(sku="BOOK", quantity=1, unit_price=Decimal("12.50"))
    return PlaceOrder(order_id=order_id, customer_id=customer_id, lines=[line], customer=customer)


def without_key() -> dict[str, str]:
    return {k: v for k, v in cli_env().items() if k != ENVIRONMENT_VARIABLE}


async def first_data(url: str, stream_id: str) -> dict[str, Any]:
    async with await open_store(url) as store:
        events = [e async for e in store.read_stream(stream_id)]
    return events[0].data


async def test_forget_asks_first_then_forgets_scrubs_and_says_what_it_did(
    cli: Cli, store_url: str
) -> None:
    work = [placed("o-1"), placed("o-2"), placed("o-3", "bob", None)]
    await settle(orders_application, store_url, work)
    refused = await asyncio.to_thread(cli.fails, "forget", "ann", "--store", store_url)
    assert refused == "error: forget ann cannot be undone: pass --yes to forget without asking"
    assert (await first_data(store_url, "Order-o-1"))["customer"]["name"] == "Ann Example"

    exported = json.loads(
        (await asyncio.to_thread(cli.ok, "export-subject", "ann", "--store", store_url)).out
    )
    assert (exported["subject"], exported["forgotten"]) == ("ann", False)
    assert exported["streams"] == ["Order-o-1", "Order-o-2"]
    assert {(v["stream_id"], v["path"], str(v["value"])) for v in exported["values"]} >= {
        ("Order-o-1", "customer.name", "Ann Example"),
        ("Order-o-2", "customer.email", "ann@example.com"),
    }

    done = await asyncio.to_thread(cli.ok, "forget", "ann", "--yes", "--store", store_url)
    lines = done.out.splitlines()
    assert lines[0] == (
        'forgot ann: 2 stream(s) now read their values as {"$redacted": "ann"}:'
        " Order-o-1, Order-o-2"
    )
    assert lines[1].startswith("SubjectForgotten recorded at position ")
    assert "freed database space scrubbed" in done.err
    for stream_id in ("Order-o-1", "Order-o-2"):
        customer = (await first_data(store_url, stream_id))["customer"]
        assert customer == {"name": MARKER, "email": MARKER, "shipping_address": MARKER}
    assert (await first_data(store_url, "Order-o-3"))["customer"] is None
    shown = await asyncio.to_thread(cli.ok, "show", "Order-o-1", "--store", store_url)
    assert "Ann" not in shown.out
    assert '{"$redacted": "ann"}' in shown.out
    after = json.loads(
        (await asyncio.to_thread(cli.ok, "export-subject", "ann", "--store", store_url)).out
    )
    assert (after["forgotten"], after["streams"], after["values"]) == (
        True,
        ["Order-o-1", "Order-o-2"],
        [],
    )

    as_json = await asyncio.to_thread(
        cli.ok, "forget", "nobody", "-y", "--json", "--store", store_url
    )
    answer = json.loads(as_json.out)
    assert answer["subject"] == "nobody"
    assert (answer["streams"], answer["had_key"], answer["scrubbed"]) == ([], False, True)
    bad = await asyncio.to_thread(cli.fails, "forget", "a\x01", "--yes", "--store", store_url)
    assert "no control characters" in bad


async def test_forget_and_export_subject_go_through_a_server(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/served.db"
    await settle(orders_application, url, [placed("o-1")])
    async with await open_store(url) as store:
        _, admin = await ApiKeys(store).create("user:root", ["read", "admin"])
        _, reader = await ApiKeys(store).create("user:auditor", ["read"])
    async with serve_in_process(create_app(orders_application, url)) as base:
        server = ["--server", base]
        exported = await asyncio.to_thread(cli.ok, "export-subject", "ann", *server, "--key", admin)
        assert json.loads(exported.out)["values"][0]["value"] is not None
        refused = await asyncio.to_thread(
            cli.fails, "forget", "ann", "--yes", *server, "--key", reader
        )
        assert refused.startswith(f"error: {base} answered 403: this route needs the 'admin'")
        done = await asyncio.to_thread(
            cli.ok, "forget", "ann", "--yes", "--json", *server, "--key", admin
        )
        answer = json.loads(done.out)
        assert (answer["streams"], answer["had_key"], answer["scrubbed"]) == (
            ["Order-o-1"],
            True,
            True,
        )
        full = await asyncio.to_thread(
            cli.fails, "forget", "ann", "--yes", "--full", *server, "--key", admin
        )
        assert "--full rewrites the database from here" in full
        async with httpx.AsyncClient(base_url=base) as client:
            page = await client.get(
                "/streams/Order-o-1", headers={"Authorization": f"Bearer {reader}"}
            )
        assert page.json()["items"][0]["data"]["customer"]["email"] == MARKER


def test_personal_key_prints_a_key_and_where_it_goes(cli: Cli) -> None:
    first, second = cli.ok_all(["personal-key"], ["personal-key"])
    key = first.out.strip()
    assert first.out == key + "\n"
    assert len(key) == 44
    assert key != second.out.strip()
    LocalKeyWrapper.from_text(key)  # the form the server takes
    assert len(first.err.strip().splitlines()) == 1
    assert f"set it as {ENVIRONMENT_VARIABLE}" in first.err


def test_serve_with_personal_data_and_no_key_refuses_in_one_line(cli: Cli) -> None:
    error = cli.fails("serve", ORDERS_APP, "--port", "0", env=without_key())
    assert error.startswith(f"error: {ORDERS_APP} has personal data (OrderCreated.customer.")
    assert f"set {ENVIRONMENT_VARIABLE}" in error
    assert "eventledger personal-key" in error
    assert list(cli.folder.iterdir()) == []  # no store, no key file


async def test_the_demo_makes_a_key_file_when_none_is_set_and_commands_use_it(cli: Cli) -> None:
    port = free_port()
    process: Spawned = await asyncio.create_subprocess_exec(  # type: ignore[assignment]
        *command("demo", "--port", str(port)),
        cwd=cli.folder,
        env=without_key(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await serving(process, client)
            dave = (await client.get("/subjects/dave/export")).json()
            assert (dave["forgotten"], dave["streams"]) == (True, ["Order-o-1004"])
            alice = (await client.get("/subjects/alice/export")).json()
            assert "alice@example.com" in [v["value"] for v in alice["values"]]
        _, err, _ = await interrupt(process)
    finally:
        await stop(process)
    key_file = cli.folder / "eventledger.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    LocalKeyWrapper.from_text(key_file.read_text(encoding="utf-8"))
    made = [line for line in err.splitlines() if "eventledger.db.key" in line]
    assert made == [
        "made eventledger.db.key (readable by you only): the key that seals the demo's"
        f" personal data; set {ENVIRONMENT_VARIABLE} to use your own"
    ]
    # Commands in this folder read with it, without the variable.
    shown = await asyncio.to_thread(cli.ok, "show", "Order-o-1001", env=without_key())
    assert "Alice Archer" in shown.out
    shown = await asyncio.to_thread(cli.ok, "show", "Order-o-1004", env=without_key())
    assert '{"$redacted": "dave"}' in shown.out
    assert "Dave" not in shown.out
