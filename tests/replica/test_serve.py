"""`eventledger serve --read-url`: the option reaches every server process, and a read
URL that is not a standby's is one line before anything starts."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from eventledger import open_store
from tests import standby
from tests.cli.conftest import ORDERS_APP, Cli, spawn, stop
from tests.cli.test_demo import free_port, interrupt, serving
from tests.postgres_urls import with_settings
from tests.replica.conftest import FALLBACK, MIN_POSITION, READ_FROM, place, replayed

pytestmark = pytest.mark.postgres


async def test_serve_with_a_read_url_reads_from_the_standby(
    clusters: tuple[standby.Cluster, standby.Cluster], tmp_path: Path
) -> None:
    primary, replica = clusters
    schema = f"serve_{uuid.uuid4().hex[:8]}"
    store_url = with_settings(primary.url, schema=schema)
    await (await open_store(store_url)).close()
    await replayed(with_settings(replica.url, schema=schema))
    cli = Cli(tmp_path)
    port = free_port()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        process = await spawn(
            cli, "serve", ORDERS_APP, "--store", store_url, "--read-url", replica.url,
            "--anonymous", "--workers", "2", "--port", str(port),
        )  # fmt: skip
        try:
            await serving(process, client)
            placed = await client.post("/commands/PlaceOrder?wait=order_list", json=place("o-1"))
            assert placed.status_code == 200, placed.text
            owed = str(placed.json()["position"])
            for _ in range(4):  # whichever worker answers
                doc = await client.get(
                    "/read-models/order_list/documents/o-1", headers={MIN_POSITION: owed}
                )
                assert doc.status_code == 200, doc.text
                assert doc.headers[READ_FROM] == "replica"
                assert FALLBACK not in doc.headers
            _, err, _ = await interrupt(process)
        finally:
            await stop(process)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_serve_refuses_a_read_url_that_is_not_a_standby_s_before_starting(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path)
    store = f"sqlite:///{tmp_path}/events.db"
    assert cli.fails("serve", ORDERS_APP, "--store", store, "--read-url", "sqlite:///x.db") == (
        "error: a read URL is a PostgreSQL standby's (postgresql://user@host/database),"
        " not 'sqlite:///x.db'"
    )
    refused = cli.fails(
        "serve", ORDERS_APP, "--store", store, "--read-url",
        "postgresql://db-standby/shop?replica_wait=soon",
    )  # fmt: skip
    assert refused == "error: replica_wait is a number of seconds (0 to 3600), not 'soon'"
    assert not (tmp_path / "events.db").exists()
