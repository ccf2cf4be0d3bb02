"""The standby goes down and comes back: reads fall back to the primary (never an
error), say so, and status shows it; then reads return to the standby."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from tests import standby
from tests.replica.conftest import FALLBACK, READ_FROM, Served, place, served

pytestmark = pytest.mark.postgres

Clusters = tuple[standby.Cluster, standby.Cluster]
READS = (
    "/events",
    "/streams",
    "/streams/Order-o-1",
    "/streams/Order-o-1/state",
    "/read-models/order_list/documents",
    "/read-models/order_list/documents/o-1",
    "/read-models/daily_sales/tables/daily_sales",
)


@pytest.fixture
def clusters() -> Iterator[Clusters]:
    """A pair of this test's own: it stops the standby."""
    with standby.primary_and_standby() as pair:
        yield pair


async def until_read_from(api: Served, source: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await api.read("/events")).headers[READ_FROM] != source:
        assert loop.time() < deadline, f"reads never came from the {source}"
        await asyncio.sleep(0.1)


async def replica_reads(api: Served) -> dict[tuple[str, str], float]:
    """eventledger_replica_reads_total by (source, reason), from /metrics."""
    text = (await api.read("/metrics")).text
    found = re.findall(
        r'^eventledger_replica_reads_total\{reason="(\w+)",source="(\w+)"\} (\S+)$', text, re.M
    )
    return {(source, reason): float(count) for reason, source, count in found}


async def test_reads_fall_back_to_the_primary_while_the_replica_is_down_and_return(
    clusters: Clusters,
) -> None:
    async with served(*clusters) as api:
        await api.command("PlaceOrder", place("o-1"), wait="order_list")
        assert (await api.read("/events")).headers[READ_FROM] == "replica"
        await asyncio.to_thread(api.replica.stop)
        for _ in range(3):
            for path in READS:
                response = await api.read(path)
                assert response.status_code == 200, (path, response.text)
                assert response.headers[READ_FROM] == "primary", path
                assert response.headers[FALLBACK] in ("failed", "down"), path
        owed = await api.command("PlaceOrder", place("o-2"), wait="order_list")
        fresh = await api.read("/read-models/order_list/documents/o-2", owed=owed)
        assert fresh.status_code == 200
        assert (fresh.headers[READ_FROM], fresh.headers[FALLBACK]) == ("primary", "down")
        ready = await api.read("/readyz")
        assert ready.status_code == 200  # the primary serves: still ready
        down = ready.json()["replica"]
        assert down["state"] == "down"
        assert down["head_position"] is None
        assert down["error"]
        counted = await replica_reads(api)
        assert counted[("replica", "ok")] >= 1
        assert counted[("primary", "down")] + counted.get(("primary", "failed"), 0) >= 21

        await asyncio.to_thread(api.replica.start)
        await until_read_from(api, "replica")
        for path in READS:
            response = await api.read(path, owed=owed)
            assert response.status_code == 200, (path, response.text)
            assert response.headers[READ_FROM] == "replica", path
        up = (await api.read("/readyz")).json()["replica"]
        assert up["state"] == "up"
        assert up["head_position"] >= owed
        assert up["error"] is None


async def test_a_server_started_while_the_replica_is_down_reads_from_the_primary_until_it_answers(
    clusters: Clusters,
) -> None:
    async with served(*clusters, replica_down=True) as api:
        owed = await api.command("PlaceOrder", place("o-1"), wait="order_list")
        response = await api.read("/read-models/order_list/documents/o-1", owed=owed)
        assert response.status_code == 200
        assert (response.headers[READ_FROM], response.headers[FALLBACK]) == ("primary", "down")
        assert (await api.read("/readyz")).json()["replica"]["state"] == "down"
        await asyncio.to_thread(api.replica.start)
        await until_read_from(api, "replica")
        response = await api.read("/read-models/order_list/documents/o-1", owed=owed)
        assert response.headers[READ_FROM] == "replica"
        assert response.json()["order_id"] == "o-1"
