"""The query cache's connection to Redis, made so that a Redis that is down costs little.

Every call has short connect and socket timeouts and is never retried. When one fails,
the link *rests*: for `retry_after` seconds no call is tried (callers get
:class:`Unavailable` at once and go to the database); then one call tries again, and
its success ends the outage. A warning is logged when an outage starts, and at most
once every `warn_every` seconds while it lasts; an info line when it ends. Failed
calls are counted in ``eventledger_query_cache_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from eventledger.errors import InvalidInput
from eventledger.observability import instruments

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Link", "Unavailable"]

log = logging.getLogger("eventledger.cache")

T = TypeVar("T")


class Unavailable(Exception):
    """Redis did not answer (or the link rests after it did not): use the database."""


class Link:
    def __init__(
        self,
        url: str,
        shown: str,
        *,
        timeout: float,
        retry_after: float,
        warn_every: float,
    ) -> None:
        self.shown = shown
        self.timeout = timeout
        self.retry_after = retry_after
        self.warn_every = warn_every
        try:  # an extra: eventledger[redis]
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError
        except ImportError:
            raise InvalidInput(
                "the query cache needs the Redis client: pip install 'eventledger[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        try:
            self.client: Redis = Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )
        except (ValueError, TypeError) as error:
            raise InvalidInput(f"the query cache URL {shown!r} is not valid: {error}") from None
        self.up = True
        """False during an outage, until a call succeeds again."""
        self.failures = 0
        """Calls that failed or were not tried during the current outage."""
        self._rest_until = 0.0
        self._warned_at: float | None = None
        self._started_at = 0.0

    def resting(self) -> bool:
        """Whether a call now would not be tried (the link rests after a failure)."""
        return not self.up and time.monotonic() < self._rest_until

    def script(self, text: str) -> Callable[..., Awaitable[Any]]:
        return self.client.register_script(text)

    async def call(self, operation: str, make: Callable[[], Awaitable[T]]) -> T:
        """`make()`'s result, or :class:`Unavailable` (the failure counted and logged)."""
        now = time.monotonic()
        if not self.up:
            if now < self._rest_until:
                self.failures += 1
                raise Unavailable(self.shown)
            self._rest_until = now + self.retry_after  # one call tries; the others wait
        try:
            async with asyncio.timeout(self.timeout * 4 + 0.5):  # whatever the socket does
                result = await make()
        except self._errors as error:
            self._failed(operation, error)
            await self._drop_idle()
            raise Unavailable(self.shown) from error
        if not self.up:
            self.up = True
            log.info(
                "the query cache at %s answers again after %.1f s (%d calls went to the"
                " database meanwhile)",
                self.shown,
                time.monotonic() - self._started_at,
                self.failures,
            )
            self.failures = 0
        return result

    def _failed(self, operation: str, error: BaseException) -> None:
        instruments.current.query_cache_error(operation)
        now = time.monotonic()
        self.failures += 1
        self._rest_until = now + self.retry_after
        starting = self.up
        self.up = False
        if starting:
            self._started_at = now
        if self._warned_at is None or now - self._warned_at >= self.warn_every:
            self._warned_at = now
            log.warning(
                "the query cache at %s %s (%s: %s); queries go to the database until it"
                " answers (tried again every %g s)",
                self.shown,
                "does not answer" if starting else "still does not answer",
                type(error).__name__,
                str(error)[:200] or "no detail",
                self.retry_after,
            )

    async def _drop_idle(self) -> None:
        # Connections made before the failure would each fail once more after a restart.
        with contextlib.suppress(Exception):
            await self.client.connection_pool.disconnect(inuse_connections=False)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()
