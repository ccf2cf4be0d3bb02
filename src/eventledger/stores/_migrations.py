"""Versioned schema migrations, one SQL file each, next to the backend that runs them.

Files are named ``NNNN_what.sql`` in the ``sql`` folder of the backend's package; the number
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


def load_migrations(package: str | None) -> list[Migration]:
    """The migrations of a backend's `package`, in order. Versions run 1, 2, 3... without gaps."""
    if not package:
        raise RuntimeError("load_migrations needs the backend's package name")
    folder = resources.files(package).joinpath("sql")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations of {package} are not numbered 1..n: {found!r}")
    return found
