"""Throwaway PostgreSQL clusters on loopback ports: a primary, and a streaming standby
of it made with ``pg_basebackup`` (for tests of stores and servers that read from a
standby).

Each cluster lives in a folder of the caller's (a temporary one) and listens on a free
port of 127.0.0.1 only, with no Unix socket; :meth:`Cluster.stop` and
:meth:`Cluster.start` take it down and bring it back on the same port. The binaries
are those of the ``pgserver`` package (a test dependency). Run as root, the servers
run as the user ``pgserver`` (PostgreSQL refuses to run as root), as pgserver does.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_user_exists

__all__ = ["Cluster", "primary_and_standby"]

SERVER_USER = "pgserver"
START_TIMEOUT = 60
# Settings for throwaway clusters: loopback only, fast, and enough WAL kept for a
# standby that was stopped for a while to catch up by streaming.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "full_page_writes": "off",
    "wal_keep_size": "'256MB'",
    "max_connections": "60",
    "hot_standby_feedback": "on",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user() -> dict[str, Any]:
    """`subprocess.run` arguments that run a command as the servers' user."""
    if os.geteuid() != 0:
        return {}
    ensure_user_exists(SERVER_USER)
    return {"user": SERVER_USER, "group": pwd.getpwnam(SERVER_USER).pw_gid}


def _run(*args: str) -> None:
    user = _as_server_user()
    with tempfile.TemporaryFile("w+") as output:
        # Not a pipe: the server that pg_ctl starts would inherit it and hold it open.
        done = subprocess.run(  # noqa: S603 - our own binaries and arguments
            [str(POSTGRES_BIN_PATH / args[0]), *args[1:]],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=START_TIMEOUT + 30,
            **user,
        )
        if done.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{output.read()}")


def _give_to_server_user(folder: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = ensure_user_exists(SERVER_USER)
    assert entry is not None
    # The binaries must be readable by that user, as pgserver arranges.
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    os.chown(folder, entry.pw_uid, entry.pw_gid)


@dataclass
class Cluster:
    """One PostgreSQL cluster in `data`, served on 127.0.0.1:`port` while running."""

    data: Path
    port: int
    running: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def configure(self, **settings: str) -> None:
        """Append settings to postgresql.conf (the last of a name wins)."""
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(lines)

    def start(self) -> None:
        _run(
            *("pg_ctl", "-D", str(self.data), "-l", str(self.log)),
            *("-w", "-t", str(START_TIMEOUT), "start"),
        )
        self.running = True

    def stop(self) -> None:
        if not self.running:
            return
        _run("pg_ctl", "-D", str(self.data), "-w", "-t", str(START_TIMEOUT), "-m", "fast", "stop")
        self.running = False

    @classmethod
    def primary(cls, folder: Path) -> Cluster:
        """A fresh cluster (trust authentication), started."""
        cluster = cls(folder / "primary", free_port())
        _run(
            *("initdb", "-D", str(cluster.data), "-U", "postgres"),
            *("--auth=trust", "--encoding=utf8", "--no-instructions"),
        )
        cluster.configure(**SETTINGS, port=str(cluster.port))
        cluster.start()
        return cluster

    def standby(self, folder: Path, name: str = "standby") -> Cluster:
        """A streaming standby of this (running) cluster, started on a port of its own."""
        standby = Cluster(folder / name, free_port())
        _run(
            *("pg_basebackup", "-D", str(standby.data), "-R", "-X", "stream"),
            *("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
        )
        standby.configure(port=str(standby.port))
        standby.start()
        return standby


@contextmanager
def primary_and_standby() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and a streaming standby of it, each in a temporary folder; both are
    stopped and their folders removed at the end."""
    with tempfile.TemporaryDirectory(prefix="el-standby-") as name:
        folder = Path(name)
        _give_to_server_user(folder)
        primary = Cluster.primary(folder)
        try:
            standby = primary.standby(folder)
            try:
                yield primary, standby
            finally:
                standby.stop()
        finally:
            primary.stop()
