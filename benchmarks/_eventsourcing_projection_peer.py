"""Peer benchmark: projection catch-up with the `eventsourcing` library (9.5.6) on PostgreSQL.

Measures events/s of its ``ProjectionRunner`` projecting N ``Ticked`` events (payload
``{"n": int, "customer": "c-<k>"}``, N/20 streams of 20, versions 1..20) into a
PostgreSQL materialised view, from the start of the log until the tracking position
reaches the last notification id, and the peak RSS of this process meanwhile.

The path its documentation and tests use for a PostgreSQL view:

* ``ProjectionRunner(application_class=Ticks, projection_class=PerStream,
  view_class=PerStreamView, env=...)`` builds the application and the view through
  ``PostgresFactory`` and subscribes (``PostgresSubscription``): a pull thread runs
  ``select_notifications(..., topics=("Ticked",))`` in pages of 500, queued up to
  10 pages ahead, beside a LISTEN thread; one processing thread decodes each event
  (``Mapper.to_domain_event``) and calls ``PerStream.process_event`` (singledispatch);
* ``PerStreamView`` extends ``PostgresTrackingRecorder`` as the library's
  ``PostgresEventCounters`` test view does: per event one transaction with the
  tracking upsert (``_insert_tracking``) and an upsert of the stream's row (count + 1,
  last n, customer), then commit. One event, one commit.

Setup (untimed) writes the events with ``PostgresApplicationRecorder.insert_events``,
10,000 ``StoredEvent``s (from the application's mapper) per call. The clock stops when
the view commits the last notification id (an in-process signal: ``runner.wait()``
polls with back-off up to 0.8 s), then ``runner.wait()`` confirms it. Everything lives
in the schema ``es_peer_projection_bench``, made by ``setup()``, dropped by ``teardown()``.
"""

from __future__ import annotations

import threading
import time
import uuid
from functools import cache
from typing import Any

SCHEMA = "es_peer_projection_bench"
APP_NAME = "Ticks"  # table ticks_events
PROJECTION_NAME = "per_stream"  # tables per_stream_tracking and per_stream_docs
STREAM_LENGTH = 20
INSERT_BATCH = 10_000
TIMEOUT = 3600.0


