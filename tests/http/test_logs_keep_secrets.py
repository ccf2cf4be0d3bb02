"""What the server writes to its log holds no secret and no personal value: a real server
process (the `eventledger serve` app under uvicorn, JSON logs, access logs on, every
logger at debug level) goes through a session of requests, and its whole output is
searched for the key, the key's secret, the session cookie and a distinctive e-mail
address sent in command bodies; none of them may be there."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from eventledger.observability.logs import logging_config
from tests.cli.conftest import cli_env

ORDERS_APP = "eventledger.examples.orders.app:application"
EMAIL = "zelda.quux-4f7e1b@example.org"
"""A personal value no log line may carry."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _eventledger(folder: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own program
        [sys.executable, "-m", "eventledger", *args],
        cwd=folder,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


async def _wait_until_serving(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server stopped"
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("the server did not start within 60 s")


async def test_the_log_holds_no_key_secret_cookie_or_personal_value(
    server_store_url: str, tmp_path: Path
) -> None:
    store_url = server_store_url
    made = json.loads(
        _eventledger(
            tmp_path, "keys", "create", "user:ops", "--scope", "read", "--scope", "write",
            "--scope", "admin", "--store", store_url, "--json",
        )
    )  # fmt: skip
    key: str = made["key"]
    secret = key.split("_", 2)[2]
    doomed = json.loads(
        _eventledger(tmp_path, "keys", "create", "user:leaving", "--store", store_url, "--json")
    )
    _eventledger(tmp_path, "keys", "rotate", doomed["id"], "--overlap", "0s", "--store", store_url)
    wrong = f"el_{made['id']}_{'W' * 43}"  # the right id, a wrong secret

    config = tmp_path / "logging.json"
    config.write_text(json.dumps(logging_config("json", "DEBUG")), encoding="utf-8")
    log_file = tmp_path / "server.log"
    port = _free_port()
    env = cli_env(EVENTLEDGER_STORE=store_url, EVENTLEDGER_APP=ORDERS_APP)
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603, ASYNC220 - uvicorn with our own app
            [
                sys.executable, "-m", "uvicorn", "eventledger.cli._serve:make_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--log-config", str(config),
                "--log-level", "debug", "--access-log",
            ],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                await _wait_until_serving(client, process)
                cookie = await _session(client, key)
                bearer = {"Authorization": f"Bearer {key}"}
                stock = {"sku": "BOOK", "quantity": 5}
                assert (
                    await client.post("/commands/AddStock", json=stock, headers=bearer)
                ).status_code == 200
                order = {
                    "order_id": "o-1",
                    "customer_id": "zelda",
                    "lines": [{"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}],
                }
                placed = await client.post(
                    "/commands/PlaceOrder?wait=order_list", json=order, headers={"X-API-Key": key}
                )
                assert placed.status_code == 200, placed.text
                cancel = {"order_id": "o-1", "reason": f"the customer ({EMAIL}) asked"}
                cancelled = await client.post("/commands/CancelOrder", json=cancel, headers=bearer)
                assert cancelled.status_code == 200, cancelled.text
                invalid = {**order, "order_id": "o-2", "customer_id": EMAIL}
                refused = await client.post("/commands/PlaceOrder", json=invalid, headers=bearer)
                assert refused.status_code == 422
                broken = b'{"order_id": "o-3", "reason": "' + EMAIL.encode() + b'", '
                unreadable = await client.post(
                    "/commands/CancelOrder",
                    content=broken,
                    headers={**bearer, "Content-Type": "application/json"},
                )
                assert unreadable.status_code == 422
                shown = await client.get("/streams/Order-o-1", headers=bearer)
                assert EMAIL in shown.text  # the API shows it to a caller with a key
                for attempt in (
                    {"Authorization": f"Bearer {wrong}"},
                    {"X-API-Key": wrong},
                    {"Authorization": f"Bearer {doomed['key']}"},  # expired
                ):
                    assert (await client.get("/streams", headers=attempt)).status_code == 401
                login = await client.post("/admin/login", data={"key": wrong})
                assert login.status_code == 401
                assert (await client.get("/admin/streams")).status_code == 200  # the session
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    output = log_file.read_text(encoding="utf-8", errors="replace")
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    failures = [line["message"] for line in lines if line["level"] == "debug"]
    assert f"authentication failed from 127.0.0.1 (key {made['id']})" in failures, output
    assert any(
        line["logger"] == "uvicorn.access" and "/commands/PlaceOrder" in line["message"]
        for line in lines
    ), output[:2000]
    for name, value in {
        "the key": key,
        "its secret": secret,
        "a wrong key tried": wrong,
        "the wrong secret": "W" * 43,
        "the expired key": doomed["key"],
        "the session cookie": cookie,
        "the e-mail address": EMAIL,
    }.items():
        assert value not in output, f"{name} is in the log"


async def _session(client: httpx.AsyncClient, key: str) -> str:
    """Log in to the admin page; the session cookie's value."""
    answer = await client.post("/admin/login", data={"key": key, "next": "/admin"})
    assert answer.status_code == 303, answer.text
    cookie = client.cookies.get("eventledger_session")
    assert cookie
    assert (await client.get("/admin")).status_code == 200
    return cookie
