"""Looking at a store: streams, one stream then and now, the live log, the schema."""

from __future__ import annotations

import json
from typing import Any

import typer

from eventledger.cli import (
    _config,
    app,
    app_option,
    json_option,
    opened,
    parse_time,
    run,
    store_option,
)
from eventledger.cli._output import Output
from eventledger.errors import InvalidInput, NotFound
from eventledger.repository import Repository
from eventledger.stores import open_store


@app.command()
def streams(
    prefix: str | None = typer.Option(None, "--prefix", help="Only ids starting so (Order-)."),
    after: str | None = typer.Option(None, "--after", help="Start after this stream id."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="How many."),
    store: str | None = store_option(),
    as_json: bool = json_option(),
) -> None:
    """List streams, in id order, with their versions.

    Example: eventledger streams --prefix Order- --limit 20
    """
    out = Output(as_json)

    async def work() -> None:
        opened_store, _ = await opened(store)
        async with opened_store:
            found = await opened_store.list_streams(prefix=prefix, after=after, limit=limit)
        out.table(
            ["stream", "version", "created", "updated"],
            [(s.stream_id, s.version, _time(s.created_at), _time(s.updated_at)) for s in found],
        )

    run(work, out)


@app.command()
def show(
    stream: str = typer.Argument(..., help="The stream, e.g. Order-o-1001."),
    version: int | None = typer.Option(None, "--version", min=1, help="As it was after it."),
    at: str | None = typer.Option(None, "--at", help="As it was then (ISO 8601 with a zone)."),
    store: str | None = store_option(),
    app_ref: str | None = app_option(),
    as_json: bool = json_option(),
) -> None:
    """Show a stream's events and the state they build, now or then.

    --version N shows it after event N, --at TIME as it was at that time.

    Example: eventledger show Order-o-1001 --at 2026-11-23T09:00:00Z
    """
    out = Output(as_json)

    async def work() -> None:
        if version is not None and at is not None:
            raise InvalidInput("give --version or --at, not both")
        moment = parse_time(at, "--at")
        opened_store, configured_app = await opened(store)
        async with opened_store:
            events = [
                e
                async for e in opened_store.read_stream(stream, as_of=moment)
                if version is None or e.version <= version
            ]
            if not events:
                raise NotFound(f"no events in stream {stream!r}" + (" then" if moment else ""))
            if version is not None and events[-1].version < version:
                raise NotFound(f"stream {stream!r} has {events[-1].version} events, not {version}")
            state = None
            reference = app_ref or configured_app
            if reference:
                application = _config.load_application(reference)
                try:
                    aggregate_type, aggregate_id = application.aggregate_for(stream)
                except NotFound:
                    aggregate_type = None
                if aggregate_type is not None:
                    repository = Repository(
                        opened_store, aggregate_type, registry=application.registry
                    )
                    aggregate = await repository.load(aggregate_id, version=events[-1].version)
                    state = aggregate.model_dump(mode="json")
        if out.as_json:
            out.json({"stream_id": stream, "events": [e.to_json() for e in events], "state": state})
            return
        out.table(
            ["version", "position", "recorded", "type", "data"],
            [(e.version, e.position, _time(e.recorded_at), e.type, e.data) for e in events],
        )
        if state is not None:
            out.line(f"state at version {events[-1].version}:", style="bold")
            out.line(json.dumps(state, indent=2, ensure_ascii=False, default=str))
        elif not reference:
            out.note("(give --app module:object to see the state these events build)")

    run(work, out)


@app.command()
def tail(
    after: int | None = typer.Option(
        None, "--after", min=0, help="Resume after this position (default: new events only)."
    ),
    from_start: bool = typer.Option(False, "--from-start", help="Start at the first event."),
    types: str | None = typer.Option(None, "--types", help="Only these event types (commas)."),
    categories: str | None = typer.Option(
        None, "--categories", help="Only streams of these categories (commas)."
    ),
    count: int | None = typer.Option(None, "--count", min=1, help="Stop after N events."),
    store: str | None = store_option(),
    as_json: bool = json_option(),
) -> None:
    """Follow the log as it grows, like tail -f.

    Each line starts with the event's position: pass it to --after to go on from there
    later. Ctrl-C stops.

    Example: eventledger tail --categories Order --types OrderPaid,OrderCancelled
    """
    out = Output(as_json)
    wanted_types = _names(types)
    wanted_categories = _names(categories)

    async def work() -> None:
        opened_store, _ = await opened(store)
        async with opened_store:
            cursor = 0 if from_start else after
            if cursor is None:
                cursor = await opened_store.head_position()
            shown = 0
            while True:
                since = opened_store.append_generation
                page = await opened_store.read_page(after=cursor, limit=500)
                for event in page:
                    cursor = event.position
                    if (wanted_types and event.type not in wanted_types) or (
                        wanted_categories and event.category not in wanted_categories
                    ):
                        continue
                    if out.as_json:
                        out.json(event.to_json())
                    else:
                        out.line(
                            f"{event.position}  {_time(event.recorded_at)}"
                            f"  {event.stream_id}@{event.version}  {event.type}"
                            f"  {json.dumps(event.data, ensure_ascii=False, default=str)}"
                        )
                    shown += 1
                    if count is not None and shown >= count:
                        return
                print(end="", flush=True)
                if len(page) < 500:
                    # Other processes' appends to a SQLite file are seen by looking again.
                    await opened_store.wait_for_appends(since, 0.5)

    run(work, out)


@app.command()
def migrate(store: str | None = store_option()) -> None:
    """Create or upgrade the store's schema (opening a store does this too).

    Example: eventledger migrate --store postgresql://app@db.internal/orders
    """
    out = Output(False)

    async def work() -> None:
        settings = _config.settings(store, None)
        async with await open_store(settings.store) as opened_store:
            head = await opened_store.head_position()
            version = opened_store.schema_version
        out.line(f"{settings.store}: schema version {version}, last position {head}")

    run(work, out)


def _names(text: str | None) -> frozenset[str]:
    return frozenset(p.strip() for p in (text or "").split(",") if p.strip())


def _time(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""
