"""A read-only store on a physical standby (made with pg_basebackup into a temporary
folder) follows the primary's log gap-free, and refuses to be opened for writing."""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from eventledger import (
    EventStore,
    InvalidInput,
    NewEvent,
    OperationalError,
    RecordedEvent,
    open_store,
)
from eventledger.projections import InMemoryProjection, ProjectionRunner, on
from eventledger.testing._follower import assert_each_once_in_order
from tests.postgres_urls import with_settings

pytestmark = pytest.mark.postgres

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import get_server


def _owned_by_the_server_user(folder: Path) -> None:
    # pgserver runs the server as the user "pgserver" when the tests run as root.
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("pgserver")
    for root, _, files in os.walk(folder):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in files:
            os.chown(Path(root) / name, user.pw_uid, user.pw_gid)


@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="el-standby-") as folder:
        primary = get_server(Path(folder) / "primary", cleanup_mode="stop")
        try:
            host = parse_qs(urlsplit(primary.get_uri()).query)["host"][0]
            standby_data = Path(folder) / "standby"
            made = subprocess.run(  # noqa: S603 - our own binary and arguments
                [
                    str(POSTGRES_BIN_PATH / "pg_basebackup"),
                    *("-D", str(standby_data), "-R", "-X", "stream", "-h", host),
                    *("-U", "postgres"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert made.returncode == 0, made.stderr
            # The copy holds the primary's socket lock and pgserver's bookkeeping: not ours.
            for name in ("postmaster.pid", ".s.PGSQL.5432.lock", ".handle_pids.json", "log"):
                (standby_data / name).unlink(missing_ok=True)
            _owned_by_the_server_user(standby_data)
            standby_data.chmod(0o700)
            standby = get_server(standby_data, cleanup_mode="stop")
            try:
                yield primary.get_uri(), standby.get_uri()
            finally:
                standby.cleanup()
        finally:
            primary.cleanup()


class Tally(InMemoryProjection):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    @on("Ticked")
    def ticked(self, event: RecordedEvent) -> None:
        self.seen.append(event.data["n"])


async def _open_when_replayed(url: str) -> EventStore:
    """The standby has the schema once it replayed the primary's migration."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            return await open_store(url)
        except OperationalError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture
def schema() -> str:
    return f"standby_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def writer(primary_and_standby: tuple[str, str], schema: str) -> AsyncIterator[EventStore]:
    store = await open_store(with_settings(primary_and_standby[0], schema=schema))
    yield store
    await store.close()


async def test_a_read_only_store_on_a_standby_follows_the_primary_gap_free(
    primary_and_standby: tuple[str, str], writer: EventStore, schema: str
) -> None:
    await writer.append("Tick-0", [NewEvent("Ticked", {"n": 0})])
    reader = await _open_when_replayed(
        with_settings(primary_and_standby[1], schema=schema, read_only="true")
    )
    seen: list[RecordedEvent] = []
    try:
        async with ProjectionRunner(reader, [Tally()], poll_interval=0.05) as runner:
            # Concurrent writers on the primary, one of them holding its transaction open
            # while younger ones commit: the standby's readers wait for it.
            appended = asyncio.Event()
            finish = asyncio.Event()

            async def older() -> None:
                async with writer.transaction() as tx:
                    await tx.append("Tick-older", [NewEvent("Ticked", {"n": 1})])
                    appended.set()
                    await finish.wait()

            task = asyncio.ensure_future(older())
            await appended.wait()
            results = await asyncio.gather(
                *(writer.append(f"Tick-{n}", [NewEvent("Ticked", {"n": n})]) for n in range(2, 12))
            )
            finish.set()
            await task
            last = max(r.position for r in results)
            await runner.wait_until("tally", last, timeout=30)
            assert sorted(runner.get("tally").seen) == list(range(12))  # type: ignore[attr-defined]
        seen = [e async for e in reader.read_all()]
        primary_log = [e async for e in writer.read_all()]
        assert [e.id for e in seen] == [e.id for e in primary_log]
        assert_each_once_in_order(seen, {e.id for e in primary_log})
        with pytest.raises(InvalidInput, match="read-only"):
            await reader.append("Tick-x", [NewEvent("Ticked", {"n": 99})])
    finally:
        await reader.close()


async def test_a_standby_opened_for_writing_says_to_open_it_read_only(
    primary_and_standby: tuple[str, str], writer: EventStore, schema: str
) -> None:
    await writer.append("Tick-0", [NewEvent("Ticked", {"n": 0})])
    url = with_settings(primary_and_standby[1], schema=schema)
    with pytest.raises(OperationalError, match=r"standby .* read_only=true"):
        await open_store(url)
