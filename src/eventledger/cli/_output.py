"""How results are shown: a table on a terminal, plain lines when piped, JSON on request."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def terminal(self) -> bool:
        return self.console.is_terminal

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]], records: Any = None
    ) -> None:
        """Rows under column names; `records` is what --json prints (default: the rows
        as objects)."""
        if self.as_json:
            data = (
                records
                if records is not None
                else [dict(zip(columns, r, strict=True)) for r in rows]
            )
            self.json(data)
            return
        if self.terminal:
            table = Table(*columns, header_style="bold")
            for row in rows:
                table.add_row(*(_text(value) for value in row))
            self.console.print(table)
            return
        print("\t".join(columns))
        for row in rows:
            print("\t".join(_text(value) for value in row))

    def json(self, data: Any) -> None:
        print(json.dumps(data, default=str, ensure_ascii=False))

    def line(self, text: str, *, style: str | None = None) -> None:
        if self.terminal:
            self.console.print(text, style=style, markup=False)
        else:
            print(text)

    def note(self, text: str) -> None:
        """Something for the person, not for a pipe: on stderr."""
        self.errors.print(text, style="dim", markup=False)

    def error(self, text: str) -> None:
        self.errors.print(f"error: {text}", style="bold red", markup=False)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def flush() -> None:
    sys.stdout.flush()
