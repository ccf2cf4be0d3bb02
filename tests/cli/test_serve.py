"""`eventledger serve`, and the operations that ask it (--server) instead of running the
projection in the program: the server holds the projection's lease."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.cli.conftest import DEMO_APP, ORDERS_APP, ROOT, Cli, cli_env, command, spawn, stop, table
from tests.cli.test_demo import free_port, interrupt, serving
from tests.cli.test_operate import FREE_ORDER_ERROR


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
                f"error: {url} answered 401: no API key given: pass --key KEY or set"
                " EVENTLEDGER_KEY (an admin key: eventledger keys create user:you --scope read"
                " --scope admin)"
            )
            assert retry == (
                f"error: {url} answered 409: retrying dead letter {letter_id} of line_shares"
                f" failed again: {FREE_ORDER_ERROR}"
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


def test_a_port_in_use_is_one_line_before_any_store_file_or_banner(cli: Cli) -> None:
    served = f"sqlite:///{cli.folder}/served.db"
    with socket.socket() as taken:  # a server of someone else's, on the port asked for
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with ThreadPoolExecutor(2) as pool:
            demo = pool.submit(cli, "demo", "--port", str(port), timeout=30)
            serve = pool.submit(
                cli, "serve", DEMO_APP, "--store", served, "--port", str(port), timeout=30
            )
            ran = {"demo": demo.result(), "serve": serve.result()}
    said = re.compile(
        rf"error: port {port} is in use on 127\.0\.0\.1 \(another server, or a demo already"
        r" running\?\): stop it, or pass --port (\d+)\n"
    )
    for name, result in ran.items():
        assert result.code == 1, f"{name}: {result}"
        assert result.out == "", f"{name} printed a banner: {result}"  # nothing was seeded
        found = said.fullmatch(result.err)
        assert found, f"{name}: {result}"
        assert int(found[1]) > port
    assert list(cli.folder.iterdir()) == []  # no store, no eventledger.toml


def test_a_store_that_cannot_be_opened_is_one_line_from_serve_and_demo(
    cli: Cli, postgres_url: str
) -> None:
    broken = cli.folder / "broken.db"
    broken.write_bytes(b"not a database, whatever its name says\n" * 200)
    not_sqlite = f"sqlite:///{broken}"
    refused = "postgresql://nobody@127.0.0.1:1/shop"  # nothing listens on port 1
    parts = urlsplit(postgres_url)
    no_database = urlunsplit(parts._replace(path="/eventledger_no_such_database"))
    hint = (
        "; check that the database runs and the file or URL is right, or pass another with"
        " --store URL"
    )
    port = str(free_port())
    runs = {
        (what, url): ("serve", DEMO_APP, "--store", url, "--port", port)
        if what == "serve"
        else ("demo", "--store", url, "--port", port)
        for what in ("serve", "demo")
        for url in (not_sqlite, refused, no_database)
    }
    with ThreadPoolExecutor(3) as pool:
        said = dict(zip(runs, pool.map(lambda args: cli.fails(*args), runs.values()), strict=True))
    for what in ("serve", "demo"):
        assert said[what, not_sqlite] == (
            f"error: cannot open the store (from --store): SQLite {broken}: file is not a"
            f" database{hint}"
        )
        assert said[what, refused].startswith(
            "error: cannot open the store (from --store): cannot connect to PostgreSQL at"
            " postgresql://nobody@127.0.0.1:1/shop: "
        )
        assert said[what, refused].endswith(hint)
        assert said[what, no_database].startswith("error: cannot open the store (from --store): ")
        assert 'database "eventledger_no_such_database" does not exist' in said[what, no_database]
        assert said[what, no_database].endswith(hint)
    assert [p.name for p in cli.folder.iterdir()] == ["broken.db"]  # no eventledger.toml


def test_serve_refuses_an_app_that_is_not_an_application_saying_what_it_is(cli: Cli) -> None:
    (cli.folder / "eventledger.toml").write_text('app = "json:dumps"\n', encoding="utf-8")
    expected = (
        "; name an eventledger Application as module:object (or a function without arguments"
        " that returns one), e.g. myshop.app:application"
    )
    with ThreadPoolExecutor(3) as pool:
        configured = pool.submit(cli.fails, "serve", "--store", "memory://")
        returned = pool.submit(cli.fails, "serve", "os:getcwd", "--store", "memory://")
        missing = pool.submit(cli.fails, "serve", "json:nope", "--store", "memory://")
        assert configured.result() == (
            "error: json:dumps (from eventledger.toml) is a function dumps that needs"
            f" arguments, not an Application{expected}"
        )
        assert returned.result() == (
            "error: os:getcwd (from --app) is a function that returned a str, not an"
            f" Application{expected}"
        )
        assert missing.result() == (
            f"error: json:nope (from --app): module json has no 'nope'{expected}"
        )


async def test_the_http_pages_serve_and_keys_commands_work_as_shown(cli: Cli) -> None:
    """docs/http.md starts a server with `eventledger serve`, makes two keys with
    `eventledger keys create` into shell variables, and sends one with curl."""
    page = (ROOT / "docs" / "http.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    (serve_line,) = (b.strip() for b in blocks if b.startswith("eventledger serve "))
    (keys_block,) = (b for b in blocks if "eventledger keys create" in b)
    (use_block,) = (b for b in blocks if b.startswith("export EL="))
    assert serve_line.endswith("--port 8000")
    port = free_port()
    python = " ".join(command())  # `eventledger` of this checkout
    shell = f'eventledger() {{ {python} "$@"; }}\nset -euo pipefail\n'
    script = (
        shell
        + keys_block
        + use_block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        + 'echo\ncurl -s -o /dev/null -w "%{http_code}\\n" "$EL/dead-letters"'
        ' -H "Authorization: Bearer $SHOP_KEY"\n'
    )
    args = serve_line.removeprefix("eventledger ").replace("--port 8000", f"--port {port}")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        process = await spawn(cli, *args.split())
        try:
            await serving(process, client)
            done = await asyncio.to_thread(
                subprocess.run,
                ["bash", "-c", script],
                cwd=cli.folder,
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            _, err, _ = await interrupt(process)
        finally:
            await stop(process)
    assert done.returncode == 0, done.stderr
    streams, forbidden = done.stdout.strip().split("\n")
    assert json.loads(streams)["items"] == []  # the key of $KEY reads
    assert forbidden == "403"  # the key of $SHOP_KEY has no admin scope
    assert f"serving {ORDERS_APP} on sqlite:///orders.db" in err
    assert (cli.folder / "orders.db").exists()
