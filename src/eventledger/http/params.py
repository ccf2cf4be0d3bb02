"""Query parameters the HTTP API reads itself, to hold them to what its docs say."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import Query

from eventledger import _validation as check
from eventledger.errors import InvalidInput

__all__ = ["parse_time", "time_query"]

# ISO 8601 with a date, a time and an offset (or Z): what the docs promise, and
# nothing else (a bare number would be read as a Unix time by a looser parser).
_ISO_WITH_ZONE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})",
    re.IGNORECASE,
)


def time_query(description: str) -> Any:
    """A time parameter: ISO 8601 with a time zone, declared as such in the schema."""
    return Query(
        None,
        description=f"{description} (ISO 8601 with a time zone, e.g. 2026-11-23T12:00:00Z)",
        json_schema_extra={"format": "date-time"},
        pattern=_ISO_WITH_ZONE.pattern,
        max_length=40,
    )


def parse_time(text: str | None, name: str) -> datetime | None:
    """`text` as a timezone-aware time, or :class:`~eventledger.InvalidInput` naming `name`."""
    if text is None:
        return None
    if not _ISO_WITH_ZONE.fullmatch(text):
        raise InvalidInput(
            f"{name} is a time in ISO 8601 with a time zone (2026-11-23T12:00:00Z), not {text!r}"
        )
    try:
        parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(f"{name} {text!r} is not a valid time: {error}") from None
    return check.check_datetime(parsed, name)
