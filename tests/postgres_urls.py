"""Helpers for PostgreSQL URLs in tests."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def with_settings(url: str, **settings: str) -> str:
    """`url` with query settings added or replaced."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(settings)
    return urlunsplit(parts._replace(query=urlencode(query)))
