"""Operating a store from the command line: projections, the dead-letter queue, API keys.

Rebuilds, resets and retries run here, in the program: nothing else holds the
projection's lease (the fixtures stop their runners once everything is seen)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eventledger import Application, open_store
from eventledger.examples.orders.app import application as orders_application
from eventledger.examples.orders.demo import application as demo_application
from eventledger.examples.orders.read_models import OrderList
from eventledger.http import ApiKeys
from tests.cli import fixed_demo
from tests.cli.conftest import (
    DEMO_APP,
    ORDERS_APP,
    TIMEOUT,
    Cli,
    append_orders,
    cli_env,
    command,
    settle,
    table,
)

DEMO_PROJECTIONS = ["order_list", "customer_orders", "daily_sales", "order_fulfilment"]
FREE_ORDER_ERROR = (
    "UndefinedShare: order o-1005 costs 0.00: a line's share of a total of zero is undefined"
    " (line_shares does not handle free orders)"
)
"""How the demo's parked event reads: what went wrong, in words (not decimal's
``[<class 'decimal.DivisionUndefined'>]``)."""
REBUILT = re.compile(r"^rebuilt: generation (\d+) serves queries \(\d+\.\d s\)$")


def test_projections_status_shows_positions_lag_runners_and_parked_events(
    cli: Cli, demo_store: str
) -> None:
    rows = table(cli.ok("projections", "status", "--store", demo_store, "--app", DEMO_APP).out)
    # With the application: its projections, in its order.
    assert [r["projection"] for r in rows] == [*DEMO_PROJECTIONS, "line_shares"]
    assert {r["behind"] for r in rows} == {"0"}
    assert {r["running in"] for r in rows} == {"nowhere"}
    parked = {r["projection"]: int(r["parked"]) for r in rows}
    assert parked == {**dict.fromkeys(DEMO_PROJECTIONS, 0), "line_shares": 1}
    (shares,) = (r for r in rows if r["projection"] == "line_shares")
    assert shares["last error"].startswith("UndefinedShare: order o-1005 costs 0.00")

    status = json.loads(cli.ok("projections", "status", "--store", demo_store, "--json").out)
    # Without it: what the store has checkpoints for, by name.
    assert [p["name"] for p in status["projections"]] == sorted([*DEMO_PROJECTIONS, "line_shares"])
    for projection in status["projections"]:
        assert projection["position"] == status["head_position"]
        assert projection["behind"] == 0
        assert projection["running_in"] is None
        assert projection["rebuilding"] is False
    (shares_json,) = (p for p in status["projections"] if p["name"] == "line_shares")
    assert shares_json["parked"] == 1
    assert shares_json["last_error"] == FREE_ORDER_ERROR


async def test_projections_rebuild_switches_to_a_new_generation_and_reset_starts_over(
    cli: Cli, demo_store: str
) -> None:
    args = ("--store", demo_store, "--app", DEMO_APP)
    rebuilt = cli.ok("projections", "rebuild", "order_list", *args)
    first = REBUILT.match(rebuilt.out.strip())
    assert first, rebuilt.out
    assert "━" not in rebuilt.out + rebuilt.err  # piped: no progress bar
    again = REBUILT.match(cli.ok("projections", "rebuild", "order_list", *args).out.strip())
    assert again
    assert int(again[1]) == int(first[1]) + 1

    async with demo_application.run(demo_store, projections=False) as service:
        orders = await service.runner.documents("order_list").count()
    assert orders == 5  # the new generation has every order

    reset = cli.ok("projections", "reset", "customer_orders", *args)
    assert reset.out.strip() == "reset customer_orders: it fills again from the first event"
    status = json.loads(cli.ok("projections", "status", *args, "--json").out)
    positions = {p["name"]: p for p in status["projections"]}
    assert positions["customer_orders"]["position"] == 0
    assert positions["customer_orders"]["behind"] > 0
    assert positions["order_list"]["behind"] == 0


async def test_dlq_lists_parked_events_and_retry_and_skip_resolve_them(
    cli: Cli, demo_store: str
) -> None:
    plain, as_json, none = cli.ok_all(
        ["dlq", "list", "--store", demo_store],
        ["dlq", "list", "--projection", "line_shares", "--json", "--store", demo_store],
        ["dlq", "list", "--projection", "order_list", "--json", "--store", demo_store],
    )
    (row,) = table(plain.out)
    assert row["projection"] == "line_shares"
    assert row["event"] == "OrderCreated"
    assert row["stream"] == "Order-o-1005"  # the free order
    assert row["attempts"] == "3"
    assert row["error"] == FREE_ORDER_ERROR[:100]
    letter_id = row["id"]

    (letter,) = json.loads(as_json.out)
    assert letter["id"] == int(letter_id)
    assert letter["stream_id"] == "Order-o-1005"
    assert letter["event_type"] == "OrderCreated"
    assert letter["error"] == FREE_ORDER_ERROR
    assert "Traceback" in letter["traceback"]
    assert json.loads(none.out) == []

    # Retrying with the bug still there fails again, cleanly; the event stays parked...
    error = cli.fails("dlq", "retry", letter_id, "--store", demo_store, "--app", DEMO_APP)
    assert f"dead letter {letter_id} of line_shares failed again" in error

    # ...so with the fix deployed it can go through, and the read model has the order.
    fixed = "tests.cli.fixed_demo:application"
    retried = cli.ok("dlq", "retry", letter_id, "--store", demo_store, "--app", fixed)
    assert retried.out.strip() == f"dead letter {letter_id}: retried"
    async with fixed_demo.application.run(demo_store, projections=False) as service:
        shares = await service.runner.documents("line_shares").get("o-1005")
    assert shares == {"shares": {"PEN": "0"}}
    with ThreadPoolExecutor(2) as pool:
        left = pool.submit(cli.ok, "dlq", "list", "--store", demo_store, "--json")
        again = pool.submit(cli.fails, "dlq", "skip", letter_id, "--store", demo_store,
                            "--app", DEMO_APP)  # fmt: skip
        assert json.loads(left.result().out) == []
        assert again.result() == f"error: dead letter {letter_id} is retried already"


async def test_dlq_skip_gives_up_on_a_parked_event(cli: Cli, demo_store: str) -> None:
    (letter,) = json.loads(cli.ok("dlq", "list", "--store", demo_store, "--json").out)
    skipped = cli.ok("dlq", "skip", str(letter["id"]), "--store", demo_store, "--app", DEMO_APP)
    assert skipped.out.strip() == f"dead letter {letter['id']}: skipped"
    left, status_json = cli.ok_all(
        ["dlq", "list", "--store", demo_store],
        ["projections", "status", "--store", demo_store, "--app", DEMO_APP, "--json"],
    )
    assert table(left.out) == []
    status = json.loads(status_json.out)
    assert {p["name"]: p["parked"] for p in status["projections"]}["line_shares"] == 0


async def test_keys_are_created_listed_and_revoked(cli: Cli, store_url: str) -> None:
    # Making a key needs no existing store (a server's first key comes before any event).
    made = cli.ok("keys", "create", "service:checkout", "--scope", "read", "--scope", "write",
                  "--store", store_url)  # fmt: skip
    secret = made.out.strip()
    assert "\n" not in secret  # only the key on stdout, for $(...)
    assert "only time it is shown" in made.err
    root = cli.ok("keys", "create", "user:root", "--scope", "admin", "--json", "--store", store_url)
    made_json = json.loads(root.out)
    assert made_json["owner"] == "user:root"
    assert made_json["scopes"] == ["admin"]
    assert made_json["key"].startswith(f"el_{made_json['id']}_")

    async with await open_store(store_url) as store:
        checkout = await ApiKeys(store).verify(secret)
        assert checkout is not None
        assert checkout.owner == "service:checkout"
        assert checkout.scopes == {"read", "write"}

    plain, as_json = cli.ok_all(
        ["keys", "list", "--store", store_url], ["keys", "list", "--store", store_url, "--json"]
    )
    rows = table(plain.out)
    assert [(r["id"], r["owner"], r["scopes"], r["revoked"]) for r in rows] == [
        (checkout.id, "service:checkout", "read write", ""),
        (made_json["id"], "user:root", "admin", ""),
    ]
    listed = json.loads(as_json.out)
    assert [(k["id"], k["scopes"], k["revoked"]) for k in listed] == [
        (checkout.id, ["read", "write"], None),
        (made_json["id"], ["admin"], None),
    ]
    assert secret not in plain.out + as_json.out  # never the secrets

    # Revoke by id, or by the whole key.
    revoked = cli.ok("keys", "revoke", made_json["id"], "--store", store_url)
    assert revoked.out.strip() == f"revoked key {made_json['id']} of user:root"
    assert cli.ok("keys", "revoke", secret, "--store", store_url).out.strip() == (
        f"revoked key {checkout.id} of service:checkout"
    )
    active, every = cli.ok_all(
        ["keys", "list", "--store", store_url, "--json"],
        ["keys", "list", "--revoked", "--store", store_url],
    )
    assert json.loads(active.out) == []
    assert {r["owner"]: bool(r["revoked"]) for r in table(every.out)} == {
        "service:checkout": True,
        "user:root": True,
    }
    async with await open_store(store_url) as store:
        assert await ApiKeys(store, cache_seconds=0).verify(secret) is None


def _under_a_terminal(cli: Cli, *args: str, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Run `eventledger args...` with a pseudo-terminal as stdout and stderr; its exit
    code and everything it showed there."""
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(  # noqa: S603 - our own program
            command(*args),
            cwd=cli.folder,
            env=cli_env(TERM="xterm-256color", COLUMNS="120"),
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=secondary,
        )
    finally:
        os.close(secondary)
    shown = b""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the program closed its end
                break
            if not chunk:
                break
            shown += chunk
        code = process.wait(timeout=10)
    finally:
        process.kill()
        process.wait(timeout=10)
        os.close(primary)
    return code, shown.decode("utf-8", "replace")


