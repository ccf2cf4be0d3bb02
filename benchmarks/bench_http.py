"""Commands through HTTP beside the same commands in-process; the SSE feed's delivery latency.

Run: python -m benchmarks.bench_http [--quick] [--commands N] [--repeats N] [--shared-client]

The service is the Orders command handlers with no projections, so what is
measured is the command path alone. Its HTTP server (uvicorn, the app of
``create_app(..., allow_anonymous=True)``) runs in a process of its own, the
load generator in this one: on a 2-core machine, a core each.

- **commands**: N ``PlaceOrder`` commands (a new order each, so no version
  conflicts), 16 concurrent clients. Over HTTP: 16 asyncio tasks, each with an
  ``httpx.AsyncClient`` of its own (a keep-alive HTTP/1.1 connection on
  loopback), each ``POST /commands/PlaceOrder``; with ``--shared-client`` they
  share one client with a pool of 16 connections, which costs the load
  generator about three times the CPU per request (httpx's pool), enough to
  make it the bottleneck. In-process: 16 asyncio tasks calling
  ``service.bus.send`` on a fresh store of the same backend. Commands/s, and
  each command's latency (p50, p99). Every run has a fresh store and starts
  after a warm-up of 32 commands, not counted. The CPU time of the server
  process and of this one is printed under the table: it tells which side
  bounds the rate.
- **commands, wrk**: the same commands from ``wrk`` (Debian's package; C, one thread,
  16 keep-alive connections, a Lua script that makes each body) for 10 s after a 2 s
  warm-up, against one server process and against ``--workers 2``. wrk costs about
  0.02 ms of CPU per command, so the server has the machine's other core; the httpx
  clients cost about as much CPU as the server. Skipped, with a note, when wrk is not
  installed.
- **SSE delivery**: ``GET /events/live`` open, then events appended one at a
  time (``POST /commands/AddStock``, ~10 ms apart); the latency of each is the
  time from the command's HTTP response returning to the event arriving on the
  feed. A second row appends from another process (this one, through its own
  store on the same log), which the server learns of from the backend
  (PostgreSQL: LISTEN/NOTIFY) or its bounded poll.

SQLite is a file in a temporary folder; PostgreSQL a fresh schema per run
(EVENTLEDGER_BENCH_DATABASE_URL, else EVENTLEDGER_TEST_DATABASE_URL, else a
throwaway pgserver), dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx

from benchmarks.bench_store import postgres_url
from eventledger import Application
from eventledger.examples.orders.commands import AddStock, PlaceOrder, handlers
from eventledger.examples.orders.domain import Order, OrderLine
from eventledger.examples.orders.stock import StockItem
from eventledger.stores.postgres import split_url

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 16
WARMUP = 32
SSE_SPACING = 0.01


@dataclass
class Sizes:
    commands: int
    sse_events: int
    repeats: int
    wrk_seconds: int


FULL = Sizes(commands=2000, sse_events=200, repeats=3, wrk_seconds=10)
QUICK = Sizes(commands=200, sse_events=50, repeats=1, wrk_seconds=2)


def make_application() -> Application:
    return Application("bench", commands=handlers, aggregates=[Order, StockItem])


# --- the server (a process of its own) ------------------------------------------------


def server_app() -> Any:
    """The app the benchmark serves, on the store of ``$BENCH_HTTP_STORE``."""
    from eventledger.http.app import create_app

    # allow_anonymous warns at start; the benchmark knows.
    logging.getLogger("eventledger.http").setLevel(logging.ERROR)
    # Every client is 127.0.0.1: without this, the address's rate limit is what is measured.
    store_url = os.environ["BENCH_HTTP_STORE"]
    return create_app(make_application(), store_url, allow_anonymous=True, rate_limits=None)


def serve(store_url: str, port: int, workers: int = 1) -> None:
    """`python -m benchmarks.bench_http --serve URL --port N [--workers W]`: what the
    benchmark starts (uvicorn with uvloop and httptools, as `eventledger serve` runs)."""
    import uvicorn

    os.environ["BENCH_HTTP_STORE"] = store_url
    uvicorn.run(
        "benchmarks.bench_http:server_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its live children, such as uvicorn's
    worker processes (Linux /proc)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is counted in user already
    return total - idle, total


class Server:
    """The HTTP server on `store_url`, in a subprocess, answering at `base_url`."""

    def __init__(self, store_url: str, log: IO[bytes], workers: int = 1) -> None:
        self.store_url = store_url
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> Server:
        command = [sys.executable, "-m", "benchmarks.bench_http", "--serve", self.store_url]
        self.process = await asyncio.create_subprocess_exec(
            *command,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
        )
        try:
            await self._wait_until_up(self.process, 60)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _wait_until_up(self, process: asyncio.subprocess.Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the server exited with {process.returncode}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer /healthz within {timeout} s")
                await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()
            print(f"(the server {process.pid} did not stop in 15 s; killed)", flush=True)


# --- stores ---------------------------------------------------------------------------


class Stores:
    """Fresh stores of one backend: a new SQLite file or a new PostgreSQL schema each."""

    def __init__(self, backend: str, base: str) -> None:
        self.backend = backend
        self.base = base  # a folder for SQLite, a URL for PostgreSQL

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        name = f"bench_http_{uuid.uuid4().hex[:10]}"
        if self.backend == "SQLite":
            yield f"sqlite:///{self.base}/{name}.db"
            return
        separator = "&" if "?" in self.base else "?"
        try:
            yield f"{self.base}{separator}schema={name}"
        except BaseException:
            with suppress(Exception):  # keep the first error, not the clean-up's
                await self._drop(name)
            raise
        await self._drop(name)

    async def _drop(self, schema: str) -> None:
        admin = await asyncpg.connect(split_url(self.base)[0])
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await admin.close()


# --- commands -------------------------------------------------------------------------


@dataclass
class Run:
    rate: float
    p50: float
    p99: float
    commands: int = 0
    elapsed: float = 0.0
    server_cpu: float | None = None  # CPU seconds over the run
    client_cpu: float | None = None
    machine_busy: float | None = None  # of all cores


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


Send = Callable[[int, int], Awaitable[None]]  # (client, n): the n-th command, by that client


async def drive(send: Send, total: int) -> Run:
    """`total` sends by CLIENTS concurrent tasks; failures are counted, then raised."""
    latencies: list[float] = []
    failures: list[str] = []
    taken = 0

    async def client(index: int) -> None:
        nonlocal taken
        while taken < total:
            n = taken
            taken += 1
            start = time.perf_counter()
            try:
                await send(index, n)
            except Exception as error:
                failures.append(f"{type(error).__name__}: {error}"[:300])
                continue
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} of {total} commands failed; first: {failures[0]}")
    return Run(
        total / elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        total,
        elapsed,
    )


async def measured(send: Send, total: int, server: Server | None) -> Run:
    """`total` commands, with the CPU each process spent on them."""
    server_cpu = process_cpu_seconds(server.pid) if server else 0.0
    client_cpu = time.process_time()
    busy, ticks = machine_ticks()
    run = await drive(send, total)
    if server:
        run.server_cpu = process_cpu_seconds(server.pid) - server_cpu
    run.client_cpu = time.process_time() - client_cpu
    busy_after, ticks_after = machine_ticks()
    run.machine_busy = (busy_after - busy) / max(1, ticks_after - ticks)
    return run


def order_json(order_id: str, n: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": f"c-{n % 100}",
        "lines": [{"sku": f"A{n % 10}", "quantity": 2, "unit_price": "9.99"}],
    }


async def http_commands(server: Server, total: int, shared_client: bool) -> Run:
    """Each of the CLIENTS tasks with an httpx client (one keep-alive connection) of its
    own, or (`shared_client`) all sharing one client with a pool of CLIENTS connections."""
    count = 1 if shared_client else CLIENTS
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60)
            )
            for _ in range(count)
        ]
        prefix = "warm"

        async def send(index: int, n: int) -> None:
            response = await clients[index % count].post(
                "/commands/PlaceOrder", json=order_json(f"{prefix}-{n}", n)
            )
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text}")

        await drive(send, WARMUP)
        prefix = "o"
        return await measured(send, total, server)


WRK_SCRIPT = """
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  prefix = args[1]
  n = 0
