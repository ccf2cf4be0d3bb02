"""Operating the read side and access: projections, the dead-letter queue, API keys.

Rebuilds, resets and retries run the projection's code, so they need the
application (``--app``) and must run where the projection runs: in this
process when nothing else runs it, or in the server that does (``--server``).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from eventledger._durations import parse_duration
from eventledger.cli import _config, app, app_option, json_option, opened, run, store_option
from eventledger.cli._output import Output
from eventledger.commands import CommandBus
from eventledger.errors import EventLedgerError, InvalidInput, NotFound, OperationalError
from eventledger.http.keys import SCOPES, ApiKey, ApiKeys
from eventledger.http.models import horizon_json, status_json
from eventledger.projections import ProjectionRunner
from eventledger.stores.base import EventStore

projections = typer.Typer(help="Projections and processes: status, rebuild, reset.")
dlq = typer.Typer(help="The dead-letter queue: events a handler kept failing on.")
keys = typer.Typer(help="API keys for the HTTP server.")
app.add_typer(projections, name="projections", no_args_is_help=True)
app.add_typer(dlq, name="dlq", no_args_is_help=True)
app.add_typer(keys, name="keys", no_args_is_help=True)


KEY_ENV = "EVENTLEDGER_KEY"


def server_option() -> Any:
    return typer.Option(
        None,
        "--server",
        metavar="URL",
        help="Ask the server that runs it (its URL) instead of running it here.",
    )


def key_option() -> Any:
    return typer.Option(
        None,
        "--key",
        envvar=KEY_ENV,
        metavar="KEY",
        help="An admin API key for --server.",
    )


# --- projections ----------------------------------------------------------------------------


@projections.command("status")
def projections_status(
    store: str | None = store_option(),
    app_ref: str | None = app_option(),
    as_json: bool = json_option(),
) -> None:
    """Each projection's position, lag, runner and parked events.

    Example: eventledger projections status
    """
    out = Output(as_json)

    async def work() -> None:
        opened_store, configured_app = await opened(store)
        async with opened_store:
            storage = opened_store.read_side()
            checkpoints = await storage.checkpoints()
            names = sorted(n for n in checkpoints if "@" not in n)
            reference = app_ref or configured_app
            if reference:
                declared = [p.name for p in _config.load_application(reference).make_projections()]
                names = declared + [n for n in names if n not in declared]
            head = await opened_store.head_position()
            horizon = await opened_store.horizon()
            rows: list[dict[str, Any]] = []
            for name in names:
                position = checkpoints.get(name, 0)
                behind = await opened_store.count_events(after=position, limit=10_000_000)
                lease = await storage.lease(name)
                owner = lease.owner if lease else None
                parked = await storage.dead_letters(name, "parked")
                rebuilding = [n for n in checkpoints if n.startswith(f"{name}@")]
                rows.append(
                    {
                        "name": name,
                        "position": position,
                        "behind": behind,
                        "running_in": owner,
                        "parked": len(parked),
                        "last_error": parked[-1].error if parked else None,
                        "rebuilding": bool(rebuilding),
                    }
                )
        out.table(
            ["projection", "position", "behind", "running in", "parked", "last error"],
            [
                (
                    r["name"] + (" (rebuilding)" if r["rebuilding"] else ""),
                    r["position"],
                    r["behind"],
                    r["running_in"] or "nowhere",
                    r["parked"],
                    (r["last_error"] or "")[:80],
                )
                for r in rows
            ],
            records={
                "head_position": head,
                "held_back": horizon_json(horizon) if horizon.lagging else None,
                "projections": rows,
            },
        )
        if horizon.lagging and not as_json:
            holder = horizon.holder.describe() if horizon.holder else "an unknown transaction"
            out.note(
                f"readers are held back at position {horizon.visible_head}:"
                f" {horizon.events_held} committed event(s) wait for {holder}"
            )

    run(work, out)


@projections.command("rebuild")
def projections_rebuild(
    name: str = typer.Argument(..., help="The projection."),
    store: str | None = store_option(),
    app_ref: str | None = app_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
) -> None:
    """Rebuild a read model into a fresh copy, then switch queries to it.

    Queries keep the old copy until the new one caught up. Shows progress on a terminal.

    Example: eventledger projections rebuild order_list
    """
    out = Output(False)

    async def work() -> None:
        if server:
            serving = _http(server, key, "GET", f"/projections/{name}")
            _http(server, key, "POST", f"/projections/{name}/rebuild")
            await _follow(
                out,
                lambda: _http(server, key, "GET", f"/projections/{name}"),
                serving["generation"],
            )
            return
        async with _local_runner(store, app_ref, name) as runner:
            (before,) = await runner.status(name)
            task = asyncio.ensure_future(runner.rebuild(name))

            async def status() -> dict[str, Any]:
                (current,) = await runner.status(name)
                return status_json(current)  # the shape the server answers with

            await _follow(out, status, before.generation, task)
            await task
            # The new copy took over where the old one was; here, that may be behind
            # the log (nothing ran it before): catch up before leaving it.
            await runner.wait_until(name, await runner.store.head_position(), 3600)

    run(work, out)


@projections.command("reset")
def projections_reset(
    name: str = typer.Argument(..., help="The projection."),
    store: str | None = store_option(),
    app_ref: str | None = app_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
) -> None:
    """Empty a read model and fill it again from the first event.

    Example: eventledger projections reset customer_orders
    """
    out = Output(False)

    async def work() -> None:
        if server:
            _http(server, key, "POST", f"/projections/{name}/reset")
        else:
            async with _local_runner(store, app_ref, name) as runner:
                await runner.reset(name)
        out.line(f"reset {name}: it fills again from the first event")

    run(work, out)


async def _follow(
    out: Output, status: Any, generation: int, task: asyncio.Future[int] | None = None
) -> None:
    """Show a rebuild's progress until the new generation serves queries."""
    started = time.monotonic()
    bar = Progress(
        TextColumn("rebuilding"),
        BarColumn(),
        _Counts(),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeRemainingColumn(),
        console=out.console,
        disable=not out.terminal,
    )
    with bar:
        shown = bar.add_task("rebuild", total=None, rate=0.0)
        while True:
            current = await _call(status)
            progress = current.get("rebuild")
            if progress:
                bar.update(
                    shown,
                    completed=progress["events_done"],
                    total=max(progress["events_total"], 1),
                    rate=progress["events_per_second"],
                )
            finished = (
                task.done()
                if task is not None
                else current["generation"] != generation and not progress
            )
            if finished:
                done = bar.tasks[0].total or bar.tasks[0].completed
                bar.update(shown, completed=done, total=done)
                break
            await asyncio.sleep(0.1)
    # Here the rebuild says which generation it finished; a server's status says it.
    serving = task.result() if task is not None else (await _call(status))["generation"]
    out.line(f"rebuilt: generation {serving} serves queries ({time.monotonic() - started:.1f} s)")


