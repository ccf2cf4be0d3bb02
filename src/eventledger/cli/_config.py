"""Where the command line finds its store and application.

A flag wins over an environment variable, which wins over ``eventledger.toml``
in the working folder (``store = "..."``, ``app = "module:object"``), which wins
over the default (``sqlite:///eventledger.db``, no application).

``eventledger.toml`` may also hold retention policies, one table per category, which
replace the application's policy for that category (see :func:`retention_policies`)::

    [retention.Reading]
    max_age = "30d"
    max_count = 1000

The key-encryption key of personal data is ``$EVENTLEDGER_KEY_ENCRYPTION_KEY``; when
that is not set, the key file ``eventledger demo`` makes beside its database
(:func:`key_file`) is used if it is there.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eventledger._durations import parse_duration
from eventledger.app import Application
from eventledger.errors import InvalidInput, NotFound
from eventledger.events import Event
from eventledger.personal import ENVIRONMENT_VARIABLE, new_key_text, personal_fields
from eventledger.retention import RetentionPolicy

CONFIG_FILE = "eventledger.toml"
DEFAULT_STORE = "sqlite:///eventledger.db"
STORE_ENV = "EVENTLEDGER_STORE"
APP_ENV = "EVENTLEDGER_APP"
KNOWN_KEYS = ("store", "app", "retention")
"""What eventledger.toml may set."""


@dataclass(frozen=True, slots=True)
class Settings:
    store: str
    app: str | None
    store_from: str
    """Where the store URL came from (for error messages)."""
    app_from: str = "--app"
    """Where the application came from (for error messages)."""


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
    application: object
    if app:
        application, app_origin = app, "--app"
    elif os.environ.get(APP_ENV):
        application, app_origin = os.environ[APP_ENV], APP_ENV
    else:
        application, app_origin = file.get("app"), CONFIG_FILE
    return Settings(chosen, str(application) if application else None, origin, app_from=app_origin)


def retention_policies(application: Application | None) -> list[RetentionPolicy]:
    """The application's retention policies, with those of eventledger.toml in place of
    the application's for the same category."""
    policies = {p.category: p for p in (application.retention if application else [])}
    tables = _file_settings().get("retention", {})
    if not isinstance(tables, dict):
        raise InvalidInput(f"{CONFIG_FILE}: retention is a table of categories ([retention.Order])")
    for category, table in tables.items():
        where = f"{CONFIG_FILE}: [retention.{category}]"
        if not isinstance(table, dict):
            raise InvalidInput(f'{where} is a table (max_age = "30d", max_count = 1000)')
        unknown = set(table) - {"max_age", "max_count"}
        if unknown:
            raise InvalidInput(f"{where} sets {sorted(unknown)}; it takes max_age and max_count")
        max_age = table.get("max_age")
        if max_age is not None and not isinstance(max_age, str):
            raise InvalidInput(f'{where}: max_age is a duration in quotes ("30d"), not {max_age!r}')
        try:
            policies[category] = RetentionPolicy(
                category,
                max_age=None if max_age is None else parse_duration(max_age),
                max_count=table.get("max_count"),
            )
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None
    return list(policies.values())


def _file_settings() -> dict[str, object]:
    path = Path(CONFIG_FILE)
    if not path.is_file():
        return {}
    try:
        found = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{CONFIG_FILE} is not valid TOML: {error}") from None
    for key in found:
        if key not in KNOWN_KEYS:
            raise InvalidInput(_unknown_key(key, path))
    return found


def _unknown_key(key: str, path: Path) -> str:
    """A key eventledger.toml does not take, named, with the known ones."""
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(KNOWN_KEYS)
    return f"{path.resolve()} sets {key!r}, which eventledger does not know{hint}; it takes {known}"


def require_existing(url: str, origin: str) -> None:
    """Refuse to create an empty SQLite file where the user meant to read one."""
    if url.startswith("sqlite:"):
        path = urlsplit(url).path[1:]
        if not Path(path).exists():
            raise NotFound(
                f"no store at {url} (from {origin}): give --store, set {STORE_ENV}, or run"
                " `eventledger demo` here first"
            )


