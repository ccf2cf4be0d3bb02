"""Serving: an application over HTTP, and the demo."""

from __future__ import annotations

import os
from typing import Any

import typer

from eventledger.cli import _config, app, run, store_option
from eventledger.cli._output import Output
from eventledger.errors import InvalidInput

DEMO_APP = "eventledger.examples.orders.demo:application"
_ENV_ANONYMOUS = "EVENTLEDGER_ANONYMOUS"
_ENV_NO_PROJECTIONS = "EVENTLEDGER_NO_PROJECTIONS"


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise InvalidInput(
            "serving needs the server extra: pip install 'eventledger[server]'"
        ) from None
    return uvicorn


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
        _config.load_application(settings.app)  # fail here, clearly, not in a worker
        assert settings.app is not None
        return settings.store, settings.app

    store_url, reference = run(check, out)
    uvicorn = _uvicorn()
    os.environ[_config.STORE_ENV] = store_url
    os.environ[_config.APP_ENV] = reference
    os.environ[_ENV_ANONYMOUS] = "1" if anonymous else ""
    os.environ[_ENV_NO_PROJECTIONS] = "1" if no_projections else ""
    out.note(f"serving {reference} on {store_url} at http://{host}:{port} (docs: /docs)")
    uvicorn.run(
        "eventledger.cli._serve:make_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_graceful_shutdown=5,
    )


def make_app() -> Any:
    """The ASGI app of `eventledger serve`, made in each server process."""
    from eventledger.http import create_app

    settings = _config.settings(None, None)
    return create_app(
        _config.load_application(settings.app),
        settings.store,
        allow_anonymous=bool(os.environ.get(_ENV_ANONYMOUS)),
        run_projections=not os.environ.get(_ENV_NO_PROJECTIONS),
    )


@app.command()
def demo(
    store: str | None = store_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    seed: bool = typer.Option(True, "--seed/--no-seed", help="Sample data on a fresh store."),
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
    settings = _config.settings(store, None)
    uvicorn = _uvicorn()
    if _config.write_config(settings.store, DEMO_APP):
        out.note(f"wrote {_config.CONFIG_FILE}: eventledger commands here use this store")
    base = f"http://{host}:{port}"

    async def started(service: Service) -> None:
        fresh = seed and await seed_data(service)
        out.console.print(_banner(settings.store, base, fresh, host), markup=False)
        out.console.file.flush()

    app_obj = create_app(application, settings.store, allow_anonymous=True, on_start=started)
    uvicorn.run(app_obj, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    out.note("stopped; everything is saved")


def _banner(store: str, base: str, seeded: bool, host: str) -> str:
    place = (
        f'curl -s -X POST {base}/commands/PlaceOrder -H "Content-Type: application/json" -d'
        ' \'{"order_id": "o-2001", "customer_id": "you", "lines":'
        ' [{"sku": "BOOK", "quantity": 1, "unit_price": "12.50"}]}\''
    )
    loopback = host in ("127.0.0.1", "localhost", "::1")
    lines = [
        f"eventledger demo: the Orders example on {store}",
        "",
        f"  API, with interactive docs   {base}/docs",
        f"  live events                   curl -N {base}/events/live?after=0",
        "",
        "Seeded: stock for 4 products, orders in every state, and one event in the"
        " dead-letter queue."
        if seeded
        else "Serving what the store holds (sample data is only added to an empty store).",
        "",
        "Try, in another terminal in this folder:",
        "  eventledger streams --prefix Order-",
        "  eventledger show Order-o-1003",
        "  eventledger tail",
        "  eventledger projections status",
        "  eventledger dlq list",
        f"  curl -s {base}/read-models/order_list/documents?status=shipped",
        f"  {place}",
        "",
        "No API keys: anyone who reaches this server can do anything."
        + ("" if loopback else " IT LISTENS BEYOND THIS MACHINE."),
        "Ctrl-C stops it; run it again and everything is still there.",
    ]
    return "\n".join(lines)
