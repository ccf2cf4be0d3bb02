"""What happens when a handler fails: retries with backoff, then the dead-letter queue,
where the error is kept as one line that says what went wrong.

>>> policy = RetryPolicy(max_attempts=4, initial_delay=0.1, max_delay=1.0, jitter=0)
>>> [policy.delay(attempt) for attempt in (1, 2, 3)]
[0.1, 0.2, 0.4]
>>> describe_error(KeyError("BOOK"))
"KeyError: 'BOOK'"
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from eventledger.errors import InvalidInput, ProjectionFailed

__all__ = ["OnFailure", "ProjectionFailed", "RetryPolicy", "describe_error"]


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


def describe_error(error: BaseException) -> str:
    """An error as one line, ``Type: message``: how dead letters and status show it.

    An error whose message says nothing is named by what it carries instead: the
    ``decimal`` module raises errors whose message is a list of classes (its signals),
    shown by their names (and their docstrings' first lines, when they have them); an
    error without a message is shown with its type's docstring, when it has one.

    >>> from decimal import Decimal, InvalidOperation
    >>> try:
    ...     Decimal(0) / Decimal(0)
    ... except InvalidOperation as error:
    ...     print(error)
    ...     print(describe_error(error))
    [<class 'decimal.DivisionUndefined'>]
    InvalidOperation: DivisionUndefined
    >>> class OutOfPaper(Exception):
    ...     'The printer needs paper.'
    >>> describe_error(OutOfPaper())
    'OutOfPaper: The printer needs paper.'
    """
    name = type(error).__name__
    carried = _carried_classes(error)
    if carried:
        text = ", ".join(_named(kind) for kind in carried)
    else:
        try:
            text = str(error).strip()
        except Exception:  # a broken __str__ must not hide the error itself
            text = ""
        text = text or _first_line(type(error).__doc__)
    return f"{name}: {text}" if text else name


def _carried_classes(error: BaseException) -> list[type[BaseException]]:
    """The exception classes an error's only argument lists (decimal's signals), or []."""
    if len(error.args) != 1 or not isinstance(error.args[0], list | tuple):
        return []
    items = list(error.args[0])
    if items and all(isinstance(i, type) and issubclass(i, BaseException) for i in items):
        return items
    return []


def _named(kind: type[BaseException]) -> str:
    doc = _first_line(kind.__doc__)
    return f"{kind.__name__} ({doc})" if doc else kind.__name__


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
