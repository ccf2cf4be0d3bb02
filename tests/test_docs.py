"""Every Python block in the README and docs runs (or, for fragments, compiles)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for number, match in enumerate(BLOCK.finditer(doc.read_text()), start=1):
            found.append((f"{doc.relative_to(ROOT)}#{number}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[w for w, _ in _blocks()])
def test_documented_python_runs(where: str, code: str, tmp_path: Path) -> None:
    compiled = compile(code, where, "exec")
    if "asyncio.run(" not in code:
        return  # a fragment (a class to subclass, a snippet): compiling is the check
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compiled, {"__name__": "__main__"})  # noqa: S102 - our own documentation
    finally:
        os.chdir(previous)
