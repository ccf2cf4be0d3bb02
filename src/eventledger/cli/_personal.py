"""Personal data: forget a subject, export what the store keeps of one, make a
key-encryption key (see docs/personal-data.md).

``forget`` and ``export-subject`` work on the store (``--store``), or ask a server
(``--server URL --key KEY``, an admin key) that serves it.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any
from urllib.parse import quote

import typer

from eventledger.cli import app, json_option, opened, run, store_option
from eventledger.cli._operate import _http, key_option, server_option
from eventledger.cli._output import Output
from eventledger.context import message_context
from eventledger.errors import InvalidInput
from eventledger.personal import ENVIRONMENT_VARIABLE, export, forget, new_key_text, scrub


def _subject_path(subject: str, action: str) -> str:
    return f"/subjects/{quote(subject, safe='')}/{action}"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name to be found (a container, say)
        return "cli"


@app.command("forget")
def forget_command(
    subject: str = typer.Argument(..., help="The subject's id (a customer id, say)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    full: bool = typer.Option(
        False,
        "--full",
        help="Scrub with a full rewrite of the database (VACUUM FULL on PostgreSQL:"
        " an exclusive lock while it runs).",
    ),
    store: str | None = store_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
    as_json: bool = json_option(),
) -> None:
    """Forget a subject for good: their personal values read as redacted from now on.

    Deletes the subject's data key, records a SubjectForgotten event and discards
    snapshots, then cleans freed database space (scrub). This cannot be undone.

    Example: eventledger forget customer-42 --yes
    """
    out = Output(as_json)
    if not yes:
        if not sys.stdin.isatty():
            out.error(f"forget {subject} cannot be undone: pass --yes to forget without asking")
            raise typer.Exit(1)
        if not typer.confirm(
            f"Forget {subject}? Their personal values become unreadable for good", default=False
        ):
            out.error("nothing forgotten")
            raise typer.Exit(1)

    async def work() -> dict[str, Any]:
        if server:
            if full:
                raise InvalidInput(
                    "--full rewrites the database from here: give --store, not --server"
                    " (the server scrubs without a rewrite)"
                )
            return _http(server, key, "POST", _subject_path(subject, "forget") + "?scrub=true")
        opened_store, _ = await opened(store)
        async with opened_store:
            with message_context(actor=_actor()):
                forgotten = await forget(opened_store, subject)
            await scrub(opened_store, full=full)
        return {
            "subject": forgotten.subject,
            "position": forgotten.position,
            "streams": forgotten.streams,
            "had_key": forgotten.had_key,
            "scrubbed": True,
        }

    done = run(work, out)
    if out.as_json:
        out.json(done)
        return
    streams = done["streams"]
    listed = f": {', '.join(streams)}" if streams else ""
    out.line(
        f"forgot {done['subject']}: {len(streams)} stream(s) now read their values as"
        f' {{"$redacted": "{done["subject"]}"}}{listed}'
    )
    out.line(f"SubjectForgotten recorded at position {done['position']}")
    if not done["had_key"]:
        out.note(f"the store held no personal value of {done['subject']}; none is kept from now on")
    if done["scrubbed"]:
        out.note("freed database space scrubbed; backups and copies still hold the old key")


@app.command("export-subject")
def export_subject_command(
    subject: str = typer.Argument(..., help="The subject's id (a customer id, say)."),
    store: str | None = store_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
) -> None:
    """Print, as JSON, every personal value the store keeps of a subject (an access request).

    Each value with its stream, version, position, event type and field; a forgotten
    subject shows "forgotten": true and no values.

    Example: eventledger export-subject customer-42 > customer-42.json
    """
    out = Output(True)

    async def work() -> dict[str, Any]:
        if server:
            return _http(server, key, "GET", _subject_path(subject, "export"))
        opened_store, _ = await opened(store)
        async with opened_store:
            return (await export(opened_store, subject)).to_json()

    out.json(run(work, out))


@app.command("personal-key")
def personal_key() -> None:
    """Print a new key-encryption key for personal data (32 random bytes, base64).

    Example: eventledger personal-key
    """
    out = Output(False)
    print(new_key_text())
    out.note(
        f"set it as {ENVIRONMENT_VARIABLE} for every process that opens the store (serve,"
        " these commands); keep it secret and backed up: without it no personal value can"
        " be read"
    )
