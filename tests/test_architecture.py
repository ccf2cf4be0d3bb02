"""The shape of the package, checked: backends stay behind their protocols, the
architecture page names only modules that exist, and the public API imports."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import eventledger

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "eventledger"
STORES = PACKAGE / "stores"
BACKEND_CLASSES = {"MemoryStore", "SQLiteStore", "PostgresStore", "MemoryLog", "MemoryTransaction"}
# What a module outside stores/ may import from it: the contract and open_store.
ALLOWED_FROM_STORES = {"eventledger.stores", "eventledger.stores.base"}


def _modules_outside_stores() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if STORES not in p.parents]


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("eventledger.stores") and (
                node.module not in ALLOWED_FROM_STORES
            ):
                found.append(f"{node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name.startswith("eventledger.stores.")
                and alias.name not in ALLOWED_FROM_STORES
            ]
        elif isinstance(node, ast.Name) and node.id in BACKEND_CLASSES:
            found.append(f"{node.lineno}: names {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr == "dialect":
            found.append(f"{node.lineno}: asks for .dialect")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "backend" for s in sides):
                found.append(f"{node.lineno}: branches on .backend")
    return found


def test_no_module_outside_the_backends_names_a_backend_or_branches_on_one() -> None:
    offences = {
        str(path.relative_to(PACKAGE)): found
        for path in _modules_outside_stores()
        if (found := _offences(path))
    }
    assert offences == {}


def test_the_check_catches_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from eventledger.stores.sqlite import SQLiteStore\n"
        "def f(store):\n"
        "    if store.backend == 'postgres' or store.dialect:\n"
        "        return isinstance(store, SQLiteStore)\n",
        encoding="utf-8",
    )
    assert [line.split(": ", 1)[1] for line in _offences(sample)] == [
        "imports eventledger.stores.sqlite",
        "branches on .backend",
        "asks for .dialect",
        "names SQLiteStore",
    ]


def test_every_module_the_architecture_page_names_exists() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:src|tests|benchmarks|scripts|docs)/[\w/.-]+)`", text))
    modules = set(re.findall(r"`(eventledger(?:\.\w+)+)`", text))
    assert paths, "the page names files"
    assert modules, "the page names modules"
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert missing == []
    for module in sorted(modules):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            parent, _, attribute = module.rpartition(".")
            assert hasattr(importlib.import_module(parent), attribute), module


@pytest.mark.parametrize("name", eventledger.__all__)
def test_every_public_name_is_importable_and_documented(name: str) -> None:
    value = getattr(eventledger, name)
    if callable(value) and not isinstance(value, type(eventledger.ANY)):
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"
