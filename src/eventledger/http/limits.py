"""Rate limits: a token bucket per caller and per kind of request.

Each API key (or, on a server without keys, each client address) has one bucket per
scope a route needs (``read``, ``write``, ``admin``; ``metrics`` counts as ``read``).
A bucket holds up to `burst` tokens and gains `per_second` of them each second; a
request takes one, and with none left the answer is 429 with ``Retry-After``.
Authentication that fails (a wrong, revoked or expired key, a failed login) takes a
token from the client address's ``failures`` bucket; once that is empty, the address
is refused every authentication (right or wrong) until it refills.

The buckets live in the server process: with ``--workers N`` each worker keeps its
own, so a client may get up to N times the limit.

>>> limits = RateLimits.parse(["write=2/s,burst=3"])
>>> limits.write
RateLimit(per_second=2.0, burst=3)
>>> limiter = RateLimiter(limits)
>>> [limiter.take("write", "key:k1", now=0.0) for _ in range(4)]
[None, None, None, 0.5]
>>> limiter.take("write", "key:k1", now=0.5)
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from eventledger._durations import UNITS
from eventledger.errors import InvalidInput
from eventledger.http.problems import HttpProblem

__all__ = ["DEFAULT_LIMITS", "RateLimit", "RateLimiter", "RateLimits", "TooManyRequests"]

_SPEC = re.compile(
    r"(?P<kind>[a-z]+)=(?P<count>\d+(?:\.\d+)?)/(?P<unit>s|sec|m|min|h|d)"
    r"(?:,\s*burst=(?P<burst>\d+))?"
)
log = logging.getLogger("eventledger.http")

MAX_BUCKETS = 100_000
"""Buckets kept at most; beyond it, full buckets (idle callers) are dropped."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`per_second` tokens a second, at most `burst` at once."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not isinstance(self.per_second, int | float) or not 0 < self.per_second < 1e9:
            raise InvalidInput(f"a rate is more than 0 per second, not {self.per_second!r}")
        if not isinstance(self.burst, int) or isinstance(self.burst, bool) or self.burst < 1:
            raise InvalidInput(f"a burst is a whole number, 1 or more, not {self.burst!r}")

    def __str__(self) -> str:
        return f"{self.per_second:g}/s,burst={self.burst}"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits of each kind of request (see the module's documentation)."""

    read: RateLimit = RateLimit(200.0, 2000)
    write: RateLimit = RateLimit(100.0, 1000)
    admin: RateLimit = RateLimit(10.0, 100)
    failures: RateLimit = RateLimit(1.0, 100)
    """Failed authentications per client address."""

    @classmethod
    def parse(cls, specs: Iterable[str], base: RateLimits | None = None) -> RateLimits:
        """`base` (default: the defaults) with some limits changed, each written as
        ``KIND=COUNT/UNIT[,burst=N]``: ``write=20/s``, ``admin=60/min,burst=10``. KIND
        is read, write, admin or failures; UNIT s, min, h or d; the burst is COUNT
        unless given."""
        limits = base or DEFAULT_LIMITS
        kinds = [f.name for f in fields(cls)]
        for spec in specs:
            match = _SPEC.fullmatch(spec.strip()) if isinstance(spec, str) else None
            if match is None or match["kind"] not in kinds:
                raise InvalidInput(
                    f"a rate limit reads KIND=COUNT/UNIT[,burst=N] (KIND one of"
                    f" {', '.join(kinds)}; UNIT s, min, h or d), like write=20/s or"
                    f" admin=60/min,burst=10; not {spec!r}"
                )
            count = float(match["count"])
            burst = int(match["burst"]) if match["burst"] else max(1, math.ceil(count))
            limit = RateLimit(count / UNITS[match["unit"]], burst)
            limits = replace(limits, **{match["kind"]: limit})
        return limits

    def of(self, scope: str) -> RateLimit:
        """The limit of requests to a route that needs `scope`."""
        if scope in ("write", "admin", "failures"):
            limit: RateLimit = getattr(self, scope)
            return limit
        return self.read


DEFAULT_LIMITS = RateLimits()


class TooManyRequests(HttpProblem):
    """429, with ``Retry-After``: the caller sent more than its limit allows."""

    def __init__(self, detail: str, retry_after: float) -> None:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        super().__init__(429, "too-many-requests", "Too many requests", detail, headers)
        self.retry_after = retry_after


class RateLimiter:
    """The token buckets of one server process."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        """(kind, caller) -> (tokens, when they were counted)."""

    def take(self, kind: str, caller: str, now: float | None = None) -> float | None:
        """Take a token from `caller`'s bucket of `kind`: None when there was one,
        else the seconds until there is."""
        now = time.monotonic() if now is None else now
        limit = self.limits.of(kind)
        tokens = self._tokens(kind, caller, limit, now)
        if tokens >= 1.0:
            self._keep((kind, caller), tokens - 1.0, now)
            return None
        self._keep((kind, caller), tokens, now)
        return (1.0 - tokens) / limit.per_second

    def empty(self, kind: str, caller: str, now: float | None = None) -> float | None:
        """The seconds until `caller`'s bucket of `kind` has a token again (None: it
        has one now); takes nothing."""
        now = time.monotonic() if now is None else now
        limit = self.limits.of(kind)
        tokens = self._tokens(kind, caller, limit, now)
        return None if tokens >= 1.0 else (1.0 - tokens) / limit.per_second

    def admit(self, kind: str, caller: str, who: str) -> None:
        """Take a token, or raise :class:`TooManyRequests` naming `who`."""
        wait = self.take(kind, caller)
        if wait is not None:
            limit = self.limits.of(kind)
            log.info("rate limit: refused %s %s (%s)", who, _requests(kind), limit)
            raise TooManyRequests(
                f"{who} sent more {_requests(kind)} than its limit ({limit}); wait"
                f" {math.ceil(wait)} s (Retry-After) and send fewer",
                wait,
            )

    def refuse_if_failing(self, address: str) -> None:
        """Raise :class:`TooManyRequests` if `address` used up its failed
        authentications; takes nothing."""
        wait = self.empty("failures", f"address:{address}")
        if wait is not None:
            log.info("rate limit: refused %s after failed authentications", address)
            raise TooManyRequests(
                f"too many failed authentications from {address}"
                f" ({self.limits.failures}); wait {math.ceil(wait)} s (Retry-After)",
                wait,
            )

    def failed(self, address: str) -> None:
        """Count a failed authentication from `address`."""
        self.take("failures", f"address:{address}")

    def _tokens(self, kind: str, caller: str, limit: RateLimit, now: float) -> float:
        found = self._buckets.get((kind, caller))
        if found is None:
            return float(limit.burst)
        tokens, then = found
        return min(float(limit.burst), tokens + max(0.0, now - then) * limit.per_second)

    def _keep(self, bucket: tuple[str, str], tokens: float, now: float) -> None:
        if bucket not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            self._prune(now)
        self._buckets[bucket] = (tokens, now)

    def _prune(self, now: float) -> None:
        """Forget full buckets (they hold nothing a new one would not); if none is
        full, the older half."""
        full = [
            bucket
            for bucket, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.limits.of(bucket[0]).per_second
            >= self.limits.of(bucket[0]).burst
        ]
        if not full:
            oldest = sorted(self._buckets.items(), key=lambda item: item[1][1])
            full = [bucket for bucket, _ in oldest[: len(oldest) // 2]]
        for bucket in full:
            del self._buckets[bucket]


def _requests(kind: str) -> str:
    return {"write": "commands", "admin": "admin requests"}.get(kind, "reads")
