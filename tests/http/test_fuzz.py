"""Fuzzing the whole API from its OpenAPI schema (schemathesis): no request gets a 5xx.

The server is real (uvicorn on a loopback port, in a thread of its own) and
holds data, so generated requests hit existing streams, orders and documents
as well as missing ones. Every request carries an admin key, so every route
is reached past its authentication.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from eventledger import open_store
from eventledger.http import ApiKeys, create_app
from tests.http.conftest import orders_application, serve
from tests.postgres_urls import with_settings

SEED = [
    ("/commands/AddStock", {"sku": "BOOK", "quantity": 50}),
    (
        "/commands/PlaceOrder",
        {
            "order_id": "o-1",
            "customer_id": "alice",
            "lines": [{"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}],
        },
    ),
    (
        "/commands/PayOrder?wait=order_list",
        {"order_id": "o-1", "amount": "12.50", "payment_id": "p"},
    ),
]


class Server:
    """The Orders service on a loopback port, served from a thread of its own."""

    def __init__(self, url: str) -> None:
        self.store_url = url
        self.base = ""
        self.key = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the test thread
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with await open_store(self.store_url) as store:
            _, self.key = await ApiKeys(store).create("user:fuzzer", ["read", "write", "admin"])
        # No rate limits: hundreds of admin requests in a few seconds are the point here
        # (the limits have tests of their own).
        app = create_app(
            orders_application(), self.store_url, keepalive_seconds=0.2, rate_limits=None
        )
        async with serve(app) as base:
            self.base = base
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                for path, body in SEED:
                    answer = await client.post(path, json=body, headers=self.headers)
                    assert answer.status_code == 200, answer.text
            self._ready.set()
            await self._stop.wait()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def __enter__(self) -> Server:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("fuzz")
        with Server(f"sqlite:///{folder}/events.db") as server:
            yield server
        return
    postgres: str = request.getfixturevalue("postgres_url")
    schema = f"fuzz_{uuid.uuid4().hex[:12]}"
    try:
        with Server(with_settings(postgres, schema=schema)) as server:
            yield server
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(postgres)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        asyncio.run(drop())


# The schema comes from the app itself (no server needed to list the operations); the
# requests go to the real server.
SCHEMA = schemathesis.openapi.from_dict(
    create_app(orders_application(), "memory://", allow_anonymous=True).openapi()
)


def _operations() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for result in SCHEMA.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"the API's own schema is broken: {result.err()}")
        operation = result.ok()
        found[f"{operation.method.upper()} {operation.path}"] = operation
    return found


OPERATIONS = _operations()
# What a request the schema calls valid may still meet: no key or scope, something that
# does not exist, a business rule or a conflict, its own key used before with other data
# (the fuzzer repeats keys), a read model still catching up.
_STATEFUL = {401, 403, 404, 409, 503, 504}


def _valid_requests_are_accepted(response: Any) -> None:
    """A request the schema says is valid is not refused for its form: the schema is as
    strict as the server (no "valid request rejected")."""
    status = response.status_code
    if status < 400 or status in _STATEFUL:
        return
    if status == 422 and "idempotency-key-reused" in response.text:
        return
    raise AssertionError(
        f"a request valid by the schema was refused with {status}: {response.text[:400]}"
        f"\n{response.request.method} {response.request.url}"
    )


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


# schemathesis's own strategies use `random` inside, which Hypothesis deprecates.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("label", sorted(OPERATIONS))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(
    label: str, mode: GenerationMode, fuzzed_server: Server
) -> None:
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        if operation.path == "/events/live":
            # An endless stream: fuzz its parameters, look at the status only.
            with httpx.stream(
                "GET",
                f"{fuzzed_server.base}{case.formatted_path}",
                params={**(case.query or {}), "after": 0},
                headers={**(case.headers or {}), **fuzzed_server.headers},
                timeout=5,
            ) as response:
                assert response.status_code < 500
            return
        response = case.call(base_url=fuzzed_server.base, headers=fuzzed_server.headers)
        case.validate_response(response, checks=CHECKS)
        if mode is GenerationMode.POSITIVE:
            _valid_requests_are_accepted(response)

    try:
        fuzz()
    except Unsatisfiable:
        # No input of this operation can break its schema (no parameters, or only
        # free-form strings): there is no negative case to send.
        assert mode is GenerationMode.NEGATIVE


def test_after_the_fuzzing_no_read_model_or_process_is_stopped(fuzzed_server: Server) -> None:
    # Whatever the fuzzer got accepted must be something every projection and the
    # fulfilment process can handle (a command whose data a process cannot turn into
    # its next command once parked an event and stopped the process for every order).
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{fuzzed_server.base}/projections", headers=fuzzed_server.headers)
        statuses = answer.json()
        failed = {s["name"]: s["last_error"] for s in statuses if s["state"] == "failed"}
        assert failed == {}
        if all(s["events_behind"] == 0 for s in statuses) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