def load_application(reference: str | None, origin: str | None = None) -> Application:
    """The Application named ``module:object``: an Application, or a function that takes
    no arguments and returns one. `origin` says where the name came from (for errors)."""
    if not reference:
        raise InvalidInput(
            f"this needs the application: give --app module:object, set {APP_ENV}, or put"
            f' app = "module:object" in {CONFIG_FILE}'
        )
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise InvalidInput(f"{origin or '--app'} is module:object, not {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidInput(f"cannot import {module_name!r} (for {reference}): {error}") from None
    named = f"{reference} (from {origin})" if origin else reference
    expected = (
        "name an eventledger Application as module:object (or a function without"
        " arguments that returns one), e.g. myshop.app:application"
    )
    if not hasattr(module, attribute):
        raise InvalidInput(f"{named}: module {module_name} has no {attribute!r}; {expected}")
    found = getattr(module, attribute)
    if isinstance(found, Application):
        return found
    foreign_class = isinstance(found, type) and not issubclass(found, Application)
    if not callable(found) or foreign_class or not _takes_no_arguments(found):
        raise InvalidInput(f"{named} is {_what(found)}, not an Application; {expected}")
    made = found()
    if not isinstance(made, Application):
        raise InvalidInput(
            f"{named} is a function that returned {_what(made)}, not an Application; {expected}"
        )
    return made


def _takes_no_arguments(function: Any) -> bool:
    try:
        inspect.signature(function).bind()
    except TypeError:  # it needs arguments
        return False
    except ValueError:  # no signature to read (some builtins): do not guess
        return False
    return True


def _what(value: object) -> str:
    """What `value` is, in a few words: ``the class Order``, ``a function dumps``."""
    if isinstance(value, type):
        return f"the class {value.__name__}"
    if inspect.isroutine(value):
        needs = "" if _takes_no_arguments(value) else " that needs arguments"
        return f"a function {getattr(value, '__name__', '?')}{needs}"
    if inspect.ismodule(value):
        return f"the module {value.__name__}"
    return f"{_article(type(value).__name__)} {type(value).__name__}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


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


def key_file(store: str) -> Path:
    """Where the demo keeps its key-encryption key: beside a SQLite file
    (``eventledger.db.key``), else ``eventledger.key`` in the working folder."""
    if store.startswith("sqlite:"):
        path = urlsplit(store).path[1:]
        if path and path != ":memory:":
            return Path(path + ".key")
    return Path("eventledger.key")


def use_key_file(store: str) -> Path | None:
    """Read the key-encryption key from :func:`key_file` into the environment, when the
    environment has none and the file is there; the file read, or None."""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return None
    path = key_file(store)
    if not path.is_file():
        return None
    os.environ[ENVIRONMENT_VARIABLE] = path.read_text(encoding="utf-8").strip()
    return path


def make_key_file(store: str) -> Path:
    """A fresh key-encryption key in :func:`key_file` (readable by this user only), put
    in the environment; for the demo, which must run where no key is configured."""
    path = key_file(store)
    text = new_key_text()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    descriptor = os.open(path, flags, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text + "\n")
    os.environ[ENVIRONMENT_VARIABLE] = text
    return path


def personal_data_of(application: Application) -> list[str]:
    """The personal fields of the application's events (``OrderCreated.customer.email``)."""
    found: list[str] = []
    seen: set[type] = set()
    pending: list[type[Event]] = list(Event.__subclasses__())
    while pending:
        event_class = pending.pop()
        if event_class in seen:
            continue
        seen.add(event_class)
        pending.extend(event_class.__subclasses__())
        if application.registry.get(event_class.event_type) is not event_class:
            continue
        found += [f"{event_class.__name__}.{path}" for path in personal_fields(event_class)]
    return sorted(found)


def require_key(application: Application, reference: str, store: str) -> None:
    """Refuse to serve an application with personal data on a lasting store when no
    key-encryption key is set (a memory store makes its own)."""
    if os.environ.get(ENVIRONMENT_VARIABLE) or store.startswith("memory:"):
        return
    fields = personal_data_of(application)
    if fields:
        shown = ", ".join(fields[:3]) + (", ..." if len(fields) > 3 else "")
        raise InvalidInput(
            f"{reference} has personal data ({shown}) and no key-encryption key is set:"
            f" set {ENVIRONMENT_VARIABLE} to the key that `eventledger personal-key` prints"
            " (the same for every process on this store), and keep it safe"
        )
