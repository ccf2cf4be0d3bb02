"""`create_app(..., read_url=...)`: reads come from a streaming standby and say so; a
read owed a position waits for the standby to replay it, or falls back to the primary
and says so; commands and operations stay on the primary."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests import standby
from tests.replica.conftest import FALLBACK, READ_FROM, place, served

pytestmark = pytest.mark.postgres

Clusters = tuple[standby.Cluster, standby.Cluster]


async def test_every_read_route_is_served_by_the_replica_and_says_so(clusters: Clusters) -> None:
    async with served(*clusters) as api:
        await api.command("PlaceOrder", place("o-1"), wait="order_list")
        paid = await api.command(
            "PayOrder",
            {"order_id": "o-1", "amount": "25.00", "payment_id": "pay-1"},
            wait="daily_sales",
        )
        log = await api.read("/events", owed=paid)
        assert log.status_code == 200, log.text
        (created,) = [e for e in log.json()["items"] if e["type"] == "OrderCreated"]
        assert created["data"]["customer"]["name"] == "Alice"  # personal data opened
        reads = {
            "/events": log,
            "/streams": await api.read("/streams", owed=paid, prefix="Order-"),
            "/streams/Order-o-1": await api.read("/streams/Order-o-1", owed=paid),
            "/streams/Order-o-1/state": await api.read("/streams/Order-o-1/state", owed=paid),
            "/events/{id}": await api.read(f"/events/{created['id']}", owed=paid),
            "/events/{id}/chain": await api.read(f"/events/{created['id']}/chain", owed=paid),
            "documents": await api.read("/read-models/order_list/documents", owed=paid),
            "document": await api.read("/read-models/order_list/documents/o-1", owed=paid),
            "table": await api.read("/read-models/daily_sales/tables/daily_sales", owed=paid),
        }
        for name, response in reads.items():
            assert response.status_code == 200, (name, response.text)
            assert response.headers[READ_FROM] == "replica", name
            assert FALLBACK not in response.headers, name
        assert [s["stream_id"] for s in reads["/streams"].json()["items"]] == ["Order-o-1"]
        assert reads["/streams/Order-o-1"].json()["version"] == 2
        assert reads["/streams/Order-o-1/state"].json()["state"]["status"] == "paid"
        assert reads["document"].json()["status"] == "paid"
        assert [d["order_id"] for d in reads["documents"].json()["items"]] == ["o-1"]
        assert reads["table"].json()["items"][0]["revenue_cents"] == 2500
        # Operations and health are the primary's, and say nothing of replicas.
        projections = await api.read("/projections")
        assert projections.status_code == 200
        assert READ_FROM not in projections.headers
        ready = await api.read("/readyz")
        assert ready.status_code == 200
        replica = ready.json()["replica"]
        assert replica["state"] == "up"
        assert replica["head_position"] == paid
        assert replica["behind_events"] == 0
        assert replica["url"] == f"postgresql://postgres@127.0.0.1:{clusters[1].port}/postgres"
        refused = await api.client.get("/events", headers={"Eventledger-Min-Position": "-1"})
        assert refused.status_code == 400
        assert "Eventledger-Min-Position is a position" in refused.json()["detail"]


async def test_a_read_owed_a_position_sees_the_write_from_the_replica_or_the_primary(
    clusters: Clusters,
) -> None:
    async with served(*clusters) as api:
        for n in range(20):
            position = await api.command("PlaceOrder", place(f"o-{n}"))
            read = await api.read(f"/streams/Order-o-{n}", owed=position)
            assert read.status_code == 200, read.text  # the write is there, wherever from
            assert read.json()["items"][0]["position"] == position
            if read.headers[READ_FROM] == "primary":
                assert read.headers[FALLBACK] == "behind"
            else:
                assert FALLBACK not in read.headers


async def test_a_paused_replica_is_read_until_a_read_is_owed_more_then_the_primary_answers(
    clusters: Clusters,
) -> None:
    async with served(*clusters, replica_wait="0.5") as api:
        before = await api.command("PlaceOrder", place("o-1"), wait="order_list")
        assert (await api.read("/events", owed=before)).headers[READ_FROM] == "replica"
        await api.on_standby("SELECT pg_wal_replay_pause()")
        try:
            owed = await api.command("PlaceOrder", place("o-2"), wait="order_list")
            # Not owed anything: the replica answers, as far as it has replayed.
            stale = await api.read("/streams/Order-o-2")
            assert stale.status_code == 404
            assert stale.headers[READ_FROM] == "replica"
            stale_doc = await api.read("/read-models/order_list/documents/o-2")
            assert stale_doc.status_code == 404
            assert stale_doc.headers[READ_FROM] == "replica"
            # Owed the write: the replica does not reach it in time, the primary answers.
            started = time.monotonic()
            fresh = await api.read("/streams/Order-o-2", owed=owed)
            waited = time.monotonic() - started
            assert fresh.status_code == 200
            assert (fresh.headers[READ_FROM], fresh.headers[FALLBACK]) == ("primary", "behind")
            assert 0.5 <= waited < 5
            doc = await api.read("/read-models/order_list/documents/o-2", owed=owed)
            assert doc.status_code == 200
            assert (doc.headers[READ_FROM], doc.headers[FALLBACK]) == ("primary", "behind")
            # Owed less than it has: the replica answers at once.
            older = await api.read("/streams/Order-o-1", owed=before)
            assert older.headers[READ_FROM] == "replica"
            lag = (await api.read("/readyz")).json()["replica"]
            assert lag["state"] == "up"
            assert lag["head_position"] == before
            assert lag["behind_events"] >= 1
            assert lag["lag_seconds"] > 0
        finally:
            await api.on_standby("SELECT pg_wal_replay_resume()")
        # Replaying again: a read owed the write waits for it on the replica.
        resumed = await api.read("/read-models/order_list/documents/o-2", owed=owed)
        assert resumed.status_code == 200
        assert resumed.headers[READ_FROM] == "replica"
        assert resumed.json()["order_id"] == "o-2"


async def test_a_read_waits_for_the_replica_to_replay_a_write_it_is_owed(
    clusters: Clusters,
) -> None:
    async with served(*clusters, replica_wait="10") as api:
        await api.on_standby("SELECT pg_wal_replay_pause()")
        try:
            owed = await api.command("PlaceOrder", place("o-1"), wait="order_list")
            read = asyncio.ensure_future(
                api.read("/read-models/order_list/documents/o-1", owed=owed)
            )
            await asyncio.sleep(0.5)
            assert not read.done()  # waiting for the replica
        finally:
            await api.on_standby("SELECT pg_wal_replay_resume()")
        answer = await asyncio.wait_for(read, 10)
        assert answer.status_code == 200
        assert answer.headers[READ_FROM] == "replica"
        assert FALLBACK not in answer.headers
