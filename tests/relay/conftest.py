"""NATS for the relay tests: the machine's server (``EVENTLEDGER_TEST_NATS_URL``, else
nats://127.0.0.1:4222), or a throwaway ``nats-server -js`` when nothing listens there.
Never skipped: without either, the tests fail and say why.

Each test gets a JetStream stream and a subject prefix of its own, deleted afterwards
(streams may not share subjects, and other sessions use the same server).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
import pytest
import pytest_asyncio
from nats.js.api import AckPolicy, ConsumerConfig

from eventledger import EventStore, open_store
from eventledger.relay import NatsRelay

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "EVENTLEDGER_TEST_NATS_URL"
DEFAULT_URL = "nats://127.0.0.1:4222"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 1):
            return True
    except OSError:
        return False


class NatsServer:
    """A throwaway ``nats-server -js`` on a loopback port; its JetStream files stay in
    `folder` across stops, as a real server's would."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not on PATH: install it (apt-get install nats-server)")
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(  # noqa: S603 - the test's own server
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not listening(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"nats-server did not start on {self.url}")
            time.sleep(0.05)

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(how)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    configured = os.environ.get(ENV_VAR)
    if configured:
        if not listening(configured):
            pytest.fail(f"{ENV_VAR} is {configured}, but nothing listens there")
        yield configured
        return
    if listening(DEFAULT_URL):
        yield DEFAULT_URL
        return
    if shutil.which("nats-server") is None:
        pytest.fail(
            f"no NATS for the relay tests: nothing listens at {DEFAULT_URL}, {ENV_VAR} is not"
            " set and nats-server is not on PATH (start one: nats-server -js)"
        )
    with tempfile.TemporaryDirectory(prefix="eventledger-nats-") as folder:
        server = NatsServer(Path(folder))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@dataclass(frozen=True)
class Target:
    """A stream and subject prefix of the test's own on a NATS server."""

    url: str
    stream: str
    prefix: str

    def relay(self, **options: Any) -> NatsRelay:
        chosen = {"stream": self.stream, "subject_prefix": self.prefix, **options}
        return NatsRelay(self.url, **chosen)


def new_target(url: str) -> Target:
    tag = uuid.uuid4().hex[:12]
    return Target(url, f"TEST_{tag}", f"test{tag}")


async def delete_stream(target: Target) -> None:
    client = await nats.connect(target.url, allow_reconnect=False, max_reconnect_attempts=1)
    try:
        await client.jetstream().delete_stream(target.stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await client.close()


@pytest_asyncio.fixture
async def target(nats_url: str) -> AsyncIterator[Target]:
    made = new_target(nats_url)
    yield made
    await delete_stream(made)


@pytest_asyncio.fixture
async def store(shared_store_url: str) -> AsyncIterator[EventStore]:
    """A SQLite file or a PostgreSQL schema of the test's own, open."""
    opened = await open_store(shared_store_url)
    yield opened
    await opened.close()


@dataclass(frozen=True)
class Message:
    subject: str
    headers: dict[str, str]
    body: bytes
    sequence: int


async def messages_of(target: Target, timeout: float = 30.0) -> list[Message]:
    """Every message of the target's stream, in the stream's order."""
    client = await nats.connect(target.url, allow_reconnect=False, max_reconnect_attempts=1)
    try:
        js = client.jetstream()
        total = (await js.stream_info(target.stream)).state.messages
        found: list[Message] = []
        if total == 0:
            return found
        sub = await js.pull_subscribe(
            f"{target.prefix}.>",
            stream=target.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30.0),
        )
        deadline = time.monotonic() + timeout
        while len(found) < total:
            assert time.monotonic() < deadline, f"read {len(found)} of {total} messages"
            try:
                batch = await sub.fetch(min(1000, total - len(found)), timeout=2)
            except nats.errors.TimeoutError:
                continue
            found += [
                Message(m.subject, dict(m.headers or {}), m.data, m.metadata.sequence.stream)
                for m in batch
            ]
        await sub.unsubscribe()
        return found
    finally:
        await client.close()


async def eventually(check: Any, timeout: float, what: str) -> Any:
    """Poll the async `check` until it returns something true; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.05)


async def start_relay(
    url: str, target: Target, log: Path, *options: str
) -> asyncio.subprocess.Process:
    """`python -m eventledger relay` to the target (pages of 10, a 1 s lease, `options`
    after); returns once it said it started. Its stderr goes to `log`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLEDGER_STORE")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    with log.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "eventledger",
            "relay",
            "--to",
            target.url,
            "--stream",
            target.stream,
            "--subject-prefix",
            target.prefix,
            "--batch-size",
            "10",
            "--lease-ttl",
            "1",
            "--store",
            url,
            *options,
            cwd=log.parent,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), 60)
    assert first.decode().rstrip().endswith(": started"), (first, text_of(log))
    return process


def text_of(path: Path) -> str:
    return path.read_text()


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)  # no clean-up runs
    await asyncio.wait_for(process.wait(), 10)
