"""Reading from a PostgreSQL standby: which store answers a read, and how far behind the
standby is.

A :class:`ReadReplica` holds a store opened read-only on a physical standby of the
primary, beside the primary's store. :meth:`ReadReplica.choose` picks the store for one
read:

- the standby, when it answers and has what the read is owed: a `position` (the
  position of an append the caller made, from the command's answer) that the standby's
  visible log has reached, or that a read model's checkpoint on the standby has
  reached;
- the primary otherwise: the standby is down (it is tried again after
  `retry_after` seconds), or has not caught up with the owed position within `wait`
  seconds.

Writes never go to the standby (its store refuses them), and projections and processes
run against the primary only: the standby sees their read models as it replays the
primary's WAL.

>>> import asyncio
>>> from eventledger import open_store
>>> async def main() -> tuple[str, str | None]:
...     async with await open_store("memory://") as primary:
...         # No standby answers on this port: reads go to the primary, and say why.
...         url = "postgresql://postgres@127.0.0.1:1/postgres?pool_timeout=1"
...         async with ReadReplica(url, primary) as replica:
...             choice = await replica.choose(owed=0)
...             return choice.source, choice.reason
>>> asyncio.run(main())
('primary', 'down')
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventledger.errors import InvalidInput
from eventledger.failures import describe_error
from eventledger.observability import instruments
from eventledger.projections.context import RunScope
from eventledger.projections.queries import ReadModelQueries
from eventledger.stores import open_store
from eventledger.stores.base import EventStore

__all__ = ["Choice", "ReadReplica", "ReplicaStatus", "read_url_for"]

log = logging.getLogger("eventledger.replica")

Source = Literal["replica", "primary"]
BEHIND_COUNTED = 1_000_000
"""How many missing events the standby's status counts at most."""
_SCHEMES = ("postgresql", "postgres")
DEFAULT_WAIT = 2.0
DEFAULT_RETRY_AFTER = 1.0
NOT_OPENED = "not opened yet"
SETTINGS = ("replica_wait", "replica_retry_after")
"""Settings of the read URL that are the replica's (`wait`, `retry_after`), not the
store's."""


