"""Helpers for tests that run eventledger in processes of their own and kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(module: str, *args: str) -> subprocess.Popen[str]:
    """Run `python -m module args...`; returns once it printed "started"."""
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started", (
        process.stderr.read() if process.stderr else ""
    )
    return process


def kill(process: subprocess.Popen[str]) -> None:
    """Kill without warning (SIGKILL): no clean-up runs."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