end
function request()
  n = n + 1
  local body = string.format(
    '{"order_id":"%s-%d-%d","customer_id":"c-%d","lines":[{"sku":"A%d","quantity":2,'
    .. '"unit_price":"9.99"}]}', prefix, tid, n, n % 100, n % 10)
  return wrk.format("POST", "/commands/PlaceOrder", {["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


async def wrk_commands(server: Server, seconds: int) -> Run:
    """`wrk` (C, one thread, CLIENTS keep-alive connections) posting PlaceOrder for
    `seconds`, after a 2-second warm-up: a load generator that costs little CPU, so the
    server has the machine's other core."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        await _wrk(server, script.name, 2, f"warm{uuid.uuid4().hex[:6]}")
        server_cpu = process_cpu_seconds(server.pid)
        busy, ticks = machine_ticks()
        run, client_cpu = await _wrk(server, script.name, seconds, f"o{uuid.uuid4().hex[:6]}")
        run.server_cpu = process_cpu_seconds(server.pid) - server_cpu
        run.client_cpu = client_cpu
        busy_after, ticks_after = machine_ticks()
        run.machine_busy = (busy_after - busy) / max(1, ticks_after - ticks)
        return run
    finally:
        os.unlink(script.name)


async def _wrk(server: Server, script: str, seconds: int, prefix: str) -> tuple[Run, float]:
    before = os.times()
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{CLIENTS}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        script,
        server.base_url,
        "--",
        prefix,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    after = os.times()
    client_cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    text = output.decode(errors="replace")
    result = [line for line in text.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not result:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text}")
    requests, micros, p50, p99, bad_status, socket_errors = map(int, result[0].split()[1:])
    if bad_status or socket_errors:
        raise RuntimeError(f"wrk: {bad_status} non-2xx answers, {socket_errors} socket errors")
    elapsed = micros / 1e6
    return Run(requests / elapsed, p50 / 1000, p99 / 1000, requests, elapsed), client_cpu


async def in_process_commands(store_url: str, total: int) -> Run:
    async with make_application().run(store_url) as service:
        bus = service.bus
        prefix = "warm"

        async def send(index: int, n: int) -> None:
            line = OrderLine(sku=f"A{n % 10}", quantity=2, unit_price=Decimal("9.99"))
            command = PlaceOrder(order_id=f"{prefix}-{n}", customer_id=f"c-{n % 100}", lines=[line])
            await bus.send(command)

        await drive(send, WARMUP)
        prefix = "o"
        return await measured(send, total, None)


def median_run(runs: list[Run]) -> Run:
    """Medians of the rates and latencies; sums of the counts, times and CPU seconds."""

    def total(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) if present else None

    return Run(
        statistics.median(r.rate for r in runs),
        statistics.median(r.p50 for r in runs),
        statistics.median(r.p99 for r in runs),
        sum(r.commands for r in runs),
        sum(r.elapsed for r in runs),
        total([r.server_cpu for r in runs]),
        total([r.client_cpu for r in runs]),
        statistics.median(r.machine_busy or 0.0 for r in runs),
    )


# --- SSE ------------------------------------------------------------------------------


@dataclass
class Delivery:
    p50: float
    p99: float
    max: float
    p50_from_send: float
    negative: int  # events that arrived before their command's response returned


@dataclass
class Feed:
    """An open GET /events/live, its events' arrival times by position."""

    arrived: dict[int, float] = field(default_factory=dict)
    grew: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, response: httpx.Response) -> None:
        position: int | None = None
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                position = int(line[3:].strip())
            elif line == "" and position is not None:
                self.arrived[position] = time.perf_counter()
                position = None
                self.grew.set()

    async def wait_for(self, positions: set[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not positions <= self.arrived.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                missing = len(positions - self.arrived.keys())
                raise RuntimeError(f"{missing} of {len(positions)} events never reached the feed")
            self.grew.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.grew.wait(), left)


Append = Callable[[int], Awaitable[int]]  # the n-th append: its event's position


async def sse_delivery(server: Server, events: int, append: Append, timeout: float) -> Delivery:
    async with (
        # No read timeout: the feed is quiet between events (up to its 15 s keepalive).
        httpx.AsyncClient(base_url=server.base_url, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", "/events/live") as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"GET /events/live: HTTP {response.status_code}")
        # The feed's starting position (the head) is fixed before the headers are sent.
        feed = Feed()
        reader = asyncio.create_task(feed.read(response))
        try:
            sent: list[tuple[int, float, float]] = []
            for n in range(events):
                started = time.perf_counter()
                position = await append(n)
                sent.append((position, started, time.perf_counter()))
                await asyncio.sleep(SSE_SPACING)
            await feed.wait_for({position for position, _, _ in sent}, timeout)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    latencies = [(feed.arrived[p] - done) * 1000 for p, _, done in sent]
    from_send = [(feed.arrived[p] - started) * 1000 for p, started, _ in sent]
    return Delivery(
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies),
        percentile(from_send, 50),
        sum(1 for v in latencies if v < 0),
    )


async def sse_through_http(server: Server, events: int) -> Delivery:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:

        async def append(n: int) -> int:
            response = await client.post(
                "/commands/AddStock", json={"sku": f"h-{n}", "quantity": 1}
            )
            if response.status_code != 200:
                raise RuntimeError(f"AddStock: HTTP {response.status_code}: {response.text}")
            position: int = response.json()["position"]
            return position

        return await sse_delivery(server, events, append, timeout=30)


async def sse_from_another_process(server: Server, events: int) -> Delivery:
    async with make_application().run(server.store_url, projections=False) as service:

        async def append(n: int) -> int:
            result = await service.bus.send(AddStock(sku=f"p-{n}", quantity=1))
            return result.position

        # Beyond the feed's keepalive (15 s), its bounded poll.
        return await sse_delivery(server, events, append, timeout=40)


# --- running --------------------------------------------------------------------------

HEADER = (
    "| workload | store | eventledger HTTP cmd/s | p50 ms | p99 ms | in-process cmd/s"
    " | p50 ms | p99 ms | HTTP/in-process throughput |\n"
    "|---|---|---|---|---|---|---|---|---|"
)
SSE_HEADER = (
    "| appended by | store | events | p50 ms | p99 ms | max ms | p50 ms from request sent"
    " | arrived before the response |\n"
    "|---|---|---|---|---|---|---|---|"
)


def ms(value: float) -> str:
    return f"{value:,.1f}"


def cpu(run: Run, seconds: float | None) -> str:
    """CPU as a share of one core over the runs, and per command."""
    if seconds is None or not run.commands:
        return "?"
    return (
        f"{seconds / run.elapsed * 100:.0f}% of a core"
        f" ({seconds / run.commands * 1000:.2f} ms CPU per command)"
    )


async def measure_commands(
    stores: Stores, sizes: Sizes, shared_client: bool, log: IO[bytes], notes: list[str]
) -> None:
    http_runs: list[Run] = []
    local_runs: list[Run] = []
    for _ in range(sizes.repeats):
        async with stores.fresh() as url, Server(url, log) as server:
            http_runs.append(await http_commands(server, sizes.commands, shared_client))
        async with stores.fresh() as url:
            local_runs.append(await in_process_commands(url, sizes.commands))
    http, local = median_run(http_runs), median_run(local_runs)
    print(
        f"| PlaceOrder, {CLIENTS} httpx clients ({sizes.commands:,} commands) | {stores.backend}"
        f" | {http.rate:,.0f} | {ms(http.p50)} | {ms(http.p99)} | {local.rate:,.0f}"
        f" | {ms(local.p50)} | {ms(local.p99)} | {http.rate / local.rate:.2f} |",
        flush=True,
    )
    if shutil.which("wrk") is None:
        notes.append("wrk is not installed (apt-get install wrk): no wrk rows.")
    else:
        for workers in (1, 2):
            runs = []
            for _ in range(sizes.repeats):
                async with stores.fresh() as url, Server(url, log, workers) as server:
                    runs.append(await wrk_commands(server, sizes.wrk_seconds))
            run = median_run(runs)
            label = f"PlaceOrder, wrk {CLIENTS} connections ({sizes.wrk_seconds} s)"
            if workers > 1:
                label += f", --workers {workers}"
            print(
                f"| {label} | {stores.backend} | {run.rate:,.0f} | {ms(run.p50)} | {ms(run.p99)}"
                f" | {local.rate:,.0f} | {ms(local.p50)} | {ms(local.p99)}"
                f" | {run.rate / local.rate:.2f} |",
                flush=True,
            )
            notes.append(
                f"{stores.backend}, wrk, {workers} worker{'s' if workers > 1 else ''}:"
                f" server {cpu(run, run.server_cpu)}, wrk {cpu(run, run.client_cpu)},"
                f" machine {(run.machine_busy or 0) * 100:.0f}% busy. Each run's cmd/s: "
                + ", ".join(f"{r.rate:,.0f}" for r in runs)
                + "."
            )
    notes.append(
        f"{stores.backend}, HTTP: server process {cpu(http, http.server_cpu)}, load generator"
        f" {cpu(http, http.client_cpu)}, machine {(http.machine_busy or 0) * 100:.0f}% busy."
        f" In-process: {cpu(local, local.client_cpu)}, machine"
        f" {(local.machine_busy or 0) * 100:.0f}% busy. Each run's cmd/s: HTTP "
        + ", ".join(f"{r.rate:,.0f}" for r in http_runs)
        + "; in-process "
        + ", ".join(f"{r.rate:,.0f}" for r in local_runs)
        + "."
    )


async def measure_sse(stores: Stores, events: int, log: IO[bytes]) -> list[str]:
    rows = []
    for label, how in (
        ("HTTP command (server process)", sse_through_http),
        ("another process", sse_from_another_process),
    ):
        async with stores.fresh() as url, Server(url, log) as server:
            d = await how(server, events)
        rows.append(
            f"| {label} | {stores.backend} | {events:,} | {ms(d.p50)} | {ms(d.p99)} | {ms(d.max)}"
            f" | {ms(d.p50_from_send)} | {d.negative} |"
        )
    return rows


async def measure(
    sizes: Sizes, shared_client: bool, backends: list[Stores], log: IO[bytes]
) -> None:
    # Rows are printed as soon as they are measured: a run that fails late keeps them.
    notes: list[str] = []
    print(HEADER, flush=True)
    for stores in backends:
        await measure_commands(stores, sizes, shared_client, log, notes)
    print()
    print(
        f"Rates are medians of {sizes.repeats} run{'s' if sizes.repeats > 1 else ''} each"
        f" side (each with a fresh store and {WARMUP} warm-up commands first); a latency is"
        " one command, request to response (in-process: the bus.send call). HTTP clients:"
        f" {'one shared httpx client' if shared_client else 'an httpx client each'}.",
        flush=True,
    )
    for note in notes:
        print(f"- {note}", flush=True)
    print()
    print(SSE_HEADER, flush=True)
    for stores in backends:
        for row in await measure_sse(stores, sizes.sse_events, log):
            print(row, flush=True)
    print()
    print(
        "SSE latency: from the append's command returning (the HTTP response of"
        " POST /commands/AddStock, or bus.send in another process) to the event's"
        f" arrival on GET /events/live; appends {SSE_SPACING * 1000:.0f} ms apart,"
        ' one at a time. "from request sent" counts the command too.',
        flush=True,
    )


async def main(sizes: Sizes, shared_client: bool) -> None:
    with (
        tempfile.TemporaryFile(prefix="el-bench-http-") as log,
        tempfile.TemporaryDirectory(prefix="el-bench-http-") as folder,
        postgres_url() as postgres,
    ):
        try:
            backends = [Stores("SQLite", folder), Stores("PostgreSQL", postgres)]
            await measure(sizes, shared_client, backends, log)
        except BaseException:
            log.seek(0)
            tail = log.read()[-4000:].decode(errors="replace")
            if tail:
                print(f"--- server output (last 4,000 bytes) ---\n{tail}", file=sys.stderr)
            raise


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--commands", type=int, help="commands per run (2,000; quick 200)")
    parser.add_argument("--repeats", type=int, help="runs per side (median; 3, quick 1)")
    parser.add_argument(
        "--shared-client",
        action="store_true",
        help="the 16 clients share one httpx client (its pool costs more CPU per request)",
    )
    parser.add_argument("--serve", metavar="STORE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.port, options.workers)
    else:
        chosen = QUICK if options.quick else FULL
        if options.commands is not None:
            chosen.commands = options.commands
        if options.repeats is not None:
            chosen.repeats = options.repeats
        asyncio.run(main(chosen, options.shared_client))
