"""The examples run as users would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_runs_on_sqlite_twice_on_the_same_file(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "sqlite:///events.db"]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)  # noqa: S603
    assert "appended OrderPlaced to Order-1: version 1" in first.stdout
    assert "refused: Wrong expected version for stream 'Order-1'" in first.stdout
    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)  # noqa: S603
    assert "#4 Order-3 OrderPaid" in second.stdout


def test_quickstart_runs_on_postgres(postgres_schema_url: str) -> None:
    command = [sys.executable, str(ROOT / "examples" / "quickstart.py"), postgres_schema_url]
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    assert "v2 OrderPaid" in result.stdout
