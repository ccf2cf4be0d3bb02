"""Peer benchmark: the `eventsourcing` library (written against 9.5.6) on PostgreSQL.

Measures the same workloads as our own benchmark, through the code path an
``eventsourcing.application.Application`` uses by default with its PostgreSQL
persistence module (psycopg 3):

* writes: ``EventStore.put()`` -> ``Mapper.to_stored_event()`` (``JSONTranscoder``)
  -> ``PostgresApplicationRecorder.insert_events()`` with the default
  ``enable_db_functions=False``: one pipelined transaction that runs
  ``LOCK TABLE ... IN EXCLUSIVE MODE``, ``NOTIFY`` and an ``INSERT ... SELECT FROM
  unnest(composite[]) RETURNING notification_id``;
* reads: ``PostgresApplicationRecorder.select_notifications()`` in pages of 500
  (the limit its ``ListenNotifySubscription`` uses), each notification decoded
  with ``Mapper.to_domain_event()`` into an ``OrderPlaced`` object whose payload
  the ``JSONTranscoder`` has parsed.

Each writer has its own ``PostgresDatastore`` (a psycopg pool of one connection, the
datastore's default). Everything lives in the schema ``es_peer_bench``, created by
``setup()`` and dropped by ``teardown()``. Every function times itself with
``time.perf_counter`` and returns events per second.
"""

from __future__ import annotations

import threading
import time
import uuid
from functools import cache
from typing import Any

SCHEMA = "es_peer_bench"
TABLE = "bench_events"
PAGE_SIZE = 500  # eventsourcing's ListenNotifySubscription select limit


def _payload(n: int) -> dict[str, Any]:
    return {
        "order_id": f"o-{n}",
        "customer": "alice",
        "lines": [{"sku": "A1", "qty": 2, "price": "9.99"}],
        "n": n,
    }


@cache
def _event_class() -> type[Any]:
    """A plain frozen dataclass, registered under the topic "OrderPlaced"."""
    from dataclasses import dataclass

    from eventsourcing.utils import get_topic

    @dataclass(frozen=True)
    class OrderPlaced:
        TOPIC = "OrderPlaced"  # read by eventsourcing.utils.get_topic()
        originator_id: uuid.UUID
        originator_version: int
        order_id: str
        customer: str
        lines: list[dict[str, Any]]
        n: int

    assert get_topic(OrderPlaced) == "OrderPlaced"  # also registers the topic
    return OrderPlaced


def _event(originator_id: uuid.UUID, version: int, n: int) -> Any:
    return _event_class()(originator_id=originator_id, originator_version=version, **_payload(n))


def _mapper() -> Any:
    """The mapper an Application builds by default: JSON, no cipher or compressor."""
    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def _recorder(dsn_parts: dict[str, Any]) -> Any:
    """A PostgresApplicationRecorder on its own datastore, connected before returning."""
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    datastore = PostgresDatastore(
        dbname=dsn_parts["dbname"],
        host=dsn_parts["host"],
        port=dsn_parts["port"],
        user=dsn_parts["user"],
        password=dsn_parts.get("password", ""),
        schema=SCHEMA,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name=TABLE)
    with datastore.get_connection():  # open the pool and its connection outside the timing
        pass
    return recorder


def _event_store(dsn_parts: dict[str, Any]) -> Any:
    from eventsourcing.persistence import EventStore

    return EventStore(mapper=_mapper(), recorder=_recorder(dsn_parts))


def _drop_schema(dsn_parts: dict[str, Any]) -> None:
    import psycopg
    from psycopg import sql

    conninfo = {k: v for k, v in dsn_parts.items() if v != ""}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def setup(dsn_parts: dict[str, Any]) -> None:
    """Drop and recreate the schema, then let the recorder create its type, table, index."""
    import psycopg
    from psycopg import sql

    _drop_schema(dsn_parts)
    conninfo = {k: v for k, v in dsn_parts.items() if v != ""}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
    recorder = _recorder(dsn_parts)
    recorder.create_table()
    recorder.datastore.close()


def teardown(dsn_parts: dict[str, Any]) -> None:
    _drop_schema(dsn_parts)


def single_appends(dsn_parts: dict[str, Any], writers: int, appends_per_writer: int) -> float:
    """`writers` threads, one event per transaction, a new stream every 10 events."""
    stores = [_event_store(dsn_parts) for _ in range(writers)]
    errors: list[BaseException] = []

    def write(store: Any) -> None:
        try:
            originator_id = uuid.uuid4()
            for i in range(appends_per_writer):
                if i % 10 == 0:
                    originator_id = uuid.uuid4()
                store.put([_event(originator_id, i % 10 + 1, i)])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for store in stores:
        store.recorder.datastore.close()
    if errors:
        raise errors[0]
    return writers * appends_per_writer / elapsed


def batched_appends(dsn_parts: dict[str, Any], batches: int, batch_size: int = 100) -> float:
    """One thread, `batches` transactions of `batch_size` events, one new stream each."""
    store = _event_store(dsn_parts)
    started = time.perf_counter()
    for _ in range(batches):
        originator_id = uuid.uuid4()
        store.put([_event(originator_id, v + 1, v) for v in range(batch_size)])
    elapsed = time.perf_counter() - started
    store.recorder.datastore.close()
    return batches * batch_size / elapsed


def read_all_decoded(dsn_parts: dict[str, Any], expected_count: int) -> float:
    """Page through all notifications and decode each into an OrderPlaced object."""
    recorder = _recorder(dsn_parts)
    mapper = _mapper()
    event_class = _event_class()
    count = 0
    last_id = 0
    started = time.perf_counter()
    while True:
        page = recorder.select_notifications(last_id, PAGE_SIZE, inclusive_of_start=False)
        for notification in page:
            event = mapper.to_domain_event(notification)
            assert type(event) is event_class
            assert isinstance(event.lines[0], dict)
        count += len(page)
        if len(page) < PAGE_SIZE:
            break
        last_id = page[-1].id
    elapsed = time.perf_counter() - started
    recorder.datastore.close()
    assert count == expected_count, (count, expected_count)
    return count / elapsed


if __name__ == "__main__":
    from importlib.metadata import version

    dsn = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "dbname": "test"}
    print(f"eventsourcing {version('eventsourcing')}, psycopg {version('psycopg')}")
    setup(dsn)
    try:
        written = 0
        for n_writers in (1, 4):
            rate = single_appends(dsn, n_writers, 2000)
            written += n_writers * 2000
            print(f"single appends, {n_writers} writer(s) x 2000: {rate:10.0f} events/s")
        rate = batched_appends(dsn, 50, 100)
        written += 50 * 100
        print(f"batched appends, 50 x 100:            {rate:10.0f} events/s")
        rate = read_all_decoded(dsn, written)
        print(f"read all + decode, {written} events:     {rate:10.0f} events/s")
    finally:
        teardown(dsn)
