"""Watching a running server from outside: ``eventledger top``, ``/metrics`` added up
across worker processes, and JSON log lines; the server is ``eventledger serve`` run as
a real program on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import DEMO_APP, Cli, spawn, stop
from tests.cli.test_demo import free_port, interrupt, serving


def _commands_ok(text: str, command: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "eventledger_commands_total" and sample.labels == {
                "command": command,
                "outcome": "ok",
            }:
                return sample.value
    return 0.0


async def test_top_shows_a_server_and_a_store(cli: Cli, demo_store: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await spawn(
        cli, "serve", DEMO_APP, "--store", demo_store, "--port", str(port), "--anonymous"
    )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await serving(process, client)

            done = asyncio.Event()

            async def add_stock() -> None:  # until top has looked twice
                while not done.is_set():
                    body = {"sku": "PEN", "quantity": 1}
                    assert (await client.post("/commands/AddStock", json=body)).is_success
                    await asyncio.sleep(0.05)

            adding = asyncio.ensure_future(add_stock())
            try:
                ran = await asyncio.to_thread(
                    cli.ok, "top", "--server", url, "--once", "--json", "--every", "0.5"
                )
            finally:
                done.set()
                await adding
        seen = json.loads(ran.out)
        assert seen["source"] == url
        assert seen["commands_per_second"]["ok"] > 0
        assert seen["appended_per_second"] > 0
        names = {p["name"]: p for p in seen["projections"]}
        assert set(names) == {
            "order_list", "customer_orders", "daily_sales", "order_fulfilment", "line_shares"
        }  # fmt: skip
        assert names["line_shares"]["parked"] == 1
        assert names["order_list"]["state"] in ("running", "catching_up")
        assert seen["dead_letters"] == 1
        local = json.loads(cli.ok("top", "--store", demo_store, "--once", "--json").out)
        assert local["commands_per_second"] is None  # a store does not count commands
        assert local["head_position"] >= seen["head_position"]
        assert {p["name"] for p in local["projections"]} == set(names)
        shown = cli.ok("top", "--store", demo_store, "--once").out
        assert "line_shares" in shown
        assert "dead letters 1" in shown
    finally:
        await stop(process)


async def test_two_workers_add_up_their_counts_and_log_json(cli: Cli, store_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await spawn(
        cli, "serve", DEMO_APP, "--store", store_url, "--port", str(port), "--anonymous",
        "--workers", "2", "--public-metrics", "--log-format", "json",
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await serving(process, client)
            for _ in range(20):
                # A new connection each time, so that both workers take some.
                async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
                    body = {"sku": "KITE", "quantity": 1}
                    answer = await fresh.post("/commands/AddStock", json=body)
                    assert answer.status_code == 200, answer.text
            for _ in range(6):
                async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
                    text = (await fresh.get("/metrics")).text
                assert _commands_ok(text, "AddStock") == 20
        _, err, _ = await interrupt(process)
    finally:
        await stop(process)
    lines = [line for line in err.splitlines() if line.startswith("{")]
    assert lines, err
    parsed = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(p) for p in parsed)
    access = [p for p in parsed if p["logger"] == "uvicorn.access"]
    assert any("POST /commands/AddStock" in p["message"] for p in access)
    assert "Traceback" not in err
