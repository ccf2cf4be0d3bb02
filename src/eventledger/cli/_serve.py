"""Serving: an application over HTTP, and the demo.

Before a server starts, what would make it fail is checked here, each with one line
that says what to do: the address to listen on (a port in use, say) and the store
(a file that is not a database, a database that does not answer).
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import tempfile
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from eventledger._durations import parse_duration
from eventledger.app import Application
from eventledger.cli import _config, app, run, store_option
from eventledger.cli._output import Output
from eventledger.errors import EventLedgerError, InvalidInput, OperationalError
from eventledger.observability.logs import logging_config
from eventledger.personal import ENVIRONMENT_VARIABLE

if TYPE_CHECKING:
    from eventledger.http.limits import RateLimits

DEMO_APP = "eventledger.examples.orders.demo:application"
_ENV_ANONYMOUS = "EVENTLEDGER_ANONYMOUS"
_ENV_NO_PROJECTIONS = "EVENTLEDGER_NO_PROJECTIONS"
_ENV_PUBLIC_METRICS = "EVENTLEDGER_PUBLIC_METRICS"
_ENV_RATE_LIMITS = "EVENTLEDGER_RATE_LIMITS"
_ENV_CORS_ORIGINS = "EVENTLEDGER_CORS_ORIGINS"
_ENV_CACHE = "EVENTLEDGER_CACHE"
_ENV_READ_URL = "EVENTLEDGER_READ_URL"
_ENV_RETENTION_EVERY = "EVENTLEDGER_RETENTION_EVERY"
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise InvalidInput(
            "serving needs eventledger's server extra (FastAPI, uvicorn): in a clone of"
            " eventledger, pip install -e '.[server]'"
        ) from None
    return uvicorn


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def log_format_option() -> Any:
    return typer.Option(
        LogFormat.text,
        "--log-format",
        help="Log lines as text, or one JSON object per line (docs/operations.md).",
    )


@app.command()
def serve(
    application: str | None = typer.Argument(
        None, help="The application, module:object (default: $EVENTLEDGER_APP)."
    ),
    store: str | None = store_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
    anonymous: bool = typer.Option(
        False, "--anonymous", help="No API keys: anyone may do anything (local use only)."
    ),
    no_projections: bool = typer.Option(
        False, "--no-projections", help="Run no projections or processes here."
    ),
    log_format: LogFormat = log_format_option(),
    public_metrics: bool = typer.Option(
        False, "--public-metrics", help="Serve /metrics without an API key."
    ),
    rate_limit: list[str] = typer.Option(
        [],
        "--rate-limit",
        metavar="KIND=COUNT/UNIT[,burst=N]",
        help="Change a rate limit per key (KIND read, write, admin; or failures, failed"
        " authentications per address), e.g. --rate-limit write=20/s,burst=100; per worker.",
    ),
    no_rate_limits: bool = typer.Option(
        False, "--no-rate-limits", help="No rate limits (say, behind a proxy that limits)."
    ),
    cors_origin: list[str] = typer.Option(
        [],
        "--cors-origin",
        metavar="ORIGIN",
        help="A browser origin whose pages may call the API (https://shop.example.com);"
        " repeat for several. Default: none.",
    ),
    cache: str | None = typer.Option(
        None,
        "--cache",
        metavar="URL",
        help="Answer read-model queries from Redis when that is safe"
        " (redis://127.0.0.1:6379/0, ?prefix=... to share one Redis; docs/query-cache.md).",
    ),
    read_url: str | None = typer.Option(
        None,
        "--read-url",
        metavar="URL",
        help="A PostgreSQL standby of the store (postgresql://...), opened read-only: streams,"
        " the log and read-model queries are read from it (docs/replicas.md).",
    ),
    retention_every: str | None = typer.Option(
        None,
        "--retention-every",
        metavar="DURATION",
        help="Apply the retention policies (the application's, and eventledger.toml's"
        " [retention.<Category>]) this often, e.g. 1h; one server process at a time.",
    ),
) -> None:
    """Serve an application over HTTP.

    Commands, queries, streams and live events; callers need API keys (eventledger
    keys create) unless --anonymous.

    Example: eventledger serve myshop.app:application --store postgresql://db/shop --port 8080
    """
    out = Output(False)

    async def check() -> tuple[str, str]:
        settings = _config.settings(store, application)
        if not settings.app:  # serve takes it as an argument, not as --app
            raise InvalidInput(
                "serve needs the application: eventledger serve module:object, or set"
                f' {_config.APP_ENV}, or put app = "module:object" in {_config.CONFIG_FILE}'
            )
        # Fail here, clearly, not in a worker.
        served = _config.load_application(settings.app, settings.app_from)
        check_listen(host, port)
        if no_rate_limits and rate_limit:
            raise InvalidInput("give --rate-limit or --no-rate-limits, not both")
        _uvicorn()  # the server extra, which these need
        from eventledger.http.limits import RateLimits
        from eventledger.http.security import cors_options

        RateLimits.parse(rate_limit)  # refused here, in one line, not in each worker
        cors_options(cors_origin)
        if cache is not None:
            from eventledger.cache import QueryCache

            QueryCache.check_url(cache)
        if read_url is not None:
            from eventledger.replica import read_url_for

            read_url_for(read_url, settings.store)
        if retention_every is not None:
            every = parse_duration(retention_every)
            if not _config.retention_policies(served):
                raise InvalidInput(
                    f"--retention-every {retention_every}: {settings.app} has no retention"
                    " policies (Application(retention=[...]) or [retention.<Category>] in"
                    f" {_config.CONFIG_FILE})"
                )
            if every.total_seconds() < 1:
                raise InvalidInput(f"--retention-every is at least 1s, not {retention_every}")
        _config.use_key_file(settings.store)
        _config.require_key(served, settings.app, settings.store)
        await check_store(served, settings.store, settings.store_from)
        return settings.store, settings.app

    store_url, reference = run(check, out)
    uvicorn = _uvicorn()
    os.environ[_config.STORE_ENV] = store_url
    os.environ[_config.APP_ENV] = reference
    os.environ[_ENV_ANONYMOUS] = "1" if anonymous else ""
    os.environ[_ENV_NO_PROJECTIONS] = "1" if no_projections else ""
    os.environ[_ENV_PUBLIC_METRICS] = "1" if public_metrics else ""
    os.environ[_ENV_RATE_LIMITS] = "off" if no_rate_limits else ";".join(rate_limit)
    os.environ[_ENV_CORS_ORIGINS] = " ".join(cors_origin)
    os.environ[_ENV_CACHE] = cache or ""
    os.environ[_ENV_READ_URL] = read_url or ""
    os.environ[_ENV_RETENTION_EVERY] = retention_every or ""
    if workers > 1 and not os.environ.get(_MULTIPROC_ENV):
        # Each worker writes its counts here; a scrape of any adds up all of them.
        os.environ[_MULTIPROC_ENV] = tempfile.mkdtemp(prefix="eventledger-metrics-")
    # One secret signs the admin page's sessions in every worker (a session made by one
    # is good in the others); set it yourself so that sessions outlive a restart.
    from eventledger.admin.session import SECRET_ENV

    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(32))
    out.note(
        f"serving {reference} on {store_url} at http://{host}:{port}"
        " (admin page: /admin, API docs: /docs)"
    )
    uvicorn.run(
        "eventledger.cli._serve:make_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=logging_config(log_format.value),
        timeout_graceful_shutdown=5,
    )


def make_app() -> Any:
    """The ASGI app of `eventledger serve`, made in each server process."""
    from eventledger.http import create_app

    settings = _config.settings(None, None)
    application = _config.load_application(settings.app)
    return create_app(
        application,
        settings.store,
        allow_anonymous=bool(os.environ.get(_ENV_ANONYMOUS)),
        run_projections=not os.environ.get(_ENV_NO_PROJECTIONS),
        public_metrics=bool(os.environ.get(_ENV_PUBLIC_METRICS)),
        rate_limits=_rate_limits(os.environ.get(_ENV_RATE_LIMITS, "")),
        cors_origins=os.environ.get(_ENV_CORS_ORIGINS, "").split(),
        cache=os.environ.get(_ENV_CACHE) or None,
        read_url=os.environ.get(_ENV_READ_URL) or None,
        retention_every=_retention_every(application),
    )


def _retention_every(application: Application) -> timedelta | None:
    """The period of `serve --retention-every`; the policies of eventledger.toml then
    take the place of the application's for their categories."""
    every = os.environ.get(_ENV_RETENTION_EVERY)
    if not every:
        return None
    application.retention = _config.retention_policies(application)
    return parse_duration(every)


