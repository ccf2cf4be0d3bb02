"""The PostgreSQL store's URL: libpq's, plus settings eventledger takes for itself.

=============================== ======= ==================================================
setting                         default meaning
=============================== ======= ==================================================
``schema``                      eventledger the schema that holds the tables
``application_name``            eventledger how the connections show in ``pg_stat_activity``
``pool_min_size``               1       connections opened at start
``pool_max_size``               10      connections at most
``pool_timeout``                10      seconds to wait for a free connection
``pool_max_lifetime``           1800    seconds before a connection is replaced
``statement_timeout``           60      seconds a statement may run (0: no limit)
``lock_timeout``                10      seconds a statement may wait for a lock (0: no limit)
``idle_in_transaction_timeout`` 60      seconds a session may sit idle in a transaction
``horizon_warning``             30      seconds readers may be held back before a warning
``read_only``                   false   no migrations and no writes (for a standby)
=============================== ======= ==================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventledger.errors import InvalidInput

__all__ = ["OUR_SETTINGS", "PostgresSettings", "check_schema", "redact", "split_url"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SECONDS = {
    "pool_timeout": 10.0,
    "pool_max_lifetime": 1800.0,
    "statement_timeout": 60.0,
    "lock_timeout": 10.0,
    "idle_in_transaction_timeout": 60.0,
    "horizon_warning": 30.0,
}
OUR_SETTINGS = {
    "schema",
    "pool_min_size",
    "pool_max_size",
    "application_name",
    "read_only",
    *_SECONDS,
}


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    dsn: str
    """The URL for the driver: eventledger's own settings taken out."""
    schema: str = "eventledger"
    application_name: str = "eventledger"
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 10.0
    pool_max_lifetime: float = 1800.0
    statement_timeout: float = 60.0
    lock_timeout: float = 10.0
    idle_in_transaction_timeout: float = 60.0
    horizon_warning: float = 30.0
    read_only: bool = False

    @classmethod
    def from_url(cls, url: str) -> PostgresSettings:
        dsn, ours = split_url(url)
        seconds = {name: _seconds(ours, name, default) for name, default in _SECONDS.items()}
        settings = cls(
            dsn,
            schema=check_schema(ours.get("schema", "eventledger")),
            application_name=ours.get("application_name", "eventledger"),
            pool_min_size=_int(ours, "pool_min_size", 1),
            pool_max_size=_int(ours, "pool_max_size", 10),
            read_only=_bool(ours, "read_only"),
            **seconds,
        )
        if not 1 <= settings.pool_min_size <= settings.pool_max_size:
            raise InvalidInput(
                "pool sizes must satisfy 1 <= pool_min_size <= pool_max_size,"
                f" not {settings.pool_min_size} and {settings.pool_max_size}"
            )
        if settings.pool_timeout <= 0 or settings.pool_max_lifetime <= 0:
            raise InvalidInput("pool_timeout and pool_max_lifetime must be more than 0 seconds")
        if not settings.application_name.isprintable() or len(settings.application_name) > 63:
            raise InvalidInput(
                f"application_name is printable and at most 63 characters, not"
                f" {settings.application_name!r}"
            )
        return settings

    def server_settings(self) -> dict[str, str]:
        """What every connection of the store sets when it connects."""
        return {
            # The store's statements are few and prepared once per connection; with custom
            # plans PostgreSQL would plan the append anew on every call.
            "plan_cache_mode": "force_generic_plan",
            "application_name": self.application_name,
            "statement_timeout": _millis(self.statement_timeout),
            "lock_timeout": _millis(self.lock_timeout),
            "idle_in_transaction_session_timeout": _millis(self.idle_in_transaction_timeout),
        }


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


def check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidInput(
            f"schema {schema!r} is not valid: use lower-case letters, digits and '_',"
            " starting with a letter or '_', at most 63 characters"
        )
    return schema


def _int(settings: dict[str, str], name: str, default: int) -> int:
    text = settings.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {text!r}") from None


def _seconds(settings: dict[str, str], name: str, default: float) -> float:
    text = settings.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400 * 365:
        raise InvalidInput(f"{name} is a number of seconds (0 or more), not {text!r}")
    return value


def _bool(settings: dict[str, str], name: str) -> bool:
    text = settings.get(name, "false").lower()
    if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise InvalidInput(f"{name} is true or false, not {text!r}")
    return text in ("true", "1", "yes", "on")


def _millis(seconds: float) -> str:
    return str(round(seconds * 1000))
