"""Where the command line finds its store and application.

A flag wins over an environment variable, which wins over ``eventledger.toml``
in the working folder (``store = "..."``, ``app = "module:object"``), which wins
over the default (``sqlite:///eventledger.db``, no application).
"""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from eventledger.app import Application
from eventledger.errors import InvalidInput, NotFound

CONFIG_FILE = "eventledger.toml"
DEFAULT_STORE = "sqlite:///eventledger.db"
STORE_ENV = "EVENTLEDGER_STORE"
APP_ENV = "EVENTLEDGER_APP"


@dataclass(frozen=True, slots=True)
class Settings:
    store: str
    app: str | None
    store_from: str
    """Where the store URL came from (for error messages)."""


def settings(store: str | None, app: str | None) -> Settings:
    file = _file_settings()
    if store:
        chosen, origin = store, "--store"
    elif os.environ.get(STORE_ENV):
        chosen, origin = os.environ[STORE_ENV], STORE_ENV
    elif file.get("store"):
        chosen, origin = str(file["store"]), CONFIG_FILE
    else:
        chosen, origin = DEFAULT_STORE, "the default"
    application = app or os.environ.get(APP_ENV) or file.get("app")
    return Settings(chosen, str(application) if application else None, origin)


def _file_settings() -> dict[str, object]:
    path = Path(CONFIG_FILE)
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{CONFIG_FILE} is not valid TOML: {error}") from None


def require_existing(url: str, origin: str) -> None:
    """Refuse to create an empty SQLite file where the user meant to read one."""
    if url.startswith("sqlite:"):
        path = urlsplit(url).path[1:]
        if not Path(path).exists():
            raise NotFound(
                f"no store at {url} (from {origin}): give --store, set {STORE_ENV}, or run"
                " `eventledger demo` here first"
            )


def load_application(reference: str | None) -> Application:
    """The Application named ``module:object``."""
    if not reference:
        raise InvalidInput(
            f"this needs the application: give --app module:object, set {APP_ENV}, or put"
            f' app = "module:object" in {CONFIG_FILE}'
        )
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise InvalidInput(f"--app is module:object, not {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidInput(f"cannot import {module_name!r} (for {reference}): {error}") from None
    found = getattr(module, attribute, None)
    if isinstance(found, type) and not issubclass(found, Application):
        found = None  # a class, but not an Application's: calling it makes something else
    if callable(found) and not isinstance(found, Application):
        found = found()
    if not isinstance(found, Application):
        raise InvalidInput(f"{reference} is not an eventledger Application")
    return found


def write_config(store: str, app: str) -> bool:
    """Write eventledger.toml unless one exists; True if written."""
    path = Path(CONFIG_FILE)
    if path.exists():
        return False
    path.write_text(
        "# Where `eventledger` commands run in this folder (flags and environment win).\n"
        f'store = "{store}"\napp = "{app}"\n',
        encoding="utf-8",
    )
    return True
