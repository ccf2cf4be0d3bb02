"""PostgreSQL restarts under HTTP load: callers get successes or 503 with Retry-After,
never a 500, and their keep-alive connection survives."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eventledger.http import create_app
from tests.http.conftest import orders_application, serve
from tests.postgres_urls import with_settings

pytestmark = pytest.mark.postgres

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
    from pgserver.postgres_server import PostgresServer, get_server


@pytest.fixture
def restartable() -> Iterator[tuple[Path, list[PostgresServer]]]:
    """A throwaway cluster of our own, so that stopping it touches nobody else."""
    with tempfile.TemporaryDirectory(prefix="el-outage-") as folder:
        pgdata = Path(folder) / "pg"
        servers = [get_server(pgdata, cleanup_mode="stop")]
        try:
            yield pgdata, servers
        finally:
            servers[-1].cleanup()


async def test_a_postgres_restart_gives_only_503s_and_successes_on_one_connection(
    restartable: tuple[Path, list[PostgresServer]],
) -> None:
    pgdata, servers = restartable
    url = with_settings(servers[0].get_uri(), schema=f"outage_{uuid.uuid4().hex[:8]}")
    app = create_app(orders_application(), url, allow_anonymous=True)
    statuses: Counter[int] = Counter()
    retry_after: set[str | None] = set()
    closing: list[str] = []
    outage_over = asyncio.Event()
    recovered = asyncio.Event()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with (
        serve(app) as base,
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client,
    ):

        async def load() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90  # bounded: the test ends whatever happens
            n = 0
            while loop.time() < deadline:
                n += 1
                for response in (
                    await client.post("/commands/AddStock", json={"sku": "BOOK", "quantity": 1}),
                    await client.get("/events", params={"limit": 5}),
                ):
                    statuses[response.status_code] += 1
                    if response.status_code == 503:
                        retry_after.add(response.headers.get("retry-after"))
                    if response.headers.get("connection", "").lower() == "close":
                        closing.append(f"{response.status_code} {response.text[:200]}")
                    if outage_over.is_set() and response.status_code == 200:
                        recovered.set()
                if recovered.is_set() and n % 20 == 0:
                    return
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(load())
        while statuses[200] < 20:  # some successes first
            assert not task.done(), task
            await asyncio.sleep(0.05)
        await asyncio.to_thread(servers[0].cleanup)  # stop: every connection is cut
        while statuses[503] < 5:
            assert not task.done(), task
            await asyncio.sleep(0.05)
        servers.append(await asyncio.to_thread(get_server, pgdata, cleanup_mode="stop"))
        outage_over.set()
        await asyncio.wait_for(task, 120)
    assert recovered.is_set()
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] >= 5
    assert retry_after == {"1"}
    assert closing == []
