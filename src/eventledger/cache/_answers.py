"""Queries as cache keys, and answers as bytes that decode to equal answers.

A query's key is a hash of a canonical form in which values of different types
never meet (``1``, ``1.0``, ``Decimal("1")``, ``"1"`` and ``True`` are five keys): two
queries share a key only if they are the same query. An answer is kept only if its
encoding decodes to an equal value of the same types (documents are JSON; rows of SQL
tables carry their values' types); anything else is :class:`Uncacheable`.

>>> from decimal import Decimal
>>> key_of("find", [{"total": Decimal("10")}, ["-total"], 10, 0]) != key_of(
...     "find", [{"total": 10}, ["-total"], 10, 0])
True
>>> page = (["day", "revenue"], [{"day": "2024-01-02", "revenue": Decimal("9.50")}])
>>> decode("rows", encode("rows", page))
(['day', 'revenue'], [{'day': '2024-01-02', 'revenue': Decimal('9.50')}])
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import orjson

from eventledger.storage import Range

__all__ = ["KINDS", "Uncacheable", "decode", "encode", "key_of"]

FORMAT = 1
"""Raised when keys or encodings change, so that old entries are never read."""
KINDS = ("get", "find", "count", "rows")


class Uncacheable(Exception):
    """A query or answer the cache cannot represent exactly; it is computed, not kept."""


def key_of(kind: str, query: Any) -> str:
    """The hash of a query's canonical form."""
    text = orjson.dumps([FORMAT, kind, _canonical(query)])
    return hashlib.sha256(text).hexdigest()[:40]


def _canonical(value: Any) -> Any:
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return value if -(1 << 63) <= value < (1 << 63) else ["i", str(value)]
    if kind is float:
        return ["f", repr(value)]
    if kind is Decimal:
        return ["d", str(value)]
    if kind is Range:
        return ["r", [[op, _canonical(bound)] for op, bound in value.bounds()]]
    if kind in (list, tuple):
        return ["l", [_canonical(item) for item in value]]
    if kind in (set, frozenset):
        items = [orjson.dumps(_canonical(item)).decode() for item in value]
        return ["s", sorted(items)]
    if isinstance(value, Mapping) and all(type(k) is str for k in value):
        return ["m", [[k, _canonical(value[k])] for k in sorted(value)]]
    raise Uncacheable(f"a query value of type {kind.__name__}")


def encode(kind: str, answer: Any) -> bytes:
    """`answer` as bytes for the cache, or :class:`Uncacheable`."""
    try:
        if kind == "rows":
            columns, rows = answer
            packed = [list(columns), [[[k, _value(v)] for k, v in row.items()] for row in rows]]
            return orjson.dumps(packed)
        if kind == "count":
            if type(answer) is not int:
                raise Uncacheable(f"a count of type {type(answer).__name__}")
            return orjson.dumps(answer)
        return orjson.dumps(_plain(answer))
    except (TypeError, orjson.JSONEncodeError) as error:
        raise Uncacheable(str(error)) from None


def decode(kind: str, body: bytes) -> Any:
    """The answer `body` encodes."""
    value = orjson.loads(body)
    if kind == "rows":
        columns, rows = value
        return columns, [{k: _typed(v) for k, v in row} for row in rows]
    return value


def _plain(value: Any) -> Any:
    """Documents as they came from JSON: only JSON's own types (floats that are finite,
    since orjson would write others as null)."""
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        if not -(1 << 63) <= value < (1 << 64):
            raise Uncacheable("an integer beyond 64 bits")
        return value
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise Uncacheable("a float that is not finite")
        return value
    if kind is list:
        return [_plain(item) for item in value]
    if kind is dict:
        for key in value:
            if type(key) is not str:
                raise Uncacheable("a key that is not a string")
        return {k: _plain(v) for k, v in value.items()}
    raise Uncacheable(f"a value of type {kind.__name__} in a document")


# Values of SQL rows: plain JSON for None, booleans, strings and 64-bit integers; a
# [tag, text] pair for the rest.
_TAGS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    float: ("f", repr),
    Decimal: ("d", str),
    bytes: ("b", bytes.hex),
    dt.datetime: ("dt", dt.datetime.isoformat),
    dt.date: ("da", dt.date.isoformat),
    dt.time: ("ti", dt.time.isoformat),
    dt.timedelta: ("td", lambda v: [v.days, v.seconds, v.microseconds]),
    uuid.UUID: ("u", str),
    int: ("i", str),
}
_UNTAG: dict[str, Callable[[Any], Any]] = {
    "f": float,
    "d": Decimal,
    "b": bytes.fromhex,
    "dt": dt.datetime.fromisoformat,
    "da": dt.date.fromisoformat,
    "ti": dt.time.fromisoformat,
    "td": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "u": uuid.UUID,
    "i": int,
}


def _value(value: Any) -> Any:
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int and -(1 << 63) <= value < (1 << 63):
        return value
    if kind in (dt.datetime, dt.time) and not isinstance(value.tzinfo, dt.timezone | None):
        raise Uncacheable("a time in a zone that is not a fixed offset")
    tagged = _TAGS.get(kind)
    if tagged is None:
        raise Uncacheable(f"a value of type {kind.__name__} in a row")
    tag, text = tagged
    return [tag, text(value)]


def _typed(value: Any) -> Any:
    if isinstance(value, list):
        return _UNTAG[value[0]](value[1])
    return value
