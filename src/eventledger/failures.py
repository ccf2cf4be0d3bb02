"""What happens when a handler fails: retries with backoff, then the dead-letter queue.

>>> policy = RetryPolicy(max_attempts=4, initial_delay=0.1, max_delay=1.0, jitter=0)
>>> [policy.delay(attempt) for attempt in (1, 2, 3)]
[0.1, 0.2, 0.4]
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from eventledger.errors import InvalidInput, ProjectionFailed

__all__ = ["OnFailure", "ProjectionFailed", "RetryPolicy"]


class OnFailure(enum.Enum):
    """What a subscription does once an event has used up its attempts."""

    STOP = "stop"
    """Park the event and stop at it until it is retried or skipped (the default)."""
    SKIP = "skip"
    """Park the event and go on with the next one."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits `initial_delay * 2**(n-1)`, at most
    `max_delay`, shortened at random by up to `jitter` (a fraction) so that many failing
    handlers do not retry in step."""

    max_attempts: int = 5
    initial_delay: float = 0.05
    max_delay: float = 5.0
    jitter: float = 0.5
    on_failure: OnFailure = OnFailure.STOP

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be an int >= 1, not {self.max_attempts!r}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise InvalidInput("retry delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise InvalidInput(f"jitter is a fraction between 0 and 1, not {self.jitter!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.max_delay, self.initial_delay * float(2 ** (attempt - 1)))
        return base * (1 - self.jitter * random.random())  # noqa: S311 - jitter, not secrets
