"""The admin page's tests: a real server process on a loopback port (SQLite and
PostgreSQL), and Debian's Chromium driven by Playwright.

Chromium comes from ``$EVENTLEDGER_CHROMIUM`` or the ``chromium`` on the PATH
(``scripts/test`` installs Debian's package when it is missing). Without one these
tests fail and say how to get it; they are never skipped. Screenshots of every page go
to ``test-artifacts/admin/<backend>/`` (or ``$EVENTLEDGER_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from eventledger.stores.postgres import split_url
from tests.postgres_urls import with_settings

ROOT = Path(__file__).resolve().parents[2]
SEED_TIMEOUT = 60.0


@dataclass
class Server:
    backend: str
    base_url: str
    store_url: str
    keys: dict[str, str]
    flag: Path
    artefacts: Path

    def api(self, key: str = "admin") -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.keys[key]}"},
            timeout=30,
        )


def chromium_path() -> str:
    found = os.environ.get("EVENTLEDGER_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "the admin page's browser tests need Chromium: apt-get install chromium"
            " (scripts/test does it when it can), or set EVENTLEDGER_CHROMIUM to its path"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _drop_schema(postgres_url: str, schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(split_url(postgres_url)[0])
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    # Playwright's sync API keeps an event loop running in this thread: use another.
    worker = threading.Thread(target=lambda: asyncio.run(drop()))
    worker.start()
    worker.join(30)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    backend: str = request.param
    folder = tmp_path_factory.mktemp(f"admin-{backend}")
    schema = None
    if backend == "sqlite":
        store_url = f"sqlite:///{folder}/events.db"
    else:
        postgres_url: str = request.getfixturevalue("postgres_url")
        schema = f"admin_{uuid.uuid4().hex[:12]}"
        store_url = with_settings(postgres_url, schema=schema)
    flag = folder / "fail-stock-audit"
    flag.write_text("the stock audit fails while this file exists\n")
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 (our own test server)
        [sys.executable, "-m", "tests.admin.server", store_url, str(port), str(flag)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        keys = json.loads(process.stdout.readline())
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_seeded(base_url, keys["admin"], process)
        artefacts = Path(os.environ.get("EVENTLEDGER_TEST_ARTIFACTS", ROOT / "test-artifacts"))
        artefacts = artefacts / "admin" / backend
        artefacts.mkdir(parents=True, exist_ok=True)
        yield Server(backend, base_url, store_url, keys, flag, artefacts)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        if schema is not None:
            _drop_schema(request.getfixturevalue("postgres_url"), schema)


def _wait_until_seeded(base_url: str, key: str, process: subprocess.Popen[str]) -> None:
    """Until the seed ran and every projection has caught up with it."""
    deadline = time.monotonic() + SEED_TIMEOUT
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the test server ended: {output}")
        try:
            statuses = httpx.get(f"{base_url}/projections", headers=headers, timeout=5).json()
            letters = httpx.get(f"{base_url}/dead-letters", headers=headers, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            time.sleep(0.2)
            continue
        seeded = any(s["position"] > 0 for s in statuses) and all(
            s["events_behind"] == 0 and s["state"] == "running" for s in statuses
        )
        # line_shares parks one event and stock_audit one per product (4).
        if seeded and len(letters) >= 5:
            return
        time.sleep(0.2)
    raise AssertionError(f"the test server at {base_url} did not finish seeding")


# Module scope, not session: Playwright's sync API runs an event loop in this thread
# while it is open, which the asyncio tests after these would meet.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path())
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    made = browser.new_context(
        base_url=server.base_url, viewport={"width": 1280, "height": 900}, timezone_id="UTC"
    )
    made.set_default_timeout(15_000)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def log_in(page: Page, key: str, start: str = "/admin") -> None:
    page.goto(start)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/admin/login" not in url)


@pytest.fixture
def browser_without_scripts(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    made = browser.new_context(base_url=server.base_url, java_script_enabled=False)
    made.set_default_timeout(15_000)
    yield made
    made.close()