class _Counts(ProgressColumn):
    """Events done of the total; the total is unknown (None) until the first status."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:,.0f}"
        return Text(f"{task.completed:,.0f}/{total} events")


async def _call(function: Any) -> dict[str, Any]:
    result = function()
    if asyncio.iscoroutine(result):
        result = await result
    found: dict[str, Any] = result
    return found


class _local_runner:
    """Run one projection in this process for an operation, if no other process runs it."""

    def __init__(self, store: str | None, app_ref: str | None, name: str) -> None:
        self.store_url = store
        self.app_ref = app_ref
        self.name = name
        self.store: EventStore | None = None
        self.runner: ProjectionRunner | None = None

    async def __aenter__(self) -> ProjectionRunner:
        self.store, configured = await opened(self.store_url)
        application = _config.load_application(self.app_ref or configured)
        made = application.make_projections()
        found = [p for p in made if p.name == self.name]
        if not found:
            known = ", ".join(p.name for p in made)
            await self.store.close()
            raise NotFound(f"{application.name} has no projection {self.name!r}; known: {known}")
        lease = await self.store.read_side().lease(self.name)
        if lease is not None:
            await self.store.close()
            raise OperationalError(
                f"{self.name} is run by {lease.owner} right now (its lease runs until"
                f" {lease.expires_at.isoformat(timespec='seconds')}, renewed while it runs;"
                " a process that died lets it lapse then); stop it there, or ask it with"
                " --server http://<host>:<port>"
            )
        bus = CommandBus(self.store, application.handlers, registry=application.registry)
        self.runner = ProjectionRunner(self.store, found, commands=bus)
        await self.runner.start()
        return self.runner

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.stop()
        if self.store is not None:
            await self.store.close()


def _http(server: str, key: str | None, method: str, path: str) -> dict[str, Any]:
    """Call the server's HTTP API; a problem answer becomes an error naming its detail."""
    request = urllib.request.Request(  # noqa: S310 - the user's own server URL
        server.rstrip("/") + path,
        method=method,
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            body: dict[str, Any] = json.loads(response.read() or b"{}")
            return body
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read()).get("detail", error.reason)
        except ValueError:
            detail = error.reason
        if error.code == 401:  # the server's words are for HTTP clients; these for the CLI
            detail = (
                f"no API key given: pass --key KEY or set {KEY_ENV} (an admin key: eventledger"
                " keys create user:you --scope read --scope admin)"
                if not key
                else f"the key of --key or {KEY_ENV} was refused ({detail})"
            )
        raise EventLedgerError(f"{server} answered {error.code}: {detail}") from None
    except urllib.error.URLError as error:
        raise OperationalError(f"cannot reach {server}: {error.reason}") from None


