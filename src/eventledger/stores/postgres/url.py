"""The PostgreSQL store's URL: libpq's, plus settings eventledger takes for itself."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventledger.errors import InvalidInput

__all__ = ["OUR_SETTINGS", "check_schema", "int_setting", "redact", "split_url"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
OUR_SETTINGS = {"schema", "pool_min_size", "pool_max_size", "application_name"}


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Separate eventledger's own settings from the URL handed to asyncpg."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in OUR_SETTINGS}
    rest = [(k, v) for k, v in query if k not in OUR_SETTINGS]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def int_setting(settings: dict[str, str], name: str, default: int) -> int:
    text = settings.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {text!r}") from None


def check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidInput(
            f"schema {schema!r} is not valid: use lower-case letters, digits and '_',"
            " starting with a letter or '_', at most 63 characters"
        )
    return schema