def _rate_limits(spec: str) -> RateLimits | None:
    from eventledger.http.limits import RateLimits

    if spec == "off":
        return None
    return RateLimits.parse(part for part in spec.split(";") if part)


@app.command()
def demo(
    store: str | None = store_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    seed: bool = typer.Option(True, "--seed/--no-seed", help="Sample data on a fresh store."),
    log_format: LogFormat = log_format_option(),
) -> None:
    """Serve the Orders example here, with sample data, in a minute.

    The store is a SQLite file in this folder; the first run adds sample data. Ctrl-C
    stops it; run it again and everything is still there.

    Example: eventledger demo --port 8000
    """
    from eventledger import Service
    from eventledger.examples.orders.demo import application
    from eventledger.examples.orders.demo import seed as seed_data
    from eventledger.http import create_app

    out = Output(False)
    uvicorn = _uvicorn()

    async def check() -> _config.Settings:
        settings = _config.settings(store, None)
        check_listen(host, port)  # before a store, a file or a banner is made
        await check_store(application, settings.store, settings.store_from)
        lasting = not settings.store.startswith("memory:")  # a memory store makes its own
        _config.use_key_file(settings.store)
        if lasting and not os.environ.get(ENVIRONMENT_VARIABLE):
            made = _config.make_key_file(settings.store)
            out.note(
                f"made {made} (readable by you only): the key that seals the demo's personal"
                f" data; set {ENVIRONMENT_VARIABLE} to use your own"
            )
        return settings

    settings = run(check, out)
    if _config.write_config(settings.store, DEMO_APP):
        out.note(f"wrote {_config.CONFIG_FILE}: eventledger commands here use this store")
    base = f"http://{host}:{port}"

    async def started(service: Service) -> None:
        fresh = seed and await seed_data(service)
        out.console.print(_banner(settings.store, base, fresh, host), markup=False)
        out.console.file.flush()

    app_obj = create_app(application, settings.store, allow_anonymous=True, on_start=started)
    uvicorn.run(
        app_obj,
        host=host,
        port=port,
        log_level="warning",
        log_config=logging_config(log_format.value, "WARNING"),
        timeout_graceful_shutdown=5,
    )
    out.note("stopped; everything is saved")


