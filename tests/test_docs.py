"""Every Python block of the README and the docs runs, in order, as its page shows it.

Each page runs in a fresh interpreter (its classes must not meet those of other
tests) in an empty folder, its blocks one after another in one namespace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def run_page(page: Path, folder: Path) -> None:
    """Run the page's Python blocks as one script in `folder`; it must succeed."""
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page} has no Python blocks"
    script = folder / "page.py"
    script.write_text("\n\n".join(blocks))
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the docs run beside the checkout
    )
    assert done.returncode == 0, f"{page.name} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_page_runs(page: Path, tmp_path: Path) -> None:
    run_page(page, tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_page_runs_again_in_the_same_folder(page: Path, tmp_path: Path) -> None:
    # What a reader does who tries a page, changes a line and runs it again.
    run_page(page, tmp_path)
    run_page(page, tmp_path)
