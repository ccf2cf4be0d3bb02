"""docs/http.md runs: every curl example of the page, in order, against a real server.

The server is the Orders example on SQLite in a temporary folder, with the two keys
the page makes (``$KEY`` with every scope, ``$SHOP_KEY`` with read and write). Each
example is a ```sh block whose commands all start with ``curl``; it runs in
``bash -c`` with ``$EL`` set to the server's address. The answer shown after it
(a ```json or ```http block) must match what the server said: every key shown with
its value, ``"..."`` standing for any value (or, closing a list, for more items),
and ``...`` in a string for any text there. A few facts per
example are checked besides (``CHECKS``), in page order.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from eventledger import open_store
from eventledger.examples.orders.app import application
from eventledger.http import ApiKeys, create_app
from tests.http.conftest import serve

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "http.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
ANY = "..."
LIVE = "/events/live"
CURL_TIMED_OUT = 28  # curl's exit code when --max-time cuts it short


@dataclass
class Example:
    script: str
    line: int
    answer_kind: str | None = None
    answer: str | None = None


def examples(text: str) -> list[Example]:
    """The curl examples of a page, each with the answer block that follows it."""
    blocks = [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)
    ]
    found: list[Example] = []
    for index, (kind, body, line) in enumerate(blocks):
        if kind != "sh" or not _all_curl(body):
            continue
        example = Example(body, line)
        if index + 1 < len(blocks) and blocks[index + 1][0] in ("json", "http", "text"):
            example.answer_kind, example.answer = blocks[index + 1][0], blocks[index + 1][1]
        found.append(example)
    return found


def _all_curl(body: str) -> bool:
    commands = re.sub(r"\\\n", " ", body).splitlines()
    commands = [c.strip() for c in commands if c.strip() and not c.strip().startswith("#")]
    return bool(commands) and all(c.startswith("curl ") for c in commands)


def json_documents(text: str) -> list[Any]:
    """The JSON documents of `text`, one after another (curl prints no separator)."""
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return documents
        document, index = decoder.raw_decode(text, index)
        documents.append(document)


def mismatch(shown: Any, actual: Any, path: str = "") -> str | None:
    """Where `actual` is not what the page shows (None when it is)."""
    if shown == ANY:
        return None
    if isinstance(shown, str) and ANY in shown and isinstance(actual, str):
        pattern = ".*".join(re.escape(part) for part in shown.split(ANY))
        if re.fullmatch(pattern, actual, re.DOTALL):
            return None
        return f"{path}: {actual!r}, the page shows {shown!r}"
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return f"{path}: {actual!r} is not an object"
        for key, value in shown.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            found = mismatch(value, actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return f"{path}: {actual!r} is not a list"
        more = bool(shown) and shown[-1] == ANY
        items = shown[:-1] if more else shown
        if len(actual) < len(items) or (not more and len(actual) != len(items)):
            return f"{path}: {len(actual)} items, the page shows {len(items)}"
        for index, item in enumerate(items):
            found = mismatch(item, actual[index], f"{path}[{index}]")
            if found:
                return found
        return None
    if type(shown) is not type(actual) or shown != actual:
        return f"{path}: {actual!r}, the page shows {shown!r}"
    return None


@dataclass
class Run:
    """What one example printed, taken apart."""

    output: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    documents: list[Any] = field(default_factory=list)

    @property
    def body(self) -> Any:
        (document,) = self.documents
        return document


def take_apart(output: str, kind: str | None) -> Run:
    run = Run(output)
    body = output
    if output.startswith("HTTP/"):  # curl -i: a status line and headers first
        head, _, body = output.replace("\r\n", "\n").partition("\n\n")
        status_line, *header_lines = head.splitlines()
        run.status = int(status_line.split()[1])
        for header in header_lines:
            name, _, value = header.partition(":")
            run.headers[name.strip().lower()] = value.strip()
    if kind in ("json", "http"):
        run.documents = json_documents(body)
    return run


def compare(example: Example, run: Run) -> None:
    """The server's answer is the one the page shows after the example."""
    if example.answer_kind not in ("json", "http"):
        return
    assert example.answer is not None
    shown_body = example.answer
    where = f"docs/http.md, the example at line {example.line}"
    if example.answer_kind == "http":
        head, _, shown_body = example.answer.partition("\n\n")
        status_line, *header_lines = head.splitlines()
        assert run.status == int(status_line.split()[1]), f"{where}: status {run.status}"
        for header in header_lines:
            name, _, value = header.partition(":")
            actual = run.headers.get(name.strip().lower())
            assert actual is not None, f"{where}: no {name} header"
            assert value.strip() in (ANY, actual), f"{where}: {name}: {actual}"
    shown = json_documents(shown_body)
    assert len(shown) == len(run.documents), f"{where}: {len(run.documents)} answers"
    for page, actual in zip(shown, run.documents, strict=True):
        problem = mismatch(page, actual)
        assert problem is None, f"{where}: {problem}\n{json.dumps(actual, indent=2)}"


