"""What changed between two states of an aggregate, field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "diff"]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    """Where, as ``field.sub[2]``."""
    kind: str
    """``added``, ``removed`` or ``changed``."""
    before: Any
    after: Any


def diff(before: Any, after: Any) -> list[Change]:
    """The fields that differ, in order (nested objects and lists are walked into).

    >>> [c.path for c in diff({"a": 1, "b": {"c": [1, 2]}}, {"a": 2, "b": {"c": [1]}})]
    ['a', 'b.c[1]']
    """
    changes: list[Change] = []
    _walk("", before, after, changes)
    return changes


def _walk(path: str, before: Any, after: Any, out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*before, *(k for k in after if k not in before)]:
            _walk(
                f"{path}.{key}" if path else str(key),
                before.get(key, _MISSING),
                after.get(key, _MISSING),
                out,
            )
    elif isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            _walk(
                f"{path}[{index}]",
                before[index] if index < len(before) else _MISSING,
                after[index] if index < len(after) else _MISSING,
                out,
            )
    elif before is _MISSING:
        out.append(Change(path, "added", None, after))
    elif after is _MISSING:
        out.append(Change(path, "removed", before, None))
    elif before != after or type(before) is not type(after):
        out.append(Change(path, "changed", before, after))