def read_url_for(read_url: str, primary_url: str | None = None) -> str:
    """The URL the standby is opened with: `read_url` with ``read_only=true``, and the
    primary's ``schema`` when `read_url` names none (the standby holds the same one).
    Refuses (:class:`~eventledger.InvalidInput`) a URL that is not PostgreSQL's, or
    whose ``replica_wait`` or ``replica_retry_after`` is not a number of seconds.

    >>> read_url_for("postgresql://db-standby/shop", "postgresql://db/shop?schema=orders")
    'postgresql://db-standby/shop?read_only=true&schema=orders'
    """
    if not isinstance(read_url, str) or urlsplit(read_url).scheme.lower() not in _SCHEMES:
        raise InvalidInput(
            f"a read URL is a PostgreSQL standby's (postgresql://user@host/database),"
            f" not {read_url!r:.80}"
        )
    parts = urlsplit(read_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("read_only", "true").lower() not in ("true", "1", "yes", "on"):
        raise InvalidInput(
            f"the read URL is opened read-only: drop read_only={query['read_only']} from it"
        )
    for name in SETTINGS:
        if name in query:
            _seconds(name, query[name])
    query["read_only"] = "true"
    if "schema" not in query and primary_url is not None:
        primary_query = dict(parse_qsl(urlsplit(primary_url).query, keep_blank_values=True))
        if "schema" in primary_query:
            query["schema"] = primary_query["schema"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _take_settings(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in SETTINGS}
    rest = [(k, v) for k, v in query if k not in SETTINGS]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def _seconds(name: str, value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 <= seconds <= 3600:
        raise InvalidInput(f"{name} is a number of seconds (0 to 3600), not {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Choice:
    """The store one read goes to, and why it is not the standby when it is not."""

    store: EventStore
    source: Source
    reason: Literal["behind", "down", "failed"] | None = None
    """``behind``: the standby had not reached the owed position in time; ``down``: it
    does not answer; ``failed``: the read failed on it and was made again on the primary."""
    waited: float = 0.0
    """Seconds spent waiting for the standby to catch up."""


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """How the standby stands: up or down, and how far behind the primary."""

    url: str
    state: Literal["up", "down"]
    head_position: int | None
    """The last position the standby's readers see (None: it does not answer)."""
    primary_head_position: int
    behind_events: int | None
    """Events the primary shows and the standby not yet (counted up to a million)."""
    lag_seconds: float | None
    """How long ago the oldest of those was recorded (0 when it is caught up)."""
    error: str | None = None


class ReadReplica:
    """A standby opened read-only (`url`, see :func:`read_url_for`) and the `primary`'s
    store to fall back on. A read owed a position waits up to `wait` seconds (default 2)
    for the standby to reach it; a standby that failed is left alone for `retry_after`
    seconds (default 1), then probed (for at most `probe_timeout` seconds) before it
    serves again. The URL may set the first two as ``replica_wait`` and
    ``replica_retry_after`` (what ``eventledger serve --read-url`` offers)."""

    def __init__(
        self,
        url: str,
        primary: EventStore,
        *,
        wait: float | None = None,
        retry_after: float | None = None,
        probe_timeout: float = 2.0,
    ) -> None:
        url, settings = _take_settings(read_url_for(url))
        self.url = url
        self.primary = primary
        self.wait = (
            _seconds("wait", wait)
            if wait is not None
            else _seconds("replica_wait", settings.get("replica_wait", DEFAULT_WAIT))
        )
        self.retry_after = (
            _seconds("retry_after", retry_after)
            if retry_after is not None
            else _seconds(
                "replica_retry_after", settings.get("replica_retry_after", DEFAULT_RETRY_AFTER)
            )
        )
        self.probe_timeout = _seconds("probe_timeout", probe_timeout)
        if self.probe_timeout <= 0:
            raise InvalidInput(f"probe_timeout is more than 0 seconds, not {probe_timeout!r}")
        self.store: EventStore | None = None
        self.queries: ReadModelQueries | None = None
        """Read-model queries on the standby (None until it is open)."""
        self._down_since: float | None = time.monotonic()  # down until opened
        self._retry_at = 0.0
        self._last_error: str | None = NOT_OPENED
        self._seen_head = 0  # the standby replays forwards: a head seen stays reached
        self._lock = asyncio.Lock()

    @property
    def redacted_url(self) -> str:
        parts = urlsplit(self.url)
        if parts.password:
            parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
        return urlunsplit(parts._replace(query=""))

    @property
    def up(self) -> bool:
        return self._down_since is None

    async def open(self) -> None:
        """Open the standby's store; a standby that does not answer is left down (reads go
        to the primary) and tried again later."""
        await self._probe()

    async def close(self) -> None:
        store, self.store, self.queries = self.store, None, None
        if store is not None:
            await store.close()

    async def __aenter__(self) -> ReadReplica:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- choosing ---------------------------------------------------------------------------

    async def choose(self, owed: int | None = None, read_model: str | None = None) -> Choice:
        """The store a read goes to. `owed`: the position the read must reflect (the log's
        visible head, or with `read_model` that read model's checkpoint, on the standby)."""
        if not self.up and not await self._recovered():
            return self._primary("down")
        store = self.store
        assert store is not None
        if owed is None or (read_model is None and self._seen_head >= owed):
            return self._replica(store)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.wait
        delay = 0.0005
        while True:
            try:
                reached = await self._reached(store, read_model)
            except Exception as error:
                self.failed(error)
                return self._primary("down")
            if reached >= owed:
                return self._replica(store, loop.time() - started)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self._primary("behind", loop.time() - started)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    def failed(self, error: BaseException) -> None:
        """A read on the standby failed: send reads to the primary for `retry_after`
        seconds, then probe the standby again."""
        now = time.monotonic()
        self._retry_at = now + self.retry_after
        first = self._last_error == NOT_OPENED
        self._last_error = describe_error(error)
        if self._down_since is None or first:
            self._down_since = self._down_since or now
            log.warning(
                "the read replica %s failed (%s): reads go to the primary until it answers again",
                self.redacted_url,
                self._last_error,
            )

    def fell_back(self, error: BaseException) -> Choice:
        """A read on the standby failed (`error`): the primary, for that read made again."""
        self.failed(error)
        instruments.current.replica_read("primary", "failed")
        return Choice(self.primary, "primary", "failed")

    def _replica(self, store: EventStore, waited: float = 0.0) -> Choice:
        instruments.current.replica_read("replica", "ok")
        return Choice(store, "replica", None, waited)

    def _primary(self, reason: Literal["behind", "down"], waited: float = 0.0) -> Choice:
        instruments.current.replica_read("primary", reason)
        return Choice(self.primary, "primary", reason, waited)

    async def _reached(self, store: EventStore, read_model: str | None) -> int:
        if read_model is not None:
            return await store.read_side().get_checkpoint(read_model) or 0
        head = await store.head_position()
        self._seen_head = max(self._seen_head, head)
        return head

    async def _recovered(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        async with self._lock:  # one probe at a time; the others wait for its outcome
            if self.up:
                return True
            if time.monotonic() < self._retry_at:
                return False
            return await self._probe()

    async def _probe(self) -> bool:
        """Open the standby (if it is not) and ask for its head, within `probe_timeout`."""
        try:
            async with asyncio.timeout(self.probe_timeout):
                if self.store is None:
                    store = await open_store(self.url)
                    sql = store.sql_tables() if "sql_tables" in store.capabilities else None
                    self.queries = ReadModelQueries(RunScope(store, store.read_side(), sql))
                    self.store = store
                head = await self.store.head_position()
        except Exception as error:
            self.failed(error)
            return False
        self._seen_head = max(self._seen_head, head)
        if self.store is not None and self._last_error == NOT_OPENED:
            log.info("reads go to the read replica %s", self.redacted_url)
        elif self._down_since is not None:
            log.warning("the read replica %s answers: reads go to it again", self.redacted_url)
        self._down_since = None
        self._last_error = None
        return True

    # --- status -----------------------------------------------------------------------------

    async def status(self) -> ReplicaStatus:
        """Up or down, and how far behind the primary the standby is (asks both)."""
        primary_head = await self.primary.head_position()
        head: int | None = None
        if self.up or await self._recovered():
            assert self.store is not None
            try:
                async with asyncio.timeout(self.probe_timeout):
                    head = await self.store.head_position()
            except Exception as error:
                self.failed(error)
        if head is None:
            return ReplicaStatus(
                self.redacted_url, "down", None, primary_head, None, None, self._last_error
            )
        self._seen_head = max(self._seen_head, head)
        behind = await self.primary.count_events(after=head, limit=BEHIND_COUNTED)
        seconds = 0.0
        async for missing in self.primary.read_all(after=head, limit=1):
            seconds = max(0.0, (datetime.now(UTC) - missing.recorded_at).total_seconds())
        return ReplicaStatus(self.redacted_url, "up", head, primary_head, behind, seconds)
