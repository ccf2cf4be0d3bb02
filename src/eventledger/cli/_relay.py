"""``eventledger relay``: hand the log to NATS JetStream until stopped (docs/relay.md)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import logging.config
import signal
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import typer

from eventledger.cli import app, opened, run, store_option
from eventledger.cli._output import Output, flush
from eventledger.errors import InvalidInput, OperationalError
from eventledger.observability.logs import logging_config

if TYPE_CHECKING:  # the NATS client is an extra: imported when the command runs
    from eventledger.relay import RelayRunner

REPORT_EVERY = 30.0
"""Seconds between progress lines while the relay moves (state changes print at once)."""


class PersonalChoice(enum.StrEnum):
    redact = "redact"
    clear = "clear"


@app.command("relay")
def relay_command(
    to: str = typer.Option(
        ..., "--to", metavar="URL", help="The NATS server (JetStream on), nats://host:4222."
    ),
    stream: str = typer.Option(
        "EVENTLEDGER", "--stream", metavar="NAME", help="The JetStream stream; made if missing."
    ),
    subject_prefix: str = typer.Option(
        "eventledger",
        "--subject-prefix",
        metavar="PREFIX",
        help="Subjects are PREFIX.<category>.<type>.",
    ),
    category: list[str] = typer.Option(
        [],
        "--category",
        metavar="CATEGORY",
        help="Only events of this stream category (Order for Order-12); repeat for several.",
    ),
    event_type: list[str] = typer.Option(
        [], "--type", metavar="TYPE", help="Only events of this type; repeat for several."
    ),
    name: str = typer.Option(
        "nats",
        "--name",
        metavar="NAME",
        help="The relay's checkpoint and lease: one process at a time runs a name.",
    ),
    personal: PersonalChoice = typer.Option(
        PersonalChoice.redact,
        "--personal",
        help="Personal values: redact (markers in their place) or clear (decrypted;"
        " forgetting a subject cannot reach NATS).",
    ),
    batch_size: int = typer.Option(
        500, "--batch-size", min=1, max=100_000, metavar="N", help="Events per page."
    ),
    lease_ttl: float = typer.Option(
        5.0,
        "--lease-ttl",
        min=0.5,
        metavar="SECONDS",
        help="Another process takes the relay over this long after this one dies.",
    ),
    retry_parked: bool = typer.Option(
        False, "--retry-parked", help="First publish the events it parked again (after a fix)."
    ),
    store: str | None = store_option(),
) -> None:
    """Publish every event (or some categories and types) to a NATS JetStream stream.

    Checkpointed: after a crash it goes on where it was, and JetStream drops the
    copies it publishes again (Nats-Msg-Id is the event id). While NATS is down it
    waits and says so. Runs until Ctrl-C or SIGTERM.

    Example: eventledger relay --to nats://127.0.0.1:4222 --category Order
    """
    out = Output(False)

    async def work() -> int:
        try:
            from eventledger.relay import NatsRelay, RelayRunner
        except ImportError as error:
            raise InvalidInput(str(error)) from None
        relay = NatsRelay(
            to,
            name=name,
            stream=stream,
            subject_prefix=subject_prefix,
            categories=category,
            types=event_type,
            personal=personal.value,
        )
        _quiet_logs()
        opened_store, _ = await opened(store)
        async with opened_store:
            shown = f"relay {name}: NATS {_without_password(to)}, stream {stream}"
            try:
                await relay.connect()
            except OperationalError as error:
                out.note(f"{shown}: {error}; waiting for it")
            except BaseException:
                await relay.close()
                raise
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signal_number, stopping.set)
            runner = RelayRunner(opened_store, [relay], batch_size=batch_size, lease_ttl=lease_ttl)
            async with runner:
                out.line(f"{shown}, subjects {subject_prefix}.<category>.<type>: started")
                flush()
                if retry_parked:
                    await _retry_parked(runner, name, out)
                code = await _report(runner, name, stopping, out)
            (status,) = await runner.status(name)
            out.line(
                f"stopped at position {status.position} ({status.events_behind} behind);"
                f" published {relay.published} events here"
                f" ({relay.duplicates} more were copies JetStream dropped)"
            )
            flush()
            return code

    code = run(work, out)
    if code:
        raise typer.Exit(code)


async def _retry_parked(runner: RelayRunner, name: str, out: Output) -> None:
    subscription = runner.subscription(name)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscription.settled.wait(), runner.settings.lease_ttl + 1)
    if not subscription.active:
        out.note(f"{name} runs in another process: --retry-parked does nothing here")
        return
    for letter in await runner.dead_letters(name):
        await runner.retry(name, letter.id)
        out.line(f"published parked event {letter.event_id} (position {letter.position}) again")


async def _report(runner: RelayRunner, name: str, stopping: asyncio.Event, out: Output) -> int:
    """Print state changes at once and progress every REPORT_EVERY seconds, until a
    signal (0) or the relay stops at a parked event (1)."""
    said: tuple[str, str | None] | None = None
    last_line = time.monotonic()
    shown_position: int | None = None
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1.0)
        try:
            (status,) = await runner.status(name)
        except OperationalError as failure:  # the store is down: the relay waits for it too
            if said != ("store down", None):
                out.line(f"cannot read the store: {failure}; trying again")
                said = ("store down", None)
            continue
        where = f"position {status.position}, {status.events_behind} behind"
        error = status.last_error if status.state in ("stalled", "failed") else None
        # Running and catching up alternate with every page under load: one kind here.
        kind = "moving" if status.state in ("running", "catching_up") else status.state
        if (kind, error) != said:
            said = (kind, error)
            if status.state == "stalled":
                out.line(f"stalled at {where}: {error}; trying again")
            elif status.state == "failed":
                out.line(f"stopped at a parked event ({where}): {error}")
                out.note("fix the cause, then run it again with --retry-parked")
                flush()
                return 1
            elif status.state == "standby":
                lease = await runner.store.read_side().lease(name)
                holder = lease.owner if lease else "another process"
                out.line(f"standby: {holder} runs {name}; taking over if it stops")
            elif status.state != "starting":
                out.line(f"{status.state} at {where}")
            last_line, shown_position = time.monotonic(), status.position
        elif time.monotonic() - last_line >= REPORT_EVERY and status.position != shown_position:
            out.line(f"{status.state} at {where}")
            last_line, shown_position = time.monotonic(), status.position
        flush()
    return 0


def _quiet_logs() -> None:
    # Warnings on stderr; the subscription's failed steps (with tracebacks, every few
    # seconds while NATS is down) are what the status lines above already say.
    logging.config.dictConfig(logging_config("text", "WARNING"))
    logging.getLogger("eventledger.subscriptions").setLevel(logging.CRITICAL)


def _without_password(url: str) -> str:
    """`url` with the password of its user part (if any) hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}{port}"))
