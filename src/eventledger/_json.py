"""JSON encoding shared by every store, so that all backends accept and return the same data.

Encoding is strict: NaN and infinities, integers beyond 64 bits, non-string keys,
datetimes, dataclasses and other objects without an obvious JSON form are
refused (`UUID` and `Enum` values are stored as their JSON form). The NUL
character is refused too, because PostgreSQL cannot store it in JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["JSONEncodeError", "dumps", "loads"]

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# An escaped NUL (\u0000) preceded by an even number of backslashes, i.e. not
# itself the tail of an escaped backslash.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

loads = orjson.loads


class JSONEncodeError(ValueError):
    """The value cannot be stored as JSON; the message says why."""


def dumps(value: Any) -> bytes:
    """Encode `value` as compact UTF-8 JSON, refusing what would not round-trip."""
    try:
        encoded = orjson.dumps(value, option=_OPTIONS)
    except TypeError as error:
        raise JSONEncodeError(_explain(error)) from None
    if b"null" in encoded:
        # orjson writes NaN and infinities as null; the standard library names them.
        try:
            json.dumps(value, allow_nan=False, default=str)
        except ValueError:
            raise JSONEncodeError(
                "NaN and infinite floats have no JSON form; store them as strings or null"
            ) from None
    if b"\\u0000" in encoded and _ESCAPED_NUL.search(encoded):
        raise JSONEncodeError("strings must not contain the NUL character (\\x00)")
    return encoded


def _explain(error: TypeError) -> str:
    text = str(error)
    if "Integer exceeds 64-bit range" in text:
        return "integers must fit in 64 bits; store larger numbers as strings"
    if "Dict key must be str" in text:
        return "object keys must be strings"
    return text
