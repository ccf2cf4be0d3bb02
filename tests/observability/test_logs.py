"""Log lines name the chain and the read model they are about: a projection that parks
an event writes one JSON line with the projection's name and the correlation id of the
request that appended the event (not of whatever the runner did before), and the
readable format puts the same fields at the end of the line."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from eventledger import EventStore, NewEvent, message_context
from eventledger.context import event_metadata
from eventledger.observability.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    logging_config,
    working_on,
)
from eventledger.projections import (
    Context,
    InMemoryProjection,
    ProjectionFailed,
    ProjectionRunner,
    RetryPolicy,
    on,
)
from eventledger.records import RecordedEvent


class Fussy(InMemoryProjection):
    name = "fussy"
    retry = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01)

    @on("Ticked")
    def ticked(self, event: RecordedEvent, context: Context) -> None:
        if event.data.get("poison"):
            raise ValueError("not this one")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What eventledger's loggers write, as JSON lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("eventledger")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_parked_event_is_logged_with_its_projection_and_correlation(
    any_store: EventStore, lines: io.StringIO
) -> None:
    with message_context(correlation_id="req-7", actor="user:ann"):
        poisoned = await any_store.append(
            "Tick-a", [NewEvent("Ticked", {"poison": True}, metadata=event_metadata())]
        )
    with message_context(correlation_id="unrelated"):  # the runner's own context
        async with ProjectionRunner(any_store, [Fussy()], poll_interval=0.05) as runner:
            with pytest.raises(ProjectionFailed):
                await runner.wait_until("fussy", poisoned.position, timeout=10)
    (parked,) = [line for line in parsed(lines) if "parked event" in line["message"]]
    assert parked["level"] == "error"
    assert parked["logger"].startswith("eventledger.")
    assert parked["projection"] == "fussy"
    assert parked["correlation_id"] == "req-7"
    (event,) = [e async for e in any_store.read_stream("Tick-a")]
    assert parked["causation_id"] == str(event.id)
    assert "not this one" in parked["message"]
    assert parked["time"].endswith("+00:00")
    assert "command" not in parked  # fields that are not set are left out


def test_the_readable_format_ends_with_the_fields_that_are_set() -> None:
    record = logging.LogRecord("eventledger.x", logging.INFO, __file__, 1, "hello", (), None)
    with message_context(correlation_id="req-1"), working_on(command="PlaceOrder"):
        ContextFilter().filter(record)
    text = TextFormatter().format(record)
    assert text.endswith("INFO eventledger.x: hello [command=PlaceOrder correlation_id=req-1]")
    as_json = json.loads(JsonFormatter().format(record))
    assert (as_json["command"], as_json["correlation_id"]) == ("PlaceOrder", "req-1")


def test_an_exception_is_one_json_line_with_its_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "eventledger.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exception"]


def test_the_log_format_is_text_or_json() -> None:
    with pytest.raises(ValueError, match="text or json, not 'xml'"):
        logging_config("xml")
    config = logging_config("json", "DEBUG")
    assert config["formatters"]["main"]["()"].endswith("JsonFormatter")
