"""`eventledger demo`: serves the Orders example with sample data, stops on Ctrl-C, and
comes back with everything still there."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import time
from typing import Any

import httpx

from eventledger import Repository
from eventledger.examples.orders.demo import SEEDED
from eventledger.examples.orders.demo import application as demo_application
from eventledger.examples.orders.domain import Order, OrderStatus
from tests.cli.conftest import ROOT, Cli, Spawned, cli_env, spawn, stop, table

PLACE = {
    "order_id": "o-2001",
    "customer_id": "you",
    "lines": [{"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def until(check: Any, what: str, timeout: float = 30) -> Any:
    """Poll `check()` (async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


async def serving(process: Spawned, client: httpx.AsyncClient) -> None:
    async def healthy() -> bool:
        if process.returncode is not None:
            raise AssertionError(f"the demo ended: {(await process.stderr.read()).decode()}")
        try:
            return (await client.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await until(healthy, "the demo answers /healthz")


async def orders(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/read-models/order_list/documents")
    assert response.status_code == 200, response.text
    return sorted(item["order_id"] for item in response.json()["items"])


async def interrupt(process: Spawned) -> tuple[str, str, float]:
    """Ctrl-C; its stdout, its stderr and how long it took to stop."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 15)
    return out.decode(), err.decode(), time.monotonic() - started


async def test_the_demo_serves_seeds_once_stops_on_ctrl_c_and_keeps_its_data(cli: Cli) -> None:
    port = free_port()
    seeded = [f"o-100{n}" for n in range(1, 6)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        process = await spawn(cli, "demo", "--port", str(port))
        try:
            await serving(process, client)

            async def all_seeded() -> list[str] | None:
                found = await orders(client)
                return found if len(found) >= 5 else None

            assert await until(all_seeded, "5 orders in order_list") == seeded
            placed = await client.post("/commands/PlaceOrder", json=PLACE)
            assert placed.status_code == 200, placed.text
            assert placed.json()["writes"][0]["stream_id"] == "Order-o-2001"

            async def placed_shown() -> bool:
                return "o-2001" in await orders(client)

            await until(placed_shown, "the new order in order_list")

            async def parked() -> list[Any]:
                letters: list[Any] = (await client.get("/dead-letters")).json()
                return letters

            (letter,) = await until(parked, "line_shares parks the free order")
            assert letter["stream_id"] == "Order-o-1005"
            out, err, took = await interrupt(process)
        finally:
            await stop(process)
        assert process.returncode == 0, err
        assert took < 10
        assert "Traceback" not in err
        assert f"http://127.0.0.1:{port}/docs" in out
        assert "Seeded: stock for 4 products" in out
        assert "wrote eventledger.toml" in err
        assert "stopped; everything is saved" in err
        config = (cli.folder / "eventledger.toml").read_text(encoding="utf-8")
        assert 'store = "sqlite:///eventledger.db"' in config
        assert 'app = "eventledger.examples.orders.demo:application"' in config
        assert (cli.folder / "eventledger.db").exists()

        # Again, on the same file: everything is there, and nothing was seeded twice.
        process = await spawn(cli, "demo", "--port", str(port))
        try:
            await serving(process, client)
            assert await orders(client) == [*seeded, "o-2001"]
            # The commands the banner suggests work here, beside the running server
            # (eventledger.toml names the store and the application).
            streams, dead = await asyncio.gather(
                asyncio.to_thread(cli.ok, "streams", "--prefix", "Order-"),
                asyncio.to_thread(cli.ok, "dlq", "list", "--json"),
            )
            assert [r["stream"] for r in table(streams.out)] == [
                *(f"Order-{o}" for o in seeded),
                "Order-o-2001",
            ]
            assert [letter["stream_id"] for letter in json.loads(dead.out)] == ["Order-o-1005"]
            out, err, took = await interrupt(process)
        finally:
            await stop(process)
        assert process.returncode == 0, err
        assert took < 10
        assert "Serving what the store holds" in out
        assert "Seeded:" not in out
        assert "wrote eventledger.toml" not in err


async def test_the_seeded_orders_are_one_in_each_state(demo_store: str) -> None:
    async with demo_application.run(demo_store, projections=False) as service:
        streams = [s.stream_id for s in await service.store.list_streams(prefix="Order-")]
        orders = Repository(service.store, Order)
        states = {
            stream.removeprefix("Order-"): (await orders.load(stream.removeprefix("Order-"))).status
            for stream in streams
        }
    assert states == SEEDED
    assert len(set(states.values())) == len(states)  # pairwise distinct
    # Every state an order can be in (NEW is an order before its first event: none stored).
    assert set(states.values()) == set(OrderStatus) - {OrderStatus.NEW}


def run_shell(script: str, folder: Any) -> subprocess.CompletedProcess[str]:
    """`script` in bash with failglob: a word with an unquoted ? or * that matches no
    file is an error, as in zsh ("no matches found"), instead of passing as it is."""
    return subprocess.run(  # noqa: S603 - the test's own scripts
        ["bash", "-O", "failglob", "-c", script],  # noqa: S607 - the shell under test
        cwd=folder,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def json_documents(text: str) -> list[Any]:
    """The JSON documents curl printed one after another."""
    decoder = json.JSONDecoder()
    found, index = [], 0
    while index < len(text.rstrip()):
        while text[index].isspace():
            index += 1
        document, index = decoder.raw_decode(text, index)
        found.append(document)
    return found


async def test_the_banners_curl_lines_and_the_readmes_tour_run_as_printed(cli: Cli) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (tour,) = re.findall(r"^```sh\n(curl .*?)^```", readme, re.DOTALL | re.MULTILINE)
    tour = tour.replace("http://127.0.0.1:8000", base)
    live = [line for line in tour.splitlines() if "/events/live" in line]
    assert len(live) == 1
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        process = await spawn(cli, "demo", "--port", str(port))
        try:
            await serving(process, client)
            banner = []  # printed once seeding is done, before the server answers
            while not (line := (await process.stdout.readline()).decode()).startswith("Ctrl-C"):
                banner.append(line.strip())
            curls = [line for line in banner if "curl " in line]
            assert len(curls) == 4, banner
            for line in curls:
                assert re.search(rf"'{re.escape(base)}/[^' ]*'", line), f"unquoted URL: {line}"
            for line in curls:
                command = line[line.index("curl ") :].replace("curl -N ", "curl -sN --max-time 1 ")
                ran = await asyncio.to_thread(run_shell, command, cli.folder)
                assert ran.returncode in (0, 28), f"{command}: {ran.stderr}"  # 28: --max-time
                assert ran.stdout, command

            steps = "\n".join(line for line in tour.splitlines() if line not in live)
            ran = await asyncio.to_thread(run_shell, steps, cli.folder)
            assert ran.returncode == 0, ran.stderr
            shipped, placed, paid, stream = json_documents(ran.stdout)
            assert [d["order_id"] for d in shipped["items"]] == ["o-1005"]
            # The banner placed the same order with the same key: the answer is the first.
            assert (placed["value"], placed["replayed"], placed["caught_up"]) == (
                "o-2001",
                True,
                True,
            )
            assert (paid["value"], paid["caught_up"]) == ("paid", True)
            # "created, paid, shipped by the process": the payment waited for the process.
            assert [e["type"] for e in stream["items"]] == [
                "OrderCreated",
                "OrderPaid",
                "OrderShipped",
            ]
            assert stream["items"][2]["metadata"]["actor"] == "process:order_fulfilment"
            following = live[0].replace("curl -sN ", "curl -sN --max-time 1 ")
            ran = await asyncio.to_thread(run_shell, following, cli.folder)
            assert ran.returncode == 28, ran.stderr  # it kept listening until --max-time
            assert ran.stdout.startswith("retry: ")
            await interrupt(process)
        finally:
            await stop(process)
