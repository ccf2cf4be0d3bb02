"""The command line, ``eventledger`` (``pip install 'eventledger[cli]'``).

A thin layer over the library: each command opens the store, calls the
library, shows the result (a table on a terminal, plain lines when piped, JSON
with ``--json``) and turns library errors into one line on stderr and a non-zero
exit. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import typer

from eventledger.cli import _config
from eventledger.cli._output import Output
from eventledger.errors import EventLedgerError, InvalidInput
from eventledger.stores import open_store
from eventledger.stores.base import EventStore

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="eventledger",
    help="Event sourcing and CQRS: inspect and operate an eventledger store, or serve it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False


def version() -> str:
    """The installed eventledger's version (the package's own when it is not installed)."""
    try:
        return importlib.metadata.version("eventledger")
    except importlib.metadata.PackageNotFoundError:
        import eventledger

        return str(getattr(eventledger, "__version__", "unknown"))


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"eventledger {version()}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one line."),
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        expose_value=False,
        help="Print the version and exit.",
    ),
) -> None:
    global _debug
    _debug = debug


def store_option() -> Any:
    return typer.Option(
        None,
        "--store",
        metavar="URL",
        help="Store URL (default: $EVENTLEDGER_STORE, eventledger.toml, sqlite:///eventledger.db).",
    )


def app_option() -> Any:
    return typer.Option(
        None,
        "--app",
        metavar="MODULE:OBJECT",
        help="The application, module:object (default: $EVENTLEDGER_APP).",
    )


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print JSON.")


def run(work: Callable[[], Awaitable[T]], out: Output | None = None) -> T:
    """Run a command's async work; library errors become one line and exit 1."""
    out = out or Output(False)
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (EventLedgerError, OSError, ValueError, LookupError) as error:
        if _debug:
            raise
        out.error(str(error) or type(error).__name__)
        raise typer.Exit(1) from None
    except typer.Exit:
        raise
    except Exception as error:
        if _debug:
            raise
        out.error(f"unexpected {type(error).__name__}: {error} (run with --debug for details)")
        raise typer.Exit(1) from None


async def opened(store: str | None, *, must_exist: bool = True) -> tuple[EventStore, str | None]:
    settings = _config.settings(store, None)
    if must_exist:
        _config.require_existing(settings.store, settings.store_from)
    _config.use_key_file(settings.store)
    return await open_store(settings.store), settings.app


def parse_time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} is an ISO 8601 time, not {text!r}") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-23T12:00:00Z")
    return moment


def main() -> None:
    """The console script."""
    try:
        app(prog_name="eventledger")  # also under `python -m eventledger`
    except KeyboardInterrupt:  # pragma: no cover - typer handles it in commands
        sys.exit(130)


# The commands register themselves on `app`.
import eventledger.cli._inspect  # noqa: E402
import eventledger.cli._operate  # noqa: E402
import eventledger.cli._personal  # noqa: E402
import eventledger.cli._relay  # noqa: E402
import eventledger.cli._retention  # noqa: E402
import eventledger.cli._serve  # noqa: E402
import eventledger.cli._top  # noqa: E402, F401