# --- dead letters ----------------------------------------------------------------------------


@dlq.command("list")
def dlq_list(
    projection: str | None = typer.Option(None, "--projection", help="Only this one's."),
    store: str | None = store_option(),
    as_json: bool = json_option(),
) -> None:
    """List events parked after their handler kept failing.

    Example: eventledger dlq list --projection order_list
    """
    out = Output(as_json)

    async def work() -> None:
        opened_store, _ = await opened(store)
        async with opened_store:
            letters = await opened_store.read_side().dead_letters(projection, "parked")
        out.table(
            ["id", "projection", "position", "event", "stream", "attempts", "error"],
            [
                (
                    letter.id,
                    letter.subscription,
                    letter.position,
                    letter.event_type,
                    letter.stream_id,
                    letter.attempts,
                    letter.error[:100],
                )
                for letter in letters
            ],
            records=[
                {
                    "id": letter.id,
                    "projection": letter.subscription,
                    "position": letter.position,
                    "event_id": str(letter.event_id),
                    "event_type": letter.event_type,
                    "stream_id": letter.stream_id,
                    "attempts": letter.attempts,
                    "error": letter.error,
                    "traceback": letter.traceback,
                    "parked_at": letter.parked_at.isoformat(),
                }
                for letter in letters
            ],
        )

    run(work, out)


def _resolve(
    action: str,
    letter_id: int,
    store: str | None,
    app_ref: str | None,
    server: str | None,
    key: str | None,
    out: Output,
) -> None:
    async def work() -> None:
        if server:
            _http(server, key, "POST", f"/dead-letters/{letter_id}/{action}")
        else:
            opened_store, _ = await opened(store)
            async with opened_store:
                letter = await opened_store.read_side().dead_letter(letter_id)
            if letter is None:
                raise NotFound(f"no dead letter {letter_id}")
            if letter.status != "parked":
                raise InvalidInput(f"dead letter {letter_id} is {letter.status} already")
            async with _local_runner(store, app_ref, letter.subscription) as runner:
                if action == "retry":
                    await runner.retry(letter.subscription, letter_id)
                else:
                    await runner.skip(letter.subscription, letter_id)
        out.line(f"dead letter {letter_id}: {'retried' if action == 'retry' else 'skipped'}")

    run(work, out)


@dlq.command("retry")
def dlq_retry(
    letter_id: int = typer.Argument(
        ..., min=1, max=(1 << 63) - 1, help="The dead letter's id (see dlq list)."
    ),
    store: str | None = store_option(),
    app_ref: str | None = app_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
) -> None:
    """Handle a parked event again (after a fix).

    Example: eventledger dlq retry 3 --server http://127.0.0.1:8000 --key $EVENTLEDGER_KEY
    """
    _resolve("retry", letter_id, store, app_ref, server, key, Output(False))


@dlq.command("skip")
def dlq_skip(
    letter_id: int = typer.Argument(
        ..., min=1, max=(1 << 63) - 1, help="The dead letter's id (see dlq list)."
    ),
    store: str | None = store_option(),
    app_ref: str | None = app_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
) -> None:
    """Give up on a parked event; its projection goes on after it.

    Example: eventledger dlq skip 3
    """
    _resolve("skip", letter_id, store, app_ref, server, key, Output(False))


# --- keys ------------------------------------------------------------------------------------


