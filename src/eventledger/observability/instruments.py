"""What instrumented code reports: appends, reads, commands, batches, requests.

Instrumented code calls the instruments in :data:`current`. Until metrics are turned
on (:func:`eventledger.observability.prometheus.enable_metrics`) they are
:class:`Off`, whose calls return at once; this module imports nothing else, so the
library pays nothing for metrics it does not use.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Instruments", "Off", "current", "install"]


class Instruments(Protocol):
    def appended(self, backend: str, events: int, seconds: float) -> None: ...
    def read(self, backend: str, events: int) -> None: ...
    def command(self, name: str, outcome: str, seconds: float) -> None: ...
    def handled(self, subscription: str, events: int, seconds: float) -> None: ...
    def request(self, method: str, route: str, status: int, seconds: float) -> None: ...
    def replica_read(self, source: str, reason: str) -> None: ...
    def query_cache(self, read_model: str, outcome: str) -> None: ...
    def query_cache_error(self, operation: str) -> None: ...


class Off:
    """No metrics: every call returns at once."""

    def appended(self, backend: str, events: int, seconds: float) -> None:
        pass

    def read(self, backend: str, events: int) -> None:
        pass

    def command(self, name: str, outcome: str, seconds: float) -> None:
        pass

    def handled(self, subscription: str, events: int, seconds: float) -> None:
        pass

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def replica_read(self, source: str, reason: str) -> None:
        pass

    def query_cache(self, read_model: str, outcome: str) -> None:
        pass

    def query_cache_error(self, operation: str) -> None:
        pass


current: Instruments = Off()
"""The instruments in use: call sites read this module attribute each time."""


def install(instruments: Instruments) -> None:
    """Report to `instruments` from now on, in this process."""
    global current
    current = instruments