# --- facts per example, in page order: (a piece of its command, the check) ---------------

Check = Callable[[Run, dict[str, str]], None]
CHECKS: list[tuple[str, Check]] = []


def check(marker: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS.append((marker, function))
        return function

    return register


def is_problem(run: Run, status: int, slug: str) -> dict[str, Any]:
    problem: dict[str, Any] = run.body
    assert (problem["status"], problem["type"].rsplit("/", 1)[-1]) == (status, slug), problem
    if run.status is not None:
        assert run.status == status
        assert run.headers["content-type"] == "application/problem+json"
    return problem


@check('curl -s -i "$EL/streams"')
def _no_key(run: Run, env: dict[str, str]) -> None:
    is_problem(run, 401, "unauthorized")
    assert run.headers["www-authenticate"].startswith("Bearer")


@check('"$EL/dead-letters" -H "Authorization: Bearer $SHOP_KEY"')
def _no_scope(run: Run, env: dict[str, str]) -> None:
    assert "'admin' scope" in is_problem(run, 403, "forbidden")["detail"]


@check('curl -s -i -d \'{"sku": "BOOK"')
def _not_json(run: Run, env: dict[str, str]) -> None:
    assert "JSON" in is_problem(run, 415, "unsupported-media-type")["detail"]


@check("/commands/AddStock")
def _add_stock(run: Run, env: dict[str, str]) -> None:
    assert '"replayed":false' in run.output
    assert run.body["writes"][0]["stream_id"] == "Stock-BOOK"


@check("Idempotency-Key: checkout-o-1")
def _place(run: Run, env: dict[str, str]) -> None:
    assert '"replayed":false' in run.output
    assert run.body["caught_up"] is True
    env["FIRST_COMMAND_ID"] = run.body["command_id"]


@check('-s -i --json \'{"order_id": "o-1"')
def _place_again(run: Run, env: dict[str, str]) -> None:
    assert run.headers["idempotent-replayed"] == "true"
    assert '"replayed":true' in run.output
    assert run.body["command_id"] == env["FIRST_COMMAND_ID"]


@check('"order_id": "o-9"')
def _key_reused(run: Run, env: dict[str, str]) -> None:
    is_problem(run, 422, "idempotency-key-reused")


@check('"unit_price": "cheap"')
def _invalid(run: Run, env: dict[str, str]) -> None:
    assert "application/problem+json" in run.output
    problem = is_problem(run, 422, "invalid-command")
    paths = [".".join(map(str, error["path"])) for error in problem["errors"]]
    assert paths == ["customer_id", "lines.0.quantity", "lines.0.unit_price"]


@check('"amount": "20.00"')
def _refused(run: Run, env: dict[str, str]) -> None:
    assert "costs 25.00" in is_problem(run, 409, "rule-broken")["detail"]


@check("/commands/PayOrder?wait=order_fulfilment")
def _pay(run: Run, env: dict[str, str]) -> None:
    assert (run.body["value"], run.body["caught_up"]) == ("paid", True)


@check('"$EL/streams/Order-o-1" -H')
def _stream(run: Run, env: dict[str, str]) -> None:
    events = run.body["items"]
    assert [e["type"] for e in events] == ["OrderCreated", "OrderPaid", "OrderShipped"]
    assert events[0]["metadata"]["causation_id"] == env["FIRST_COMMAND_ID"]
    # What the page asks its reader to take from this answer, for later examples.
    env["PAID_AT"] = events[1]["recorded_at"]
    env["SHIPPED_EVENT"] = events[2]["id"]


@check("Order-o-1?limit=2")
def _first_page(run: Run, env: dict[str, str]) -> None:
    assert run.body["next_version"] == 3


@check("Order-o-1?from_version=3")
def _next_page(run: Run, env: dict[str, str]) -> None:
    assert run.body["next_version"] is None


@check("backwards=true")
def _backwards(run: Run, env: dict[str, str]) -> None:
    assert [e["version"] for e in run.body["items"]] == [3]


@check('"$EL/streams/Order-o-1/state" -H')
def _state_now(run: Run, env: dict[str, str]) -> None:
    assert run.body["state"]["status"] == "shipped"


@check("state?version=1")
def _state_then(run: Run, env: dict[str, str]) -> None:
    assert run.body["state"]["status"] == "created"


@check('"at=$PAID_AT"')
def _state_at(run: Run, env: dict[str, str]) -> None:
    assert (run.body["version"], run.body["state"]["status"]) == (2, "paid")


@check('"$EL/events?limit=2"')
def _log_page(run: Run, env: dict[str, str]) -> None:
    assert [e["position"] for e in run.body["items"]] == [1, 2]


@check('"$EL/events?after=2"')
def _log_rest(run: Run, env: dict[str, str]) -> None:
    types = [e["type"] for e in run.body["items"]]
    assert sorted(types[:2]) == ["OrderPaid", "StockReserved"]


@check('"$EL/events/$SHIPPED_EVENT"')
def _one_event(run: Run, env: dict[str, str]) -> None:
    assert run.body["id"] == env["SHIPPED_EVENT"]


def messages(output: str) -> list[tuple[int, str]]:
    """The (id, event) of each Server-Sent Event message."""
    return [
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^id: (\d+)\nevent: (\S+)\ndata: \{.*\}$", output, re.MULTILINE)
    ]


@check("types=OrderPaid,OrderShipped")
def _live(run: Run, env: dict[str, str]) -> None:
    assert run.output.startswith("retry: 2000\n")
    assert re.search(r"^id: \d+$", run.output, re.MULTILINE)
    found = messages(run.output)
    assert [event for _, event in found] == ["OrderPaid", "OrderShipped"]
    assert found[1][0] == 5


@check("Last-Event-ID: 5")
def _live_resumed(run: Run, env: dict[str, str]) -> None:
    assert messages(run.output) == [(6, "StockDispatched")]


@check('"order_id": "o-2"')
def _more_orders(run: Run, env: dict[str, str]) -> None:
    assert [d["writes"][0]["stream_id"] for d in run.documents] == ["Order-o-2", "Order-o-3"]


@check('"$EL/read-models"')
def _read_models(run: Run, env: dict[str, str]) -> None:
    assert "order_fulfilment" not in {m["name"] for m in run.body}


@check("documents/o-1")
def _document(run: Run, env: dict[str, str]) -> None:
    assert run.body["status"] == "shipped"


@check("status=cancelled")
def _cancelled(run: Run, env: dict[str, str]) -> None:
    assert [d["order_id"] for d in run.body["items"]] == ["o-2"]


@check("total.gte=20")
def _range(run: Run, env: dict[str, str]) -> None:
    assert [d["total"] for d in run.body["items"]] == ["37.50", "25.00"]


@check("customer_id=alice&customer_id=bob")
def _either(run: Run, env: dict[str, str]) -> None:
    assert [d["order_id"] for d in run.body["items"]] == ["o-1", "o-2"]


@check("/chain")
def _chain(run: Run, env: dict[str, str]) -> None:
    assert [link["name"] for link in run.body["causes"]] == ["PayOrder", "OrderPaid", "ShipOrder"]
    assert run.body["subject"]["id"] == env["SHIPPED_EVENT"]


@check('"$EL/projections/order_list"')
def _status(run: Run, env: dict[str, str]) -> None:
    assert run.body["state"] == "running"


@check("/rebuild")
def _rebuild(run: Run, env: dict[str, str]) -> None:
    assert run.status == 202


@check("/reset")
def _reset(run: Run, env: dict[str, str]) -> None:
    assert run.body["name"] == "customer_orders"


@check('"$EL/dead-letters" -H "Authorization: Bearer $KEY"')
def _dead_letters(run: Run, env: dict[str, str]) -> None:
    assert run.body == []


@check("instances?status=failed")
def _instances(run: Run, env: dict[str, str]) -> None:
    assert [i["instance_id"] for i in run.body] == ["o-2"]


@check("/subjects/dana/export")
def _export(run: Run, env: dict[str, str]) -> None:
    paths = sorted(v["path"] for v in run.body["values"])
    assert paths == ["customer.email", "customer.name", "customer.shipping_address"]


@check("/subjects/dana/forget")
def _forget(run: Run, env: dict[str, str]) -> None:
    forgotten, page = run.documents
    assert forgotten["position"] > 0
    assert "Dana" not in json.dumps(page)


@check("/healthz")
def _health(run: Run, env: dict[str, str]) -> None:
    assert [d["status"] for d in run.documents] == ["ok", "ready"]


@check("/openapi.json")
def _openapi(run: Run, env: dict[str, str]) -> None:
    assert run.output.splitlines() == ["200", "200 text/html; charset=utf-8"]


@check('curl -s -i "$EL/healthz"')
def _hardened(run: Run, env: dict[str, str]) -> None:
    assert run.headers["cross-origin-resource-policy"] == "same-origin"
    assert "access-control-allow-origin" not in run.headers


# --- the test -----------------------------------------------------------------------------


def curl_version() -> tuple[int, ...] | None:
    """The version of the curl on the PATH, or None without one."""
    curl = shutil.which("curl")
    if curl is None:
        return None
    done = subprocess.run([curl, "--version"], capture_output=True, text=True, check=True)  # noqa: S603
    return tuple(int(part) for part in done.stdout.split()[1].split(".")[:2])


async def test_the_curl_examples_of_the_http_page_run(tmp_path: Path) -> None:
    version = curl_version()
    if version is None or version < (7, 82):
        pytest.skip(f"the page's examples need curl 7.82 or later (--json), not {version}")
    found = examples(PAGE.read_text())
    markers = [marker for marker, _ in CHECKS]
    assert len(found) == len(CHECKS), f"the page has {len(found)} examples, CHECKS {len(CHECKS)}"
    for example, marker in zip(found, markers, strict=True):
        assert marker in example.script, f"line {example.line}: expected {marker!r}"

    url = f"sqlite:///{tmp_path}/orders.db"
    async with await open_store(url) as store:
        keys = ApiKeys(store)
        _, shop = await keys.create("service:shop", ["read", "write"])
        _, ops = await keys.create("user:ops", ["read", "write", "admin"])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # no ~/.curlrc
        "LANG": "C.UTF-8",
        "KEY": ops,
        "SHOP_KEY": shop,
    }
    async with serve(create_app(application, url)) as base:
        env["EL"] = base
        for example, (_, facts) in zip(found, CHECKS, strict=True):
            where = f"docs/http.md, the example at line {example.line}"
            process = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                example.script,
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 30)
            allowed = {0, CURL_TIMED_OUT} if LIVE in example.script else {0}
            assert process.returncode in allowed, f"{where}: exit {process.returncode}\n{err!r}"
            run = take_apart(out.decode(), example.answer_kind)
            compare(example, run)
            facts(run, env)
    schema = json.loads((tmp_path / "openapi.json").read_text())
    assert "/commands/PlaceOrder" in schema["paths"]
