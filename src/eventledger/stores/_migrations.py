"""Versioned schema migrations, one SQL file each, next to the backend that runs them.

Files are named ``NNNN_what.sql`` under ``stores/sql/<backend>/``; the number
is the schema version the file brings the database to. Backends record each
applied version in their schema table, in the same transaction as the change.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations of `backend`, in order. Versions must run 1, 2, 3... without gaps."""
    folder = resources.files("eventledger.stores").joinpath("sql", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations of {backend} are not numbered 1..n: {found!r}")
    return found


def latest_version(backend: str) -> int:
    return len(load_migrations(backend))
