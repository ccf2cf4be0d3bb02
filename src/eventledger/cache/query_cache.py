"""A Redis cache of read-model query answers that never serves one older than a commit.

``QueryCache("redis://127.0.0.1:6379/0")``, given to a
:class:`~eventledger.projections.ProjectionRunner` (``cache=``), to
:meth:`Application.start <eventledger.Application.start>` or to ``create_app``
(``eventledger serve --cache``), answers document gets, finds and counts and pages of
SQL tables from Redis when it safely can, and from the database otherwise. Every
process that runs read models or answers queries on them shares one Redis.

The rules (the argument is in ``docs/query-cache.md``):

1. **Writers mark, then commit, then release.** The process that runs a read model
   (it holds its lease) adds a token to the read model's state in Redis and raises
   its version *before* each transaction that changes what queries see commits, and
   removes the token and raises the version again *after* it committed.
2. **Readers look up, then read the database, then keep only if nothing moved.** A
   lookup reads the state and the entry in one atomic step: an entry is served only
   if it was computed at the current version, with no token in flight. On a miss,
   the version was read *before* the database; the answer is kept only if, in one
   atomic step, the version is unchanged and no token is in flight.
3. **Nothing without a voucher.** The process that runs the read model renews, at
   each step of its loop, a short window (`window` seconds, in Redis's clock) during
   which the read model may be served; outside it, every query goes to the database.
   When that process cannot mark a change (Redis does not answer), it waits until
   every window it may have asked for has passed before it commits, and it raises
   the version once Redis answers again, before it asks for a new window.

Hence an answer served was the database's answer at some moment after every change
that committed before the lookup: whoever was told of a commit (a ``?wait=``
answer, a position) and then asks, is served that commit's effects or later ones.
Entries expire after `ttl` seconds; a Redis that is down or slow costs each query at
most one short timeout, then nothing while the link rests (see
:mod:`eventledger.cache._link`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventledger.cache import _answers, _scripts
from eventledger.cache._link import Link, Unavailable
from eventledger.errors import InvalidInput, OperationalError
from eventledger.observability import instruments
from eventledger.projections.documents import DocumentQueries
from eventledger.storage import ReadSideStorage
from eventledger.stores.base import StoreTransaction

__all__ = ["QueryCache"]

T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")
MAX_STORING = 256
"""Answers being kept at once, at most (beyond: not kept; Redis is slow, say)."""
_PREFIX = re.compile(r"[A-Za-z0-9:._-]{1,100}")


class QueryCache:
    """Read-model query answers kept in Redis, tied to the read models' commits.

    `url` is a Redis URL (``redis://host:6379/0``, ``rediss://`` for TLS,
    ``unix:///path``); ``?prefix=`` in it sets `prefix`, which starts every key (give
    each store its own prefix, or its own database number). `ttl`: how long an entry
    is kept (seconds). `window`: how long a read model may be served after its runner
    last said it is alive. `timeout`: connect and socket timeout of each Redis call;
    after a failure no call is tried for `retry_after` seconds. `max_bytes`: larger
    answers are not kept. `warn_every`: at most one warning that often while Redis
    does not answer.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "eventledger",
        ttl: float = 300.0,
        window: float = 3.0,
        timeout: float = 0.25,
        retry_after: float = 1.0,
        max_bytes: int = 1 << 20,
        warn_every: float = 60.0,
    ) -> None:
        url, given = _split_prefix(url)
        prefix = given or prefix
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise InvalidInput(
                f"a query cache prefix is 1 to 100 letters, digits and ':._-', not {prefix!r}"
            )
        for name, value in (("ttl", ttl), ("window", window), ("timeout", timeout)):
            if not isinstance(value, int | float) or not 0 < value <= 86_400:
                raise InvalidInput(f"{name} is a number of seconds above 0, not {value!r}")
        if not isinstance(retry_after, int | float) or not 0 < retry_after <= 3600:
            raise InvalidInput(f"retry_after is a number of seconds above 0, not {retry_after!r}")
        self.prefix = prefix
        self.ttl = float(ttl)
        self.window = float(window)
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self.url = shown_url(url)
        self._link = Link(
            url, self.url, timeout=timeout, retry_after=retry_after, warn_every=warn_every
        )
        self._begin = self._link.script(_scripts.BEGIN)
        self._release_script = self._link.script(_scripts.RELEASE)
        self._renew = self._link.script(_scripts.RENEW)
        self._lookup = self._link.script(_scripts.LOOKUP)
        self._store = self._link.script(_scripts.STORE)
        self._offset: float | None = None
        """Redis's clock minus ours (seconds), from the last answer: never ahead of it."""
        self._granted: dict[str, float] = {}
        """Per read model, the Redis time no window this process asked for outlasts."""
        self._renewed: dict[str, float] = {}
        self._pending: dict[str, set[str]] = {}
        """Tokens of changes marked (or tried) whose commit was not seen (yet)."""
        self._to_release: dict[str, set[str]] = {}
        """Tokens of changes that committed, not yet released."""
        self._unmarked: dict[str, set[str]] = {}
        """Tokens of changes that could not be marked, until released: no window meanwhile."""
        self._releaser: asyncio.Task[None] | None = None
        self._storing: set[asyncio.Task[None]] = set()
        self._places: dict[str, tuple[bytes, bytes, int, int]] = {}
        """Per read model: the incarnation and version of a lookup, and the checkpoint
        and generation read after it."""
        self._ttl_ms = int(self.ttl * 1000)
        self._closed = False

    @staticmethod
    def check_url(url: str) -> str:
        """`url` if it is a Redis URL the cache can use; else :class:`InvalidInput`."""
        scheme = urlsplit(url).scheme if isinstance(url, str) else ""
        if scheme not in SCHEMES:
            raise InvalidInput(
                "the query cache is a Redis URL (redis://host:6379/0, rediss://..., or"
                f" unix:///path/redis.sock), not {url!r:.80}"
            )
        _split_prefix(url)
        return url

    @property
    def available(self) -> bool:
        """False while Redis does not answer (queries go to the database)."""
        return self._link.up

    # --- the writer's side: the process that runs the read model ------------------------

    async def changing(self, read_model: str, *, taking_over: bool = False) -> Change:
        """Mark a change to `read_model` in flight, before the transaction that commits
        it does (rule 1); then give it that transaction (:meth:`Change.commits_with`)."""
        token = uuid.uuid4().hex[:16]
        stale = self._pending.pop(read_model, set())  # earlier transactions rolled back
        self._pending[read_model] = {token}
        marked = False
        if not self._link.resting():
            args = [_fresh(), token, 0, int(self.window * 1000), int(taking_over), *stale]
            try:
                now = await self._link.call(
                    "mark", lambda: self._begin(keys=[self._state(read_model)], args=args)
                )
                self._heard(now)
                marked = True
                self._settled(read_model, stale)  # rolled back: the raised version covers them
            except Unavailable:
                pass
        if not marked:
            self._unmarked.setdefault(read_model, set()).add(token)
            if stale:
                self._unmarked[read_model].update(stale)
                self._release_later(read_model, stale)
            await self._wait_out_windows(read_model)
        return Change(self, read_model, token)

    async def serving(self, read_model: str) -> None:
        """Renew the window of `read_model` when it is due (rule 3)."""
        stale = self._pending.pop(read_model, None)
        if stale:  # no transaction of the read model is open now: those rolled back
            self._to_release.setdefault(read_model, set()).update(stale)
        if self._link.resting():
            return
        committed = self._to_release.pop(read_model, None)
        if committed:  # released here, in the runner's step, rather than by the releaser
            try:
                await self._release(read_model, committed)
            except Unavailable:
                self._release_later(read_model, committed)
            return
        if time.monotonic() - self._renewed.get(read_model, -1e9) < self.window / 3:
            return
        not_after = self._not_after(read_model, frozenset())
        args = [_fresh(), not_after, int(self.window * 1000)]
        with contextlib.suppress(Unavailable):
            now = await self._link.call(
                "renew", lambda: self._renew(keys=[self._state(read_model)], args=args)
            )
            self._heard(now)
            if not_after:
                self._renewed[read_model] = time.monotonic()

    def _committed(self, read_model: str, token: str) -> None:
        pending = self._pending.get(read_model)
        if pending is not None:
            pending.discard(token)
        self._release_later(read_model, {token})

    def _release_later(self, read_model: str, tokens: set[str]) -> None:
        self._to_release.setdefault(read_model, set()).update(tokens)
        if not self._closed and (self._releaser is None or self._releaser.done()):
            self._releaser = asyncio.ensure_future(self._release_all())

    async def _release_all(self) -> None:
        while self._to_release and not self._closed:
            read_model = next(iter(self._to_release))
            tokens = self._to_release.pop(read_model)
            try:
                await self._release(read_model, tokens)
            except Unavailable:
                self._to_release.setdefault(read_model, set()).update(tokens)
                await asyncio.sleep(self._link.retry_after)

    async def _release(self, read_model: str, tokens: set[str]) -> None:
        not_after = self._not_after(read_model, tokens)
        args = [_fresh(), not_after, int(self.window * 1000), *sorted(tokens)]
        now = await self._link.call(
            "release", lambda: self._release_script(keys=[self._state(read_model)], args=args)
        )
        self._heard(now)
        self._settled(read_model, tokens)
        if not_after:
            self._renewed[read_model] = time.monotonic()

    def _settled(self, read_model: str, tokens: set[str]) -> None:
        unmarked = self._unmarked.get(read_model)
        if unmarked is not None:
            unmarked -= tokens
            if not unmarked:
                del self._unmarked[read_model]

    def _not_after(self, read_model: str, releasing: frozenset[str] | set[str]) -> int:
        """The latest Redis time (ms) at which a call sent now may open a window: 0 (none)
        while Redis is not known to answer, its clock is unknown, or a change this process
        could not mark is not released by this very call."""
        if not self._link.up or self._offset is None:
            return 0
        if not self._unmarked.get(read_model, set()) <= releasing:
            return 0
        not_after = time.monotonic() + self._offset + self.timeout
        granted = self._granted.get(read_model, 0.0)
        self._granted[read_model] = max(granted, not_after + self.window)
        return int(not_after * 1000)

    def _heard(self, redis_ms: int) -> None:
        # Redis's clock when it ran the call, against ours when the answer came: never ahead.
        self._offset = redis_ms / 1000 - time.monotonic()

    async def _wait_out_windows(self, read_model: str) -> None:
        """Wait until every window this process asked for `read_model` has passed."""
        margin = 0.05 + 0.02 * self.window
        while True:
            granted = self._granted.get(read_model)
            if granted is None or self._offset is None:
                return
            left = granted + margin - (time.monotonic() + self._offset)
            if left <= 0:
                return
            await asyncio.sleep(left)

    # --- the readers' side ---------------------------------------------------------------

    def documents(
        self, read_model: str, queries: DocumentQueries, read_side: ReadSideStorage
    ) -> DocumentQueries:
        from eventledger.cache.documents import CachedDocumentQueries

        return CachedDocumentQueries(queries, self, read_model, read_side)

    async def answer(
        self,
        read_model: str,
        read_side: ReadSideStorage,
        kind: str,
        query: Sequence[Any],
        compute: Callable[[], Awaitable[T]],
        *,
        at_least: int = 0,
    ) -> T:
        """The answer to `query` (rule 2); `at_least`: a position the answer must reflect
        (the caller's own write, say): a cached answer computed before it is not served."""
        if kind not in _answers.KINDS:
            raise InvalidInput(f"kind is one of {', '.join(_answers.KINDS)}, not {kind!r}")
        try:
            key = self._entry(read_model, kind, query)
        except _answers.Uncacheable:
            return await self._counted(read_model, "uncacheable", compute)
        state = self._state(read_model)
        try:
            found = await self._link.call("lookup", lambda: self._lookup(keys=[state, key]))
        except Unavailable:
            return await self._counted(read_model, "unavailable", compute)
        status = found[0].decode()
        if status == "hit" and int(found[3]) >= at_least:
            instruments.current.query_cache(read_model, "hit")
            value: T = _answers.decode(kind, found[5])
            return value
        if status not in ("hit", "miss"):
            return await self._counted(read_model, status, compute)  # busy, unvouched
        incarnation, version = found[1], found[2]
        # Where the read model was, read after the version and before the query: the
        # answer reflects at least that position (and that generation). Read once per
        # version: while the version stays, so does the generation (a swap raises it),
        # and a checkpoint read earlier is still a lower bound.
        place = self._places.get(read_model)
        if place is None or place[:2] != (incarnation, version) or place[2] < at_least:
            position, generation = await asyncio.gather(
                read_side.get_checkpoint(read_model), read_side.generation(read_model)
            )
            place = (incarnation, version, position or 0, generation or 0)
            self._places[read_model] = place
        computed = await compute()
        instruments.current.query_cache(read_model, "miss")
        try:
            body = _answers.encode(kind, computed)
        except _answers.Uncacheable:
            return computed
        if len(body) <= self.max_bytes and len(self._storing) < MAX_STORING:
            args = [incarnation, version, place[2], place[3], body, self._ttl_ms]
            task = asyncio.ensure_future(self._keep(state, key, args))
            self._storing.add(task)  # kept in the background: the caller has its answer
            task.add_done_callback(self._storing.discard)
        return computed

    async def _keep(self, state: str, key: str, args: list[Any]) -> None:
        with contextlib.suppress(Unavailable):
            await self._link.call("store", lambda: self._store(keys=[state, key], args=args))

    async def _counted(
        self, read_model: str, outcome: str, compute: Callable[[], Awaitable[T]]
    ) -> T:
        instruments.current.query_cache(read_model, outcome)
        return await compute()

    # --- keys, life ----------------------------------------------------------------------

    def _state(self, read_model: str) -> str:
        return f"{self.prefix}:{{{read_model}}}:state"

    def _entry(self, read_model: str, kind: str, query: Sequence[Any]) -> str:
        return f"{self.prefix}:{{{read_model}}}:q:{_answers.key_of(kind, query)}"

    async def clear(self) -> int:
        """Delete every key under this cache's prefix (entries and read models' states):
        safe at any time (a read model whose state is gone is not served until its runner
        marks, releases or renews again). How many keys went;
        :class:`~eventledger.OperationalError` if Redis does not answer."""
        client = self._link.client

        async def delete() -> int:
            deleted = 0
            batch: list[Any] = []
            async for key in client.scan_iter(match=f"{self.prefix}:*", count=500):
                batch.append(key)
                if len(batch) == 500:
                    deleted += await client.unlink(*batch)
                    batch = []
            if batch:
                deleted += await client.unlink(*batch)
            return deleted

        try:
            deleted = await self._link.call("clear", delete)
        except Unavailable:
            raise OperationalError(
                f"the query cache at {self.url} does not answer: nothing (more) was deleted"
            ) from None
        # Changes that committed need no release now: their states are gone, and the next
        # call that makes one again starts a new incarnation that nothing older matches.
        for read_model, tokens in self._to_release.items():
            self._settled(read_model, tokens)
        self._to_release.clear()
        return deleted

    async def close(self) -> None:
        """Release what committed (one try), then close the connections."""
        if self._closed:
            return
        storing = list(self._storing)
        for task in storing:
            task.cancel()
        await asyncio.gather(*storing, return_exceptions=True)
        if self._releaser is not None and not self._releaser.done():
            self._releaser.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._releaser
        self._closed = True
        while self._to_release and not self._link.resting():
            read_model, tokens = self._to_release.popitem()
            with contextlib.suppress(Unavailable):
                await self._release(read_model, tokens)
        await self._link.close()

    async def __aenter__(self) -> QueryCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"QueryCache({self.url!r}, prefix={self.prefix!r})"


class Change:
    """A change marked (or not: Redis did not answer) in the cache; see
    :meth:`QueryCache.changing`."""

    def __init__(self, cache: QueryCache, read_model: str, token: str) -> None:
        self._cache = cache
        self._read_model = read_model
        self._token = token

    def commits_with(self, tx: StoreTransaction) -> None:
        """`tx` commits the change: once it has, the cache releases it."""
        tx.on_commit(lambda: self._cache._committed(self._read_model, self._token))


def _fresh() -> str:
    """An incarnation id, used only if the state is missing (a Redis that lost it)."""
    return uuid.uuid4().hex[:16]


def _split_prefix(url: str) -> tuple[str, str | None]:
    """`url` without its ``prefix`` query parameter, and that parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    if len(prefixes) > 1:
        raise InvalidInput(f"the query cache URL gives prefix twice: {shown_url(url)!r}")
    kept = [(name, value) for name, value in query if name != "prefix"]
    return urlunsplit(parts._replace(query=urlencode(kept))), (prefixes[0] if prefixes else None)


def shown_url(url: str) -> str:
    """`url` without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))
