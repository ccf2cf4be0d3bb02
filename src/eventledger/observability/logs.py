"""Log lines that say which message and which read model they are about.

Every record gets the correlation id, causation id and actor of the message being
handled (:mod:`eventledger.context`), the command or projection at work, and the
trace and span ids when tracing is on. The default format is a readable line;
``json`` writes one JSON object per line, for log collectors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from eventledger.context import current_context

__all__ = ["ContextFilter", "JsonFormatter", "logging_config", "working_on"]

FIELDS = ("correlation_id", "causation_id", "actor", "command", "projection")

_NOTHING: Mapping[str, str] = MappingProxyType({})
_work: ContextVar[Mapping[str, str]] = ContextVar("eventledger_log_work", default=_NOTHING)


@contextmanager
def working_on(**labels: str) -> Iterator[None]:
    """Name what the code in the block works on (``command=...``, ``projection=...``)
    in every log record it writes."""
    token = _work.set({**_work.get(), **labels})
    try:
        yield
    finally:
        _work.reset(token)


class ContextFilter(logging.Filter):
    """Adds the message context, the work and the trace to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_context()
        work = _work.get()
        record.correlation_id = context.correlation_id
        record.causation_id = context.causation_id
        record.actor = context.actor
        record.command = work.get("command")
        record.projection = work.get("projection")
        record.trace_id, record.span_id = _trace_ids()
        return True


def _trace_ids() -> tuple[str | None, str | None]:
    from eventledger.observability import tracing

    if not tracing.active():
        return None, None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the
    context fields that are set, and the exception's traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in (*FIELDS, "trace_id", "span_id"):
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """A readable line, with the context fields that are set at its end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = [
            f"{field}={value}"
            for field in ("command", "projection", "correlation_id")
            if (value := getattr(record, field, None)) is not None
        ]
        return f"{text} [{' '.join(extra)}]" if extra else text


def logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (and uvicorn ``log_config``) for eventledger's
    loggers, uvicorn's and the root: `log_format` is ``text`` or ``json``."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format is text or json, not {log_format!r}")
    formatter = "JsonFormatter" if log_format == "json" else "TextFormatter"
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["context"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"main": {"()": f"{__name__}.{formatter}"}},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level},
        "loggers": {
            name: {"handlers": ["main"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
