"""Looking at a store from the command line: streams, show, tail, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eventledger import NewEvent, open_store
from eventledger.examples.orders.app import application as orders_application
from eventledger.examples.orders.demo import application as demo_application
from tests.cli.conftest import (
    ORDERS_APP,
    Cli,
    cli_env,
    order,
    pay,
    settle,
    spawn,
    stock,
    stop,
    table,
)

DEMO_STREAMS = [
    *(f"Order-o-100{n}" for n in range(1, 6)),
    "Stock-BOOK",
    "Stock-LAMP",
    "Stock-MUG",
    "Stock-PEN",
    "Subject-dave",  # the seeded customer who was forgotten
]


def test_streams_lists_every_stream_in_id_order_with_its_version(cli: Cli, demo_store: str) -> None:
    every, page, rest, as_json = cli.ok_all(
        ["streams", "--store", demo_store],
        ["streams", "--store", demo_store, "--prefix", "Order-", "--limit", "2"],
        ["streams", "--store", demo_store, "--prefix", "Order-", "--after", "Order-o-1004"],
        ["streams", "--store", demo_store, "--json"],
    )
    rows = table(every.out)
    assert [r["stream"] for r in rows] == DEMO_STREAMS
    versions = {r["stream"]: int(r["version"]) for r in rows}
    assert versions["Order-o-1001"] == 1  # placed, not paid
    assert versions["Order-o-1003"] == 4  # placed, paid, shipped, delivered
    assert all(r["created"] and r["updated"] for r in rows)
    assert [r["stream"] for r in table(page.out)] == ["Order-o-1001", "Order-o-1002"]
    assert [r["stream"] for r in table(rest.out)] == ["Order-o-1005"]

    found = json.loads(as_json.out)
    assert [s["stream"] for s in found] == DEMO_STREAMS
    assert {s["stream"]: s["version"] for s in found} == versions
    assert set(found[0]) == {"stream", "version", "created", "updated"}


def test_show_lists_a_streams_events_and_with_the_app_the_state_they_build(
    cli: Cli, demo_store: str
) -> None:
    plain, with_state, as_json, stock_json = cli.ok_all(
        ["show", "Order-o-1003", "--store", demo_store],
        ["show", "Order-o-1003", "--store", demo_store, "--app", ORDERS_APP],
        ["show", "Order-o-1003", "--store", demo_store, "--app", ORDERS_APP, "--json"],
        ["show", "Stock-BOOK", "--store", demo_store, "--app", ORDERS_APP, "--json"],
    )
    rows = table(plain.out)
    assert [r["type"] for r in rows] == [
        "OrderCreated",
        "OrderPaid",
        "OrderShipped",
        "OrderDelivered",
    ]
    assert [int(r["version"]) for r in rows] == [1, 2, 3, 4]
    assert json.loads(rows[1]["data"]) == {"amount": "28.50", "payment_id": "pay-1003"}
    assert "--app" in plain.err  # a hint, on stderr, not in the piped data

    events, _, state = with_state.out.partition("state at version 4:\n")
    assert len(table(events)) == 4
    assert json.loads(state)["status"] == "delivered"

    shown = json.loads(as_json.out)
    assert shown["stream_id"] == "Order-o-1003"
    assert [e["version"] for e in shown["events"]] == [1, 2, 3, 4]
    first = shown["events"][0]
    assert {"id", "stream_id", "position", "type", "data", "metadata", "recorded_at"} <= set(first)
    assert first["metadata"]["actor"] == "demo:seed"
    assert shown["state"]["id"] == "o-1003"
    assert shown["state"]["status"] == "delivered"
    assert shown["state"]["customer_id"] == "carol"

    stock_item = json.loads(stock_json.out)
    assert stock_item["state"]["on_hand"] == 39  # 40, one book shipped with o-1003


def test_show_version_shows_the_stream_as_it_was_after_that_event(
    cli: Cli, demo_store: str
) -> None:
    as_json, plain = cli.ok_all(
        ["show", "Order-o-1003", "--version", "2", "--store", demo_store, "--app", ORDERS_APP,
         "--json"],
        ["show", "Order-o-1003", "--version", "1", "--store", demo_store],
    )  # fmt: skip
    shown = json.loads(as_json.out)
    assert [e["type"] for e in shown["events"]] == ["OrderCreated", "OrderPaid"]
    assert shown["state"]["status"] == "paid"
    assert shown["state"]["carrier"] is None
    assert [r["type"] for r in table(plain.out)] == ["OrderCreated"]


async def test_show_at_shows_the_stream_as_it_was_at_that_time(cli: Cli, store_url: str) -> None:
    await settle(
        orders_application,
        store_url,
        [stock("BOOK", 5), order("o-1", "alice", ("BOOK", 2, "10.00")), pay("o-1", "20.00")],
    )
    async with await open_store(store_url) as store:
        events = [e async for e in store.read_stream("Order-o-1")]
    assert [e.type for e in events] == ["OrderCreated", "OrderPaid", "OrderShipped"]
    placed_at = events[0].recorded_at.isoformat()  # ...+00:00
    zulu = placed_at.replace("+00:00", "Z")

    then, then_z = cli.ok_all(
        ["show", "Order-o-1", "--at", placed_at, "--store", store_url, "--app", ORDERS_APP,
         "--json"],
        ["show", "Order-o-1", "--at", zulu, "--store", store_url],
    )  # fmt: skip
    shown = json.loads(then.out)
    assert [e["type"] for e in shown["events"]] == ["OrderCreated"]
    assert shown["state"]["status"] == "created"
    assert [r["type"] for r in table(then_z.out)] == ["OrderCreated"]

    # Before the stream existed, there was nothing to show.
    error = cli.fails("show", "Order-o-1", "--at", "2000-01-01T00:00:00Z", "--store", store_url)
    assert error == "error: no events in stream 'Order-o-1' then"


async def test_tail_from_the_start_or_after_a_position_stops_after_count(
    cli: Cli, demo_store: str
) -> None:
    async with await open_store(demo_store) as store:
        positions = [e.position async for e in store.read_all()]  # sparse on PostgreSQL
    first, after, paid, stock_only = cli.ok_all(
        ["tail", "--from-start", "--count", "5", "--json", "--store", demo_store],
        ["tail", "--after", str(positions[9]), "--count", "3", "--store", demo_store],
        ["tail", "--from-start", "--types", "OrderPaid", "--count", "3", "--store", demo_store],
        ["tail", "--from-start", "--categories", "Stock", "--count", "6", "--json",
         "--store", demo_store],
    )  # fmt: skip
    events = [json.loads(line) for line in first.out.splitlines()]
    assert [e["position"] for e in events] == positions[:5]
    assert [e["stream_id"] for e in events[:4]] == [
        "Stock-BOOK",
        "Stock-PEN",
        "Stock-MUG",
        "Stock-LAMP",
    ]
    assert events[0]["type"] == "StockAdded"
    assert events[0]["data"] == {"quantity": 40}

    # Each line starts with its position.
    assert [int(line.split()[0]) for line in after.out.splitlines()] == positions[10:13]

    lines = [line.split("  ") for line in paid.out.splitlines()]
    assert [line[2] for line in lines] == ["Order-o-1002@2", "Order-o-1003@2", "Order-o-1005@2"]
    assert {line[3] for line in lines} == {"OrderPaid"}
    assert json.loads(lines[0][4]) == {"amount": "120.00", "payment_id": "pay-1002"}

    streams = [json.loads(line)["stream_id"] for line in stock_only.out.splitlines()]
    assert len(streams) == 6
    assert all(stream.startswith("Stock-") for stream in streams)


async def test_tail_prints_events_appended_while_it_runs(cli: Cli, store_url: str) -> None:
    async with await open_store(store_url) as store:
        await store.append("Ping-old", [NewEvent("Pinged", {"n": 0})])
        # By default tail shows only new events. It cannot say when it has looked at the
        # head, so ping until it prints one; --count 1 then ends it.
        process = await spawn(cli, "tail", "--count", "1", "--json", "--store", store_url)
        try:
            sent: list[int] = []
            line = b""
            deadline = time.monotonic() + 30
            while not line and time.monotonic() < deadline:
                result = await store.append("Ping-live", [NewEvent("Pinged", {"n": len(sent)})])
                sent.append(result.position)
                with contextlib.suppress(TimeoutError):
                    line = await asyncio.wait_for(process.stdout.readline(), 0.4)
            rest, err = await asyncio.wait_for(process.communicate(), 15)
        finally:
            await stop(process)
        assert process.returncode == 0, err.decode()
        assert rest == b""
        event = json.loads(line)
        assert event["stream_id"] == "Ping-live"
        assert event["type"] == "Pinged"
        assert event["position"] in sent

        # Resuming after a position it printed shows what came after it, then waits
        # for more.
        missed = sent[sent.index(event["position"]) + 1 :]
        process = await spawn(
            cli, "tail", "--after", str(event["position"]), "--count", str(len(missed) + 2),
            "--store", store_url,
        )  # fmt: skip
        try:
            late = [(await store.append("Ping-late", [NewEvent("Pinged", {"n": 1})])).position]
            await asyncio.sleep(0.7)  # the program is up and waiting by now
            late.append((await store.append("Ping-late", [NewEvent("Pinged", {"n": 2})])).position)
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            await stop(process)
        assert process.returncode == 0, err.decode()
        printed = [line.split() for line in out.decode().splitlines()]
        assert [int(p[0]) for p in printed] == [*missed, *late]
        assert [p[2] for p in printed[-2:]] == ["Ping-late@1", "Ping-late@2"]


async def test_migrate_creates_the_schema_and_reports_its_version(cli: Cli, store_url: str) -> None:
    first = cli.ok("migrate", "--store", store_url).out.strip()
    assert first.startswith(f"{store_url}: schema version ")
    assert first.endswith(", last position 0")
    version = int(first.split("schema version ")[1].split(",")[0])
    assert version >= 1
    async with await open_store(store_url) as store:
        head = (await store.append("Thing-1", [NewEvent("Made", {})])).position
    again = cli.ok("migrate", "--store", store_url).out.strip()
    assert again == f"{store_url}: schema version {version}, last position {head}"
    # Now that it exists, the other commands read it.
    assert [r["stream"] for r in table(cli.ok("streams", "--store", store_url).out)] == ["Thing-1"]


async def test_the_store_comes_from_the_flag_the_environment_or_eventledger_toml(
    cli: Cli, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    await settle(demo_application, url, demo=True)
    elsewhere = Cli(cli.folder.parent)
    missing = f"sqlite:///{tmp_path}/missing.db"
    (cli.folder / "eventledger.toml").write_text(
        f'store = "{url}"\napp = "{ORDERS_APP}"\n', encoding="utf-8"
    )
    with ThreadPoolExecutor(3) as pool:
        from_env = pool.submit(
            elsewhere.ok, "streams", "--limit", "1", env=cli_env(EVENTLEDGER_STORE=url)
        )
        from_file = pool.submit(cli.ok, "show", "Order-o-1001", "--json")
        env_wins = pool.submit(cli.fails, "streams", env=cli_env(EVENTLEDGER_STORE=missing))
        flag_wins = pool.submit(
            cli.ok, "streams", "--store", url, "--limit", "1",
            env=cli_env(EVENTLEDGER_STORE=missing),
        )  # fmt: skip
        assert [r["stream"] for r in table(from_env.result().out)] == ["Order-o-1001"]
        assert json.loads(from_file.result().out)["state"]["status"] == "created"
        assert env_wins.result().startswith(
            f"error: no store at {missing} (from EVENTLEDGER_STORE)"
        )
        assert [r["stream"] for r in table(flag_wins.result().out)] == ["Order-o-1001"]
