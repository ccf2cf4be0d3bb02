"""`eventledger serve`, and the operations that ask it (--server) instead of running the
projection in the program: the server holds the projection's lease."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.cli.conftest import DEMO_APP, Cli, cli_env, spawn, stop, table
from tests.cli.test_demo import free_port, interrupt, serving


async def test_serve_runs_the_application_and_operations_go_through_it(
    cli: Cli, demo_store: str
) -> None:
    made = json.loads(
        cli.ok("keys", "create", "user:root", "--scope", "admin", "--scope", "read",
               "--json", "--store", demo_store).out
    )  # fmt: skip
    key = made["key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = ("--server", url)

    def run(*args: str) -> str:
        return cli.ok(*args, *server, "--key", key).out.strip()

    def fails(*args: str, **env: str) -> str:
        return cli.fails(*args, *server, env=cli_env(**env))

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        process = await spawn(cli, "serve", DEMO_APP, "--store", demo_store, "--port", str(port))
        try:
            await serving(process, client)
            assert (await client.get("/streams")).status_code == 401  # keys, by default
            listed = await client.get("/streams", headers={"Authorization": f"Bearer {key}"})
            assert listed.status_code == 200

            async def lease_taken() -> bool:
                ran = await asyncio.to_thread(
                    cli.ok, "projections", "status", "--store", demo_store, "--json"
                )
                running = {p["name"]: p["running_in"] for p in json.loads(ran.out)["projections"]}
                return running["order_list"] is not None

            for _ in range(50):
                if await lease_taken():
                    break
            (letter,) = json.loads(cli.ok("dlq", "list", "--json", "--store", demo_store).out)
            letter_id = str(letter["id"])

            here, rebuilt, reset, no_key, retry = await asyncio.gather(
                asyncio.to_thread(
                    cli.fails, "projections", "rebuild", "order_list", "--store", demo_store,
                    "--app", DEMO_APP,
                ),
                asyncio.to_thread(run, "projections", "rebuild", "order_list"),
                asyncio.to_thread(run, "projections", "reset", "customer_orders"),
                asyncio.to_thread(fails, "projections", "reset", "daily_sales"),
                asyncio.to_thread(fails, "dlq", "retry", letter_id, EVENTLEDGER_KEY=key),
            )  # fmt: skip
            assert here.startswith("error: order_list is run by ")
            assert here.endswith("; stop it there, or ask it with --server"
                                 " http://<host>:<port>")  # fmt: skip
            assert rebuilt.startswith("rebuilt: generation 2 serves queries")
            assert reset == "reset customer_orders: it fills again from the first event"
            assert no_key == (
                f"error: {url} answered 401: no API key given: send 'Authorization: Bearer <key>'"
            )
            assert retry == (
                f"error: {url} answered 409: retrying dead letter {letter_id} of line_shares"
                " failed again: InvalidOperation: [<class 'decimal.DivisionUndefined'>]"
            )
            assert run("dlq", "skip", letter_id) == f"dead letter {letter_id}: skipped"
            assert table(cli.ok("dlq", "list", "--store", demo_store).out) == []
            _, err, took = await interrupt(process)
        finally:
            await stop(process)
    assert process.returncode == 0, err
    assert took < 10
    assert f"serving {DEMO_APP} on {demo_store} at {url}" in err
    assert "Traceback" not in err


def test_serve_refuses_what_it_cannot_serve_before_starting(cli: Cli) -> None:
    # (serve takes the application as an argument: it has no --app option.)
    assert cli.fails("serve", "--store", "memory://") == (
        "error: serve needs the application: eventledger serve module:object, or set"
        ' EVENTLEDGER_APP, or put app = "module:object" in eventledger.toml'
    )
    assert cli.fails("serve", "no_such_module:app", "--store", "memory://") == (
        "error: cannot import 'no_such_module' (for no_such_module:app):"
        " No module named 'no_such_module'"
    )
    assert cli.fails("dlq", "skip", "1", "--server", "http://127.0.0.1:1", "--key", "k") == (
        "error: cannot reach http://127.0.0.1:1: [Errno 111] Connection refused"
    )
