"""`eventledger demo`: serves the Orders example with sample data, stops on Ctrl-C, and
comes back with everything still there."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from typing import Any

import httpx

from tests.cli.conftest import Cli, Spawned, spawn, stop, table

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
    seeded = [f"o-100{n}" for n in range(1, 7)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        process = await spawn(cli, "demo", "--port", str(port))
        try:
            await serving(process, client)

            async def all_seeded() -> list[str] | None:
                found = await orders(client)
                return found if len(found) >= 6 else None

            assert await until(all_seeded, "6 orders in order_list") == seeded
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
            assert letter["stream_id"] == "Order-o-1006"
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
            assert [letter["stream_id"] for letter in json.loads(dead.out)] == ["Order-o-1006"]
            out, err, took = await interrupt(process)
        finally:
            await stop(process)
        assert process.returncode == 0, err
        assert took < 10
        assert "Serving what the store holds" in out
        assert "Seeded:" not in out
        assert "wrote eventledger.toml" not in err