def _env(dsn_parts: dict[str, Any]) -> dict[str, str]:
    """Unprefixed keys, so the application and the view read the same settings."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(dsn_parts["dbname"]),
        "POSTGRES_HOST": str(dsn_parts["host"]),
        "POSTGRES_PORT": str(dsn_parts["port"]),
        "POSTGRES_USER": str(dsn_parts["user"]),
        "POSTGRES_PASSWORD": str(dsn_parts.get("password", "")),
        "POSTGRES_SCHEMA": SCHEMA,
        "CREATE_TABLE": "y",
    }


@cache
def _event_class() -> type[Any]:
    from eventsourcing.domain import DomainEvent
    from eventsourcing.utils import get_topic

    class Ticked(DomainEvent):  # made a frozen dataclass by DomainEvent's metaclass
        TOPIC = "Ticked"  # read by eventsourcing.utils.get_topic()
        n: int
        customer: str

    assert get_topic(Ticked) == "Ticked"  # also registers the topic
    return Ticked


@cache
def _app_class() -> type[Any]:
    from eventsourcing.application import Application

    class Ticks(Application):  # type: ignore[type-arg]
        name = APP_NAME

    return Ticks


@cache
def _view_class() -> type[Any]:
    from eventsourcing.persistence import Tracking
    from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
    from psycopg.sql import SQL, Identifier

    class PerStreamView(PostgresTrackingRecorder):
        """One row per stream, written in the transaction of its tracking record."""

        target = 0  # set before the runner starts: the notification id that ends the run

        def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
            super().__init__(datastore, **kwargs)
            name = self.tracking_table_name.replace("_tracking", "_docs")
            table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(name))
            self.sql_create_statements.append(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (stream_id uuid PRIMARY KEY,"
                    " count bigint NOT NULL, last bigint NOT NULL, customer text NOT NULL)"
                ).format(table)
            )
            self.upsert = SQL(
                "INSERT INTO {} AS d VALUES (%s, 1, %s, %s) ON CONFLICT (stream_id) DO UPDATE"
                " SET count = d.count + 1, last = EXCLUDED.last, customer = EXCLUDED.customer"
            ).format(table)
            self.totals = SQL("SELECT count(*), sum(count)::bigint FROM {}").format(table)
            self.caught_up = threading.Event()

        def record_tick(
            self, stream_id: uuid.UUID, n: int, customer: str, tracking: Tracking
        ) -> None:
            with self.datastore.transaction(commit=True) as curs:
                self._insert_tracking(curs, tracking)
                curs.execute(self.upsert, (stream_id, n, customer), prepare=True)
            if tracking.notification_id >= self.target:
                self.caught_up.set()

        def rows_and_total(self) -> tuple[int, int]:
            with self.datastore.transaction(commit=False) as curs:
                row = curs.execute(self.totals).fetchone()
                assert row is not None
                return row["count"], row["sum"] or 0

    return PerStreamView


@cache
def _projection_class() -> type[Any]:
    from eventsourcing.dispatch import singledispatchmethod
    from eventsourcing.projection import Projection

    ticked = _event_class()

    class PerStream(Projection[Any]):
        name = PROJECTION_NAME
        topics = ("Ticked",)  # filtered in the database by the subscription

        @singledispatchmethod
        def process_event(self, domain_event: Any, tracking: Any) -> None:
            self.view.insert_tracking(tracking)  # anything else: just move on

        @process_event.register(ticked)
        def _ticked(self, event: Any, tracking: Any) -> None:
            self.view.record_tick(event.originator_id, event.n, event.customer, tracking)

    return PerStream


def _schema_sql(dsn_parts: dict[str, Any], statement: str) -> Any:
    import psycopg
    from psycopg import sql

    conninfo = {k: v for k, v in dsn_parts.items() if v != ""}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        cursor = conn.execute(sql.SQL(statement).format(sql.Identifier(SCHEMA)))
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None


def setup(dsn_parts: dict[str, Any], events: int) -> None:
    """A fresh schema holding the application's table with `events` notifications."""
    assert events % STREAM_LENGTH == 0, events
    _schema_sql(dsn_parts, "DROP SCHEMA IF EXISTS {} CASCADE")
    _schema_sql(dsn_parts, "CREATE SCHEMA {}")
    ticked = _event_class()
    app = _app_class()(env=_env(dsn_parts))  # creates ticks_events
    try:
        timestamp = ticked.create_timestamp()
        batch = []
        for stream in range(events // STREAM_LENGTH):
            originator_id = uuid.uuid4()
            customer = f"c-{stream % 1000}"
            for i in range(STREAM_LENGTH):
                event = ticked(
                    originator_id=originator_id,
                    originator_version=i + 1,
                    timestamp=timestamp,
                    n=stream * STREAM_LENGTH + i,
                    customer=customer,
                )
                batch.append(app.mapper.to_stored_event(event))
            if len(batch) >= INSERT_BATCH:
                app.recorder.insert_events(batch)
                batch = []
        app.recorder.insert_events(batch)
    finally:
        app.close()


def teardown(dsn_parts: dict[str, Any]) -> None:
    _schema_sql(dsn_parts, "DROP SCHEMA IF EXISTS {} CASCADE")


def _sample_rss(stop: threading.Event, peak: list[int]) -> None:
    """Every 0.2 s, keep the highest VmRSS of this process in peak[0] (bytes)."""
    while True:
        with open("/proc/self/status") as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        peak[0] = max(peak[0], kb * 1024)
        if stop.wait(0.2):
            return


def catch_up(dsn_parts: dict[str, Any], events: int) -> tuple[float, int]:
    """Run the projection from the start to the last notification: (events/s, peak RSS)."""
    from eventsourcing.projection import ProjectionRunner

    last_id = _schema_sql(
        dsn_parts, f"SELECT max(notification_id) FROM {{}}.{APP_NAME.lower()}_events"
    )
    view_class = _view_class()
    view_class.target = last_id
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_sample_rss, args=(stop, peak), daemon=True)
    sampler.start()
    try:
        started = time.perf_counter()
        runner = ProjectionRunner(
            application_class=_app_class(),
            projection_class=_projection_class(),
            view_class=view_class,
            env=_env(dsn_parts),
        )
        try:
            with runner:
                while not runner.view.caught_up.wait(0.05):
                    if runner.is_interrupted.is_set():
                        runner.run_forever(timeout=0)  # re-raises the processing error
                        raise RuntimeError("the projection runner stopped before catching up")
                    assert time.perf_counter() - started < TIMEOUT, "projection timed out"
                elapsed = time.perf_counter() - started
                runner.wait(last_id, timeout=10)  # the library's own check of the tracking
                rows, total = runner.view.rows_and_total()
        finally:
            runner.view.datastore.close()  # the runner closes the app, not the view
    finally:
        stop.set()
        sampler.join()
    assert (rows, total) == (events // STREAM_LENGTH, events), (rows, total)
    return events / elapsed, peak[0]


if __name__ == "__main__":
    import sys
    from importlib.metadata import version

    dsn = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "dbname": "test"}
    print(f"eventsourcing {version('eventsourcing')}, psycopg {version('psycopg')}")
    for n_events in [int(arg) for arg in sys.argv[1:]] or [100_000]:
        started = time.perf_counter()
        setup(dsn, n_events)
        print(f"(setup: {n_events:,} events in {time.perf_counter() - started:.0f} s)")
        try:
            rate, peak_rss = catch_up(dsn, n_events)
            print(
                f"projection catch-up, {n_events:,} events: {rate:10,.0f} events/s,"
                f" peak RSS {peak_rss / 1_048_576:,.0f} MB"
            )
        finally:
            teardown(dsn)
