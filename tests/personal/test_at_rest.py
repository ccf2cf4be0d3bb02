"""After forget and the documented clean-up, the database files hold no personal value
of the subject in plaintext (the SQLite file and its log; PostgreSQL's table files),
while another subject's values are still there to be found (so the search can see
plaintext at all); and a rebuild after forget holds only markers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import asyncpg
import pytest

from eventledger import EventStore, Snapshot, open_store
from eventledger.events import Event, EventRegistry
from eventledger.personal import Personal, Redacted, forget, scrub
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
from eventledger.records import RecordedEvent

pytestmark = pytest.mark.postgres

kit = EventRegistry()
ANN = "ann-1f9c3e-plaintext@example.com"
BOB = "bob-77d0aa-plaintext@example.com"


class Joined(Event, registry=kit):
    customer_id: str
    email: Annotated[str | Redacted, Personal(subject="customer_id")]


class Profiles(DocumentProjection):
    """Copies each customer's email, and drops the profile of a forgotten one."""

    name = "profiles"
    categories = ("Customer", "Subject")
    forgets: ClassVar[bool] = True

    @on("Joined")
    async def joined(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        await context.docs.put(event.data["customer_id"], {"email": event.data["email"]})

    @on("SubjectForgotten")
    async def forgotten(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        if type(self).forgets:
            await context.docs.delete(event.data["subject"])


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/at-rest.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


async def files_of(store: EventStore, store_url: str) -> bytes:
    """Every byte of the store's database files."""
    if store_url.startswith("sqlite"):
        path = Path(store_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    rows = await store.fetch(
        "SELECT current_setting('data_directory'), pg_relation_filepath(c.oid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 't', 'i')"
        " AND pg_relation_filepath(c.oid) IS NOT NULL",
        store.schema,  # type: ignore[attr-defined]
    )
    assert rows, "the schema has tables"
    found = b""
    for data_directory, relative in rows:
        first = Path(data_directory) / relative
        for part in [first, *sorted(first.parent.glob(first.name + ".*"))]:  # 1 GB segments
            if part.exists():
                found += part.read_bytes()
    return found


async def test_nothing_readable_remains_after_forget_and_scrub(store_url: str) -> None:
    async with await open_store(store_url) as store:
        for who, email in (("ann", ANN), ("bob", BOB)):
            await store.append(
                f"Customer-{who}", [Joined(customer_id=who, email=email).to_new_event()]
            )
        await store.save_snapshot(Snapshot("Customer-ann", 1, "Customer", "f", {"email": ANN}))
        async with ProjectionRunner(store, [Profiles()], poll_interval=0.05) as runner:
            await runner.wait_until("profiles", await store.head_position(), timeout=20)
            docs = runner.documents("profiles")
            assert (await docs.get("ann"), await docs.get("bob")) == (
                {"email": ANN},
                {"email": BOB},
            )
            forgotten = await forget(store, "ann")
            await runner.wait_until("profiles", forgotten.position, timeout=20)
            assert await docs.get("ann") is None
        await scrub(store, full=True)
        if not store_url.startswith("sqlite"):
            conn = await asyncpg.connect(store_url.split("?")[0])
            try:
                await conn.execute("CHECKPOINT")  # table files on disk, not only in buffers
            finally:
                await conn.close()
        on_disk = await files_of(store, store_url)
        assert BOB.encode() in on_disk, "the search sees the other customer's copied email"
        assert ANN.encode() not in on_disk
        assert b"ann-1f9c3e" not in on_disk


async def test_a_rebuild_after_forget_holds_only_markers(store_url: str) -> None:
    Profiles.forgets = False  # a read model that keeps whatever the events say
    try:
        async with await open_store(store_url) as store:
            await store.append(
                "Customer-ann", [Joined(customer_id="ann", email=ANN).to_new_event()]
            )
            async with ProjectionRunner(store, [Profiles()], poll_interval=0.05) as runner:
                forgotten = await forget(store, "ann")
                await runner.wait_until("profiles", forgotten.position, timeout=20)
                await runner.rebuild("profiles")
                docs = runner.documents("profiles")
                assert await docs.get("ann") == {"email": {"$redacted": "ann"}}
    finally:
        Profiles.forgets = True
