"""``eventledger top``: what the system is doing, refreshed every second.

Against a store (``--store``, or the configured one) it reads what the store knows:
the head, events appended per second, each projection's position, lag and
throughput, parked events. Against a server (``--server URL --key KEY``) it reads
the server's ``/metrics``, which also counts commands by outcome.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from eventledger.cli import app, json_option, opened, run, store_option
from eventledger.cli._operate import KEY_ENV, key_option, server_option
from eventledger.cli._output import Output
from eventledger.errors import EventLedgerError, OperationalError
from eventledger.stores.base import EventStore

MAX_COUNTED = 10_000_000


@dataclass
class Lane:
    """One projection or process manager in a reading."""

    name: str
    position: int
    lag_events: int
    lag_seconds: float
    state: str | None = None
    handled: float | None = None
    """Events it handled since the reading before (a count, or a counter's value)."""


@dataclass
class Reading:
    at: float
    head: int
    appended: float
    """Events appended since the reading before (a count), or a counter's total."""
    lanes: list[Lane]
    parked: dict[str, int]
    commands: Counter[str] | None = None
    """Commands by outcome (a counter's totals); None when the store is read directly."""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class StoreSource:
    """Reads a store directly (no commands: a store does not count them)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._head: int | None = None
        self._positions: dict[str, int] = {}

    async def read(self) -> Reading:
        store = self.store
        head = await store.head_position()
        appended = 0
        if self._head is not None and head > self._head:
            appended = await store.count_events(after=self._head, upto=head)
        self._head = head
        read_side = store.read_side()
        lanes = []
        for name, position in sorted((await read_side.checkpoints()).items()):
            if "@" in name:
                continue  # a rebuild's copy
            behind = await store.count_events(after=position, limit=MAX_COUNTED)
            seconds = 0.0
            async for record in store.read_all(after=position, limit=1):
                seconds = max(0.0, time.time() - record.recorded_at.timestamp())
            before = self._positions.get(name)
            handled = None
            if before is not None:
                handled = (
                    await store.count_events(after=before, upto=position)
                    if position > before
                    else 0
                )
            self._positions[name] = position
            lanes.append(Lane(name, position, behind, seconds, None, handled))
        parked = Counter(
            letter.subscription
            for letter in await read_side.dead_letters(None, "parked", limit=100_000)
        )
        return Reading(time.monotonic(), head, appended, lanes, dict(parked), None, store.url)


class ServerSource:
    """Reads a server's ``/metrics``."""

    def __init__(self, server: str, key: str | None) -> None:
        self.server = server.rstrip("/")
        self.key = key

    async def read(self) -> Reading:
        text = await asyncio.to_thread(self._fetch)
        from prometheus_client.parser import text_string_to_metric_families

        values: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values.setdefault(sample.name, []).append((sample.labels, sample.value))

        def one(name: str) -> float:
            found = values.get(name, [])
            return sum(value for _, value in found)

        def by(name: str, label: str) -> dict[str, float]:
            out: dict[str, float] = {}
            for labels, value in values.get(name, []):
                out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
            return out

        states = {
            labels["projection"]: labels["state"]
            for labels, value in values.get("eventledger_projection_state", [])
            if value
        }
        handled = by("eventledger_projection_events_handled_total", "projection")
        lanes = [
            Lane(
                name,
                int(position),
                int(by("eventledger_projection_lag_events", "projection").get(name, 0)),
                by("eventledger_projection_lag_seconds", "projection").get(name, 0.0),
                states.get(name),
                handled.get(name, 0.0),
            )
            for name, position in sorted(
                by("eventledger_projection_position", "projection").items()
            )
        ]
        commands: Counter[str] = Counter()
        for outcome, count in by("eventledger_commands_total", "outcome").items():
            commands[outcome] = int(count)
        parked = {k: int(v) for k, v in by("eventledger_dead_letters", "projection").items()}
        return Reading(
            time.monotonic(),
            int(one("eventledger_head_position")),
            one("eventledger_events_appended_total"),
            lanes,
            parked,
            commands,
            self.server,
        )

    def _fetch(self) -> str:
        request = urllib.request.Request(  # noqa: S310 - the user's own server URL
            f"{self.server}/metrics",
            headers={"Authorization": f"Bearer {self.key}"} if self.key else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return str(response.read().decode())
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                raise EventLedgerError(
                    f"{self.server} refused /metrics ({error.code}): pass --key KEY or set"
                    f" {KEY_ENV} (a key with the metrics or admin scope)"
                ) from None
            raise EventLedgerError(f"{self.server} answered {error.code} to /metrics") from None
        except urllib.error.URLError as error:
            raise OperationalError(f"cannot reach {self.server}: {error.reason}") from None


@dataclass
class View:
    """Rates between two readings, ready to show."""

    source: str
    head: int
    appended_per_second: float
    commands_per_second: dict[str, float] | None
    lanes: list[tuple[Lane, float | None]]
    parked: dict[str, int]

    def records(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "head_position": self.head,
            "appended_per_second": round(self.appended_per_second, 2),
            "commands_per_second": self.commands_per_second,
            "projections": [
                {
                    "name": lane.name,
                    "state": lane.state,
                    "position": lane.position,
                    "lag_events": lane.lag_events,
                    "lag_seconds": round(lane.lag_seconds, 3),
                    "handled_per_second": None if rate is None else round(rate, 2),
                    "parked": self.parked.get(lane.name, 0),
                }
                for lane, rate in self.lanes
            ],
            "dead_letters": sum(self.parked.values()),
        }

    def render(self) -> Group:
        summary = Text.assemble(
            ("head ", "dim"),
            (f"{self.head:,}", "bold"),
            ("   appended ", "dim"),
            (f"{self.appended_per_second:,.1f}/s", "bold"),
            ("   dead letters ", "dim"),
            (f"{sum(self.parked.values()):,}", "bold red" if self.parked else "bold"),
        )
        if self.commands_per_second is not None:
            summary.append("   commands ", "dim")
            summary.append(
                "  ".join(
                    f"{outcome} {rate:,.1f}/s"
                    for outcome, rate in sorted(self.commands_per_second.items())
                )
                or "none",
                "bold",
            )
        table = Table("projection", "state", "position", "lag", "behind by", "handled/s", "parked")
        for lane, rate in self.lanes:
            table.add_row(
                lane.name,
                lane.state or "",
                f"{lane.position:,}",
                f"{lane.lag_events:,}",
                f"{lane.lag_seconds:,.1f} s",
                "" if rate is None else f"{rate:,.1f}",
                f"{self.parked.get(lane.name, 0):,}",
            )
        return Group(Text(self.source, style="dim"), summary, table)


def view(before: Reading, now: Reading, counted: bool) -> View:
    """`counted`: the readings hold counters' totals (a server), not counts since."""
    seconds = max(now.at - before.at, 1e-9)
    appended = (now.appended - before.appended) if counted else now.appended
    previous = {lane.name: lane for lane in before.lanes}
    lanes: list[tuple[Lane, float | None]] = []
    for lane in now.lanes:
        rate = None
        if lane.handled is not None:
            if counted:
                earlier = previous.get(lane.name)
                base = earlier.handled if earlier is not None and earlier.handled else 0.0
                rate = max(0.0, lane.handled - base) / seconds
            else:
                rate = lane.handled / seconds
        lanes.append((lane, rate))
    commands = None
    if now.commands is not None:
        earlier_commands = before.commands or Counter()
        commands = {
            outcome: max(0, count - earlier_commands.get(outcome, 0)) / seconds
            for outcome, count in now.commands.items()
        }
    return View(now.source, now.head, max(0.0, appended) / seconds, commands, lanes, now.parked)


@app.command()
def top(
    store: str | None = store_option(),
    server: str | None = server_option(),
    key: str | None = key_option(),
    every: float = typer.Option(1.0, "--every", min=0.1, max=60, help="Seconds between views."),
    once: bool = typer.Option(False, "--once", help="Show one view (after --every) and stop."),
    as_json: bool = json_option(),
) -> None:
    """A live view: appends per second, commands by outcome, projections with their
    position, lag and throughput, dead letters.

    Example: eventledger top --server http://127.0.0.1:8000 --key $EVENTLEDGER_KEY
    """
    out = Output(as_json)

    async def work() -> None:
        if server is not None:
            await _watch(ServerSource(server, key), True, every, once, out)
            return
        opened_store, _ = await opened(store)
        async with opened_store:
            await _watch(StoreSource(opened_store), False, every, once, out)

    run(work, out)


async def _watch(
    source: StoreSource | ServerSource, counted: bool, every: float, once: bool, out: Output
) -> None:
    before = await source.read()
    if once or out.as_json or not out.terminal:
        await asyncio.sleep(every)
        shown = view(before, await source.read(), counted)
        if out.as_json:
            out.json(shown.records())
        else:
            out.console.print(shown.render())
        return
    with Live(console=out.console, auto_refresh=False) as live:
        while True:
            await asyncio.sleep(every)
            now = await source.read()
            live.update(view(before, now, counted).render(), refresh=True)
            before = now