async def test_rebuild_shows_a_progress_bar_on_a_terminal_and_none_when_piped(
    cli: Cli, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/big.db"
    await append_orders(url, 3000)
    # Built once already (a rebuild of a read model that is behind switches as soon as
    # the new copy reaches the old one, and this program's runner stops right then).
    await settle(Application("orders", projections=[OrderList]), url)
    args = ("projections", "rebuild", "order_list", "--store", url, "--app", ORDERS_APP)

    code, shown = _under_a_terminal(cli, *args)
    assert code == 0, shown
    assert "━" in shown  # rich's bar
    assert "events/s" in shown
    assert "rebuilding" in shown
    assert "\x1b[" in shown  # styled, for a person
    assert "rebuilt: generation 2 serves queries" in shown.replace("\r\n", "\n").splitlines()[-1]
    assert "error" not in shown

    piped = cli.ok(*args)
    assert REBUILT.match(piped.out.strip())
    assert piped.out.count("\n") == 1
    assert piped.err == ""
    for mark in ("━", "events/s", "rebuilding", "\x1b["):
        assert mark not in piped.out + piped.err
    async with orders_application.run(url, projections=False) as service:
        assert await service.runner.documents("order_list").count() == 3000
    (status,) = json.loads(cli.ok("projections", "status", "--store", url, "--json").out)[
        "projections"
    ]
    assert status["behind"] == 0
