"""Retention: delete the events a category's policy no longer keeps (see
docs/personal-data.md, "Retention and deleting streams")."""

from __future__ import annotations

import typer

from eventledger._durations import parse_duration
from eventledger.cli import _config, app, app_option, json_option, opened, run, store_option
from eventledger.cli._output import Output
from eventledger.errors import InvalidInput
from eventledger.retention import DEFAULT_BATCH, RetentionPolicy, Trimmed, apply_retention

retention = typer.Typer(help="Retention: delete events older or more than a policy keeps.")
app.add_typer(retention, name="retention", no_args_is_help=True)


@retention.command("apply")
def apply_command(
    category: list[str] = typer.Option(
        [],
        "--category",
        metavar="CATEGORY",
        help="The streams' category (Reading for Reading-12); repeat for several."
        " Default: the policies of the application and eventledger.toml.",
    ),
    max_age: str | None = typer.Option(
        None, "--max-age", metavar="DURATION", help="Delete events older than this (30d, 12h)."
    ),
    max_count: int | None = typer.Option(
        None, "--max-count", metavar="N", help="Keep at most the last N events of each stream."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only show what would be deleted; change nothing."
    ),
    batch: int = typer.Option(
        DEFAULT_BATCH, "--batch", metavar="N", help="At most N events deleted per transaction."
    ),
    store: str | None = store_option(),
    application: str | None = app_option(),
    as_json: bool = json_option(),
) -> None:
    """Delete for good the events a retention policy no longer keeps, stream by stream.

    Each transaction deletes at most --batch events and records a StreamTruncated
    event in the $retention stream. Positions and versions of the remaining events
    never change. Prints what it deleted (or, with --dry-run, would delete) per stream.

    Without --category it applies the policies of the application
    (Application(retention=[...]), from --app, $EVENTLEDGER_APP or eventledger.toml)
    and the [retention.<Category>] tables of eventledger.toml.

    Example: eventledger retention apply --category Reading --max-age 30d
    """
    out = Output(as_json)

    async def work() -> list[Trimmed]:
        policies = _policies(category, max_age, max_count, store, application)
        opened_store, _ = await opened(store)
        async with opened_store:
            return await apply_retention(opened_store, policies, dry_run=dry_run, batch=batch)

    trimmed = run(work, out)
    if not as_json and not trimmed:
        out.note("nothing to delete")
    verb = "would_delete" if dry_run else "deleted"
    out.table(
        ["stream_id", "category", "before_version", verb],
        [(t.stream_id, t.category, t.before_version, t.deleted) for t in trimmed],
    )
    if not as_json:
        total = sum(t.deleted for t in trimmed)
        what = "would be deleted" if dry_run else "deleted"
        out.note(f"{total} events in {len(trimmed)} streams {what}")


def _policies(
    categories: list[str],
    max_age: str | None,
    max_count: int | None,
    store: str | None,
    application: str | None,
) -> list[RetentionPolicy]:
    if categories:
        age = None if max_age is None else parse_duration(max_age)
        return [RetentionPolicy(c, max_age=age, max_count=max_count) for c in categories]
    if max_age is not None or max_count is not None:
        raise InvalidInput("--max-age and --max-count need --category (the streams they cover)")
    settings = _config.settings(store, application)
    loaded = _config.load_application(settings.app, settings.app_from) if settings.app else None
    policies = _config.retention_policies(loaded)
    if not policies:
        raise InvalidInput(
            "no retention policies: give --category with --max-age or --max-count, declare"
            " Application(retention=[...]) (with --app), or add [retention.<Category>] to"
            f" {_config.CONFIG_FILE}"
        )
    return policies
