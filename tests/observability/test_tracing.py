"""Traces follow an order through the fulfilment process: the caller's request, the
command, its append, the process step that reacted to the event (seconds later, in the
runner's task), the command it sent and that command's append, in one tree, on SQLite
and PostgreSQL, recorded by OpenTelemetry's SDK in a server process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.observability.traced import CALLER_SPAN, CALLER_TRACE

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


def spans_of(store_url: str) -> list[dict[str, Any]]:
    done = subprocess.run(  # noqa: S603 (our own test script)
        [sys.executable, "-m", "tests.observability.traced", store_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_an_order_is_one_trace_from_the_request_to_the_process_and_its_command(
    store_url: str,
) -> None:
    spans = spans_of(store_url)
    by_id = {span["id"]: span for span in spans}

    def children(parent: dict[str, Any], name: str) -> list[dict[str, Any]]:
        return [s for s in spans if s["parent"] == parent["id"] and s["name"] == name]

    (request,) = [s for s in spans if s["trace"] == CALLER_TRACE and s["kind"] == "SERVER"]
    assert request["name"] == "POST /commands/PayOrder"
    assert request["parent"] == CALLER_SPAN  # the caller's traceparent is continued
    assert request["attributes"]["http.status_code"] == 200
    (command,) = children(request, "command PayOrder")
    assert command["attributes"]["eventledger.outcome"] == "ok"
    (append,) = children(command, "append Order-o-1")
    assert append["attributes"]["eventledger.events"] == 1
    # The runner handled OrderPaid in its own task; its step continues the command's trace.
    (step,) = children(command, "process order_fulfilment handles OrderPaid")
    assert step["kind"] == "CONSUMER"
    (ship,) = children(step, "command ShipOrder")
    (shipped,) = children(ship, "append Order-o-1")
    assert {s["trace"] for s in (request, command, append, step, ship, shipped)} == {CALLER_TRACE}
    # Read models' batches are traces of their own, linked to the events' traces.
    batches = [s for s in spans if s["name"] == "projection order_list batch"]
    assert batches
    assert any(CALLER_TRACE in batch["links"] for batch in batches)
    assert all(batch["kind"] == "CONSUMER" for batch in batches)
    assert all(by_id.get(batch["parent"] or "") is None for batch in batches)