def check_listen(host: str, port: int) -> None:
    """Refuse an address this process cannot listen on, before anything else is done."""
    if port == 0:  # any free port: the system picks one
        return
    error = _bind_error(host, port)
    if error is not None:
        raise OperationalError(_cannot_listen(host, port, error))


def _bind_error(host: str, port: int) -> OSError | None:
    """Why `host`:`port` cannot be listened on (None: it can). Binds it as the server
    will (``SO_REUSEADDR``, one socket per address of `host`), then lets it go."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return error
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's server does
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                return error
    return None


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return (
            f"cannot listen on --host {host}: {error.strerror}; pass an address of this"
            " machine, e.g. --host 127.0.0.1"
        )
    if error.errno == errno.EADDRINUSE:
        free = next(
            (n for n in range(port + 1, min(port + 21, 65536)) if _bind_error(host, n) is None),
            None,
        )
        return (
            f"port {port} is in use on {host} (another server, or a demo already running?):"
            f" stop it, or pass --port {free or 'N'}"
        )
    if error.errno == errno.EACCES:
        return f"port {port} needs privileges here: pass --port N with N above 1023"
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: it is not an address of this machine; pass"
            " --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every network)"
        )
    return f"cannot listen on {host}:{port}: {error.strerror or error}"


async def check_store(application: Application, url: str, origin: str) -> None:
    """Start `application` on the store without its projections and stop it again (the
    schema is created or upgraded, as the server would): a store that cannot be opened,
    or cannot keep what the application needs, is one line, not a server's failed start."""
    try:
        async with application.run(url, projections=False):
            pass
    except InvalidInput:
        raise  # a URL no store takes, a feature the store lacks: said plainly already
    except (EventLedgerError, OSError) as error:
        raise OperationalError(
            f"cannot open the store (from {origin}): {error}; check that the database runs"
            " and the file or URL is right, or pass another with --store URL"
        ) from None


def _banner(store: str, base: str, seeded: bool, host: str) -> str:
    # Every URL in quotes: zsh takes an unquoted ? for a pattern.
    # The README's tour sends the same (with the same key: a repeat, not a conflict).
    place = (
        f"curl -s -X POST '{base}/commands/PlaceOrder?wait=order_list'"
        " -H 'Content-Type: application/json' -H 'Idempotency-Key: tour-1' -d"
        ' \'{"order_id": "o-2001", "customer_id": "you", "lines":'
        ' [{"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}]}\''
    )
    loopback = host in ("127.0.0.1", "localhost", "::1")
    lines = [
        f"eventledger demo: the Orders example on {store}",
        "",
        f"  API, with interactive docs   {base}/docs",
        f"  live events                   curl -N '{base}/events/live?after=0'",
        "",
        "Seeded: stock for 4 products, five orders (one in each state: created, paid,"
        " shipped, delivered, cancelled; the process cancels the unpaid one after 30"
        " minutes) and one event in the dead-letter queue. Each order names its customer;"
        ' dave asked to be forgotten, so Order-o-1004 shows {"$redacted": "dave"} where'
        " his name, email and address were."
        if seeded
        else "Serving what the store holds (sample data is only added to an empty store).",
        "",
        "Try, in another terminal in this folder:",
        "  eventledger streams --prefix Order-",
        "  eventledger show Order-o-1003",
        "  eventledger tail",
        "  eventledger projections status",
        "  eventledger dlq list",
        "  eventledger show Order-o-1004",
        "  eventledger export-subject alice",
        f"  curl -s '{base}/read-models/order_list/documents?status=shipped'",
        f"  curl -s '{base}/subjects/alice/export'",
        f"  {place}",
        "",
        "No API keys: anyone who reaches this server can do anything."
        + ("" if loopback else " IT LISTENS BEYOND THIS MACHINE."),
        "Ctrl-C stops it; run it again and everything is still there.",
    ]
    return "\n".join(lines)
