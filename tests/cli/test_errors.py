"""Mistakes get one clear line on stderr and a non-zero exit, never a traceback
(unless asked for with --debug)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from eventledger.examples.orders.demo import application as demo_application
from tests.cli.conftest import DEMO_APP, ORDERS_APP, Cli, settle


def test_a_missing_sqlite_file_is_not_created_but_named(cli: Cli) -> None:
    missing = f"sqlite:///{cli.folder}/missing.db"
    with ThreadPoolExecutor(3) as pool:
        named = pool.submit(cli.fails, "streams", "--store", missing)
        default = pool.submit(cli.fails, "dlq", "list")
        tailing = pool.submit(cli.fails, "tail", "--store", missing)
        assert named.result() == (
            f"error: no store at {missing} (from --store): give --store, set EVENTLEDGER_STORE,"
            " or run `eventledger demo` here first"
        )
        assert default.result().startswith(
            "error: no store at sqlite:///eventledger.db (from the default)"
        )
        assert tailing.result().startswith(f"error: no store at {missing} (from --store)")
    assert list(cli.folder.iterdir()) == []


async def test_mistakes_about_streams_times_projections_letters_and_keys_are_one_line(
    cli: Cli, demo_store: str
) -> None:
    store = ("--store", demo_store)
    expected = {
        ("show", "Nope-1", *store): "error: no events in stream 'Nope-1'",
        ("show", "Order-o-1001", "--at", "yesterday", *store): (
            "error: --at is an ISO 8601 time, not 'yesterday'"
        ),
        ("show", "Order-o-1001", "--at", "2026-11-23T12:00:00", *store): (
            "error: --at needs a time zone, e.g. 2026-11-23T12:00:00Z"
        ),
        ("show", "Order-o-1001", "--version", "1", "--at", "2026-11-23T12:00:00Z", *store): (
            "error: give --version or --at, not both"
        ),
        ("projections", "rebuild", "nope", "--app", DEMO_APP, *store): (
            "error: orders-demo has no projection 'nope'; known: order_list, customer_orders,"
            " daily_sales, order_fulfilment, line_shares"
        ),
        ("projections", "reset", "nope", "--app", ORDERS_APP, *store): (
            "error: orders has no projection 'nope'; known: order_list, customer_orders,"
            " daily_sales, order_fulfilment"
        ),
        ("projections", "rebuild", "order_list", *store): (
            "error: this needs the application: give --app module:object, set EVENTLEDGER_APP,"
            ' or put app = "module:object" in eventledger.toml'
        ),
        ("dlq", "retry", "999", "--app", DEMO_APP, *store): "error: no dead letter 999",
        ("dlq", "skip", "999", "--app", DEMO_APP, *store): "error: no dead letter 999",
        ("keys", "revoke", "nope", *store): "error: no API key with id 'nope'",
        ("keys", "create", "someone", "--scope", "root", *store): (
            "error: scopes are some of read, write, admin, metrics, not root"
        ),
        ("show", "Order-o-1001", "--app", "no_such_module:application", *store): (
            "error: cannot import 'no_such_module' (for no_such_module:application):"
            " No module named 'no_such_module'"
        ),
        ("show", "Order-o-1001", "--app", "eventledger.examples.orders.app", *store): (
            "error: --app is module:object, not 'eventledger.examples.orders.app'"
        ),
        ("show", "Order-o-1001", "--app", "eventledger.examples.orders.app:Order", *store): (
            "error: eventledger.examples.orders.app:Order is the class Order, not an Application;"
            " name an eventledger Application as module:object (or a function without"
            " arguments that returns one), e.g. myshop.app:application"
        ),
    }
    if not demo_store.startswith("sqlite"):  # the rest fail before the store matters
        expected = {
            args: line
            for args, line in expected.items()
            if args[0] in {"dlq", "keys"} or args[1] == "Nope-1" or args[2] == "nope"
        }
    with ThreadPoolExecutor(3) as pool:
        said = dict(zip(expected, pool.map(lambda args: cli.fails(*args), expected), strict=True))
    assert said == expected


def test_stores_that_cannot_be_opened_are_named(cli: Cli) -> None:
    with ThreadPoolExecutor(2) as pool:
        scheme = pool.submit(cli.fails, "streams", "--store", "mongodb://db/x")
        refused = pool.submit(cli.fails, "migrate", "--store", "postgresql://nobody@127.0.0.1:1/x")
        assert scheme.result() == (
            "error: no store for the scheme 'mongodb' in 'mongodb://db/x';"
            " use memory://, sqlite:/// or postgresql://"
        )
        assert refused.result().startswith(
            "error: cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/x"
        )


def test_a_broken_eventledger_toml_is_named(cli: Cli) -> None:
    (cli.folder / "eventledger.toml").write_text('store = "sqlite:///x.db\n', encoding="utf-8")
    assert cli.fails("streams").startswith("error: eventledger.toml is not valid TOML: ")


def test_a_key_eventledger_toml_does_not_know_is_named_with_the_known_ones(cli: Cli) -> None:
    config = cli.folder / "eventledger.toml"
    config.write_text('stor = "sqlite:///x.db"\n', encoding="utf-8")
    assert cli.fails("streams") == (
        f"error: {config} sets 'stor', which eventledger does not know (did you mean"
        " 'store'?); it takes store, app, retention"
    )
    config.write_text('store = "sqlite:///x.db"\nport = 8000\n', encoding="utf-8")
    assert cli.fails("streams") == (
        f"error: {config} sets 'port', which eventledger does not know; it takes store, app,"
        " retention"
    )
    assert list(cli.folder.iterdir()) == [config]  # nothing was opened


async def test_a_projection_running_elsewhere_is_left_to_its_runner(
    cli: Cli, store_url: str
) -> None:
    await settle(demo_application, store_url, demo=True)
    async with demo_application.run(store_url) as service:
        owner = service.runner.owner
        storage = service.store.read_side()
        for _ in range(300):  # its worker takes the lease soon after starting
            lease = await storage.lease("order_list")
            if lease is not None and lease.owner == owner:
                break
            await asyncio.sleep(0.01)
        # In threads: the runner goes on meanwhile (it holds SQLite's write lock now and
        # then, and renews its lease).
        status, error = await asyncio.gather(
            asyncio.to_thread(cli.ok, "projections", "status", "--store", store_url, "--json"),
            asyncio.to_thread(cli.fails, "projections", "rebuild", "order_list",
                              "--store", store_url, "--app", DEMO_APP),
        )  # fmt: skip
    running = {p["name"]: p["running_in"] for p in json.loads(status.out)["projections"]}
    assert running["order_list"] == owner
    assert error.startswith(f"error: order_list is run by {owner} right now (its lease runs until")
    assert error.endswith("; stop it there, or ask it with --server http://<host>:<port>")


def test_usage_mistakes_exit_2_with_clicks_message(cli: Cli) -> None:
    ran = cli("streams", "--limit", "0")
    assert ran.code == 2
    assert "Invalid value for '--limit'" in ran.err
    assert "Traceback" not in ran.err
    assert cli("nonsense").code == 2


@pytest.mark.parametrize(
    ("args", "raised"),
    [
        (("streams", "--store", "sqlite:///missing.db"), "eventledger.errors.NotFound: no store"),
        (("show", "Order-1", "--at", "yesterday", "--store", "memory://"), "InvalidInput"),
    ],
)
def test_debug_shows_the_traceback(cli: Cli, args: tuple[str, ...], raised: str) -> None:
    ran = cli("--debug", *args)
    assert ran.code != 0
    assert "Traceback (most recent call last)" in ran.err
    assert raised in ran.err
