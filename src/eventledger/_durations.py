"""Durations written the way people write them: ``90d``, ``1h``, ``30min``, ``45s``.

>>> parse_duration("90d")
datetime.timedelta(days=90)
>>> parse_duration("1h30m")
datetime.timedelta(seconds=5400)
>>> parse_duration("soon")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
eventledger.errors.InvalidInput: a duration is a number and a unit (s, m, h, d, w), ...
"""

from __future__ import annotations

import re
from datetime import timedelta

from eventledger.errors import InvalidInput

__all__ = ["UNITS", "parse_duration"]

UNITS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|sec|[smhdw])")
_WHOLE = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:min|sec|[smhdw]))+\s*")


def parse_duration(text: str) -> timedelta:
    """A duration from text: one or more numbers, each with a unit (s, m, h, d, w)."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text) or len(text) > 100:
        raise InvalidInput(
            f"a duration is a number and a unit (s, m, h, d, w), like 90d, 1h or 30m; not {text!r}"
        )
    seconds = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(text))
    if seconds > timedelta.max.total_seconds() / 2:
        raise InvalidInput(f"the duration {text!r} is too long")
    return timedelta(seconds=seconds)
