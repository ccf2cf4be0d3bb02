"""The command line run as a real program: `python -m eventledger ...` in a folder of
its own, against SQLite and PostgreSQL stores the tests fill with the Python API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from eventledger import Application, Command, CommandResult, NewEvent, Service, open_store
from eventledger.examples.orders.commands import AddStock, PayOrder, PlaceOrder
from eventledger.examples.orders.demo import application as demo_application
from eventledger.examples.orders.demo import seed
from eventledger.examples.orders.domain import OrderLine

ROOT = Path(__file__).resolve().parents[2]
ORDERS_APP = "eventledger.examples.orders.app:application"
DEMO_APP = "eventledger.examples.orders.demo:application"
TIMEOUT = 60
"""No single command may take longer (seconds)."""

# Settings of the developer's shell that would change what the program does or shows.
_SCRUBBED = (
    "EVENTLEDGER_STORE",
    "EVENTLEDGER_APP",
    "EVENTLEDGER_KEY",
    "FORCE_COLOR",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
    "_EVENTLEDGER_COMPLETE",
    "_TYPER_COMPLETE_ARGS",
    "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION",
    "COMP_WORDS",
    "COMP_CWORD",
)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a command: PYTHONPATH reaches this checkout, nothing of the
    developer's own eventledger settings gets in."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventledger", *args]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass(frozen=True)
class Cli:
    """Runs `eventledger` in `folder` (a fresh one, so no eventledger.toml of anyone's)."""

    folder: Path

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT
    ) -> Ran:
        done = subprocess.run(  # noqa: S603 - our own program
            command(*args),
            cwd=self.folder,
            env=env or cli_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Ran:
        ran = self(*args, env=env)
        assert ran.code == 0, str(ran)
        assert "Traceback" not in ran.err, str(ran)
        return ran

    def ok_all(self, *commands: Sequence[str]) -> list[Ran]:
        """Runs independent commands side by side (the program's start-up is most of
        their time); each must succeed."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda args: self.ok(*args), commands))

    def fails(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Runs a command that must fail cleanly; returns its one line of error."""
        ran = self(*args, env=env)
        assert ran.code != 0, str(ran)
        assert "Traceback" not in ran.err, str(ran)
        lines = ran.err.strip().splitlines()
        assert len(lines) == 1, str(ran)
        assert lines[0].startswith("error: "), str(ran)
        return lines[0]


class Spawned(asyncio.subprocess.Process):
    """A started program (its pipes are there: stdout and stderr are PIPE)."""

    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader


async def spawn(cli: Cli, *args: str) -> Spawned:
    """Start `eventledger args...` in the test's folder, for a test that talks to it
    while it runs. Always `stop` it in a finally."""
    process = await asyncio.create_subprocess_exec(
        *command(*args),
        cwd=cli.folder,
        env=cli_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return process  # type: ignore[return-value]


async def stop(process: asyncio.subprocess.Process) -> None:
    """Kill it if it still runs, and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.wait_for(process.wait(), 10)


def table(text: str) -> list[dict[str, str]]:
    """Plain (piped) output: a tab-separated header line, then rows."""
    assert "\x1b[" not in text, "styled output in a pipe"
    header, *rows = text.rstrip("\n").split("\n")
    columns = header.split("\t")
    parsed = []
    for row in rows:
        cells = row.split("\t")
        assert len(cells) == len(columns), f"{row!r} does not fit {columns}"
        parsed.append(dict(zip(columns, cells, strict=True)))
    return parsed


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    folder = tmp_path / "here"
    folder.mkdir()
    return Cli(folder)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each kind (the SQLite file is not there yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


class _Sent:
    """What `seed` sees of a service, with one difference: "the head" is at least the
    position of the last command sent. On PostgreSQL `head_position()` leaves out
    positions of appends still in flight anywhere, so right after a command it can be
    below the command's own events; waiting for it then does not wait for the process
    to act (the demo's seed then delivers an order before it was shipped)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.runner = service.runner
        self.bus = self
        self.store = self
        self.last = 0

    async def send(self, command: Command, **options: Any) -> CommandResult:
        result = await self.service.bus.send(command, **options)
        self.last = max(self.last, result.position)
        return result

    async def head_position(self) -> int:
        return max(await self.service.store.head_position(), self.last)

    def __getattr__(self, name: str) -> Any:  # the rest of the store (forget uses it)
        return getattr(self.service.store, name)


async def settle(
    application: Application, url: str, work: Sequence[Command] = (), *, demo: bool = False
) -> None:
    """Run `application` on the store, send `work` (or the demo's sample data), and stop
    once every projection and process has seen everything (so none is stopped half-way,
    holding its lease)."""
    async with application.run(url) as service:
        sent = _Sent(service)
        if demo:
            assert await seed(cast(Service, sent))
        for item in work:
            await sent.send(item, actor="test")
            await service.runner.wait_until("order_fulfilment", await sent.head_position(), 30)
        seen = -1
        while (head := await sent.head_position()) != seen:  # until nothing more comes
            for name in service.runner.names:
                await service.runner.wait_until(name, head, 30)
            seen = head


@pytest.fixture
async def demo_store(store_url: str) -> str:
    """The demo's sample data (5 orders, one event parked by line_shares), settled."""
    await settle(demo_application, store_url, demo=True)
    return store_url


def order(order_id: str, customer: str, *lines: tuple[str, int, str]) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        customer_id=customer,
        lines=[
            OrderLine(sku=sku, quantity=n, unit_price=Decimal(price)) for sku, n, price in lines
        ],
    )


def pay(order_id: str, amount: str) -> PayOrder:
    return PayOrder(order_id=order_id, amount=Decimal(amount), payment_id=f"pay-{order_id}")


def stock(sku: str, quantity: int) -> AddStock:
    return AddStock(sku=sku, quantity=quantity)


async def append_orders(url: str, count: int) -> int:
    """`count` OrderCreated events, one stream each, written fast; the head position."""
    async with await open_store(url) as store:
        for first in range(0, count, 500):
            async with store.transaction() as tx:
                for n in range(first, min(first + 500, count)):
                    data = {
                        "customer_id": f"c{n % 7}",
                        "lines": [{"sku": "PEN", "quantity": 1, "unit_price": "1.00"}],
                    }
                    await tx.append(f"Order-bulk-{n}", [NewEvent("OrderCreated", data)])
        return await store.head_position()