@keys.command("create")
def keys_create(
    owner: str = typer.Argument(..., help="Who uses it; the actor of what it does."),
    scope: list[str] = typer.Option(
        ["read"],
        "--scope",
        metavar="SCOPE",
        help=f"One of {', '.join(SCOPES)}; repeat for several: --scope read --scope write.",
    ),
    expires_in: str | None = typer.Option(
        None,
        "--expires-in",
        metavar="DURATION",
        help="The key expires after this long: 90d, 12h, 30m, 2w (default: never).",
    ),
    store: str | None = store_option(),
    as_json: bool = json_option(),
) -> None:
    """Make an API key. The key is shown once: only its hash is stored.

    Example: eventledger keys create service:checkout --scope read --scope write --expires-in 90d
    """
    out = Output(as_json)

    async def work() -> None:
        lifetime = None if expires_in is None else parse_duration(expires_in)
        opened_store, _ = await opened(store, must_exist=False)
        async with opened_store:
            made, secret = await ApiKeys(opened_store).create(owner, scope, expires_in=lifetime)
        if out.as_json:
            out.json({**_key_record(made), "key": secret})
            return
        out.line(secret)
        out.note(
            f"key {made.id} for {made.owner} ({', '.join(sorted(made.scopes))}{_until(made)});"
            " this is the only time it is shown"
        )

    run(work, out)


@keys.command("rotate")
def keys_rotate(
    key_id: str = typer.Argument(..., help="The key's id (or the whole key)."),
    overlap: str = typer.Option(
        "1h",
        "--overlap",
        metavar="DURATION",
        help="How long the old key stays valid beside the new one: 1h, 30m, 7d, 0s.",
    ),
    expires_in: str | None = typer.Option(
        None,
        "--expires-in",
        metavar="DURATION",
        help="The new key expires after this long (default: as long as the old one lived).",
    ),
    store: str | None = store_option(),
    as_json: bool = json_option(),
) -> None:
    """Replace an API key: a new key with the same owner and scopes, shown once; the old
    key expires when the overlap ends, so clients can change over without a gap.

    Example: eventledger keys rotate 3f2a9c1e0b7d4a55 --overlap 1h
    """
    out = Output(as_json)

    async def work() -> None:
        lapse = parse_duration(overlap)
        lifetime = None if expires_in is None else parse_duration(expires_in)
        opened_store, _ = await opened(store)
        async with opened_store:
            made, secret, old = await ApiKeys(opened_store).rotate(
                key_id, overlap=lapse, expires_in=lifetime
            )
        if out.as_json:
            out.json({**_key_record(made), "key": secret, "replaces": _key_record(old)})
            return
        out.line(secret)
        old_until = old.expires_at.isoformat(timespec="seconds") if old.expires_at else "?"
        out.note(
            f"key {made.id} for {made.owner} ({', '.join(sorted(made.scopes))}{_until(made)})"
            f" replaces key {old.id}, which expires at {old_until};"
            " this is the only time the new key is shown"
        )

    run(work, out)


def _until(key: ApiKey) -> str:
    return f", expires {key.expires_at.isoformat(timespec='seconds')}" if key.expires_at else ""


def _key_record(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "owner": key.owner,
        "scopes": sorted(key.scopes),
        "created": key.created_at.isoformat(),
        "expires": key.expires_at.isoformat() if key.expires_at else None,
        "revoked": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys.command("list")
def keys_list(
    revoked: bool = typer.Option(False, "--revoked", help="Show revoked and expired keys too."),
    store: str | None = store_option(),
    as_json: bool = json_option(),
) -> None:
    """List API keys (never the secrets).

    Example: eventledger keys list --revoked
    """
    out = Output(as_json)

    async def work() -> None:
        opened_store, _ = await opened(store)
        async with opened_store:
            found = await ApiKeys(opened_store).list(include_revoked=revoked)
        out.table(
            ["id", "owner", "scopes", "created", "expires", "revoked"],
            [
                (
                    k.id,
                    k.owner,
                    " ".join(sorted(k.scopes)),
                    k.created_at.isoformat(timespec="seconds"),
                    _expiry_text(k),
                    k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
                )
                for k in found
            ],
            records=[_key_record(k) for k in found],
        )

    run(work, out)


def _expiry_text(key: ApiKey) -> str:
    if key.expires_at is None:
        return ""
    moment = key.expires_at.isoformat(timespec="seconds")
    return f"{moment} (expired)" if key.expired else moment


@keys.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id (or the whole key)."),
    store: str | None = store_option(),
) -> None:
    """Revoke an API key; servers refuse it within seconds.

    Example: eventledger keys revoke 3f2a9c1e0b7d4a55
    """
    out = Output(False)

    async def work() -> None:
        opened_store, _ = await opened(store)
        async with opened_store:
            revoked = await ApiKeys(opened_store).revoke(key_id)
        out.line(f"revoked key {revoked.id} of {revoked.owner}")

    run(work, out)
