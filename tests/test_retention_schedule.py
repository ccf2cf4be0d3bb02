"""Retention in a server: the schedule applies an application's policies every period,
in one process at a time (the lease), and another process takes over when the first
stops; an application without policies, or two policies for one category, is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventledger import Application, InvalidInput, NewEvent, open_store
from eventledger.retention import RetentionPolicy
from eventledger.retention_schedule import LEASE_NAME, RetentionSchedule

pytestmark = pytest.mark.asyncio

KEEP_TWO = [RetentionPolicy("Reading", max_count=2)]


async def test_one_process_applies_the_policies_and_another_takes_over(
    any_store_url: str,
) -> None:
    async with await open_store(any_store_url) as store:
        for n in range(5):
            await store.append("Reading-1", [NewEvent("Measured", {"n": n})])
        first = RetentionSchedule(store, KEEP_TWO, timedelta(seconds=1), owner="first")
        second = RetentionSchedule(store, KEEP_TWO, timedelta(seconds=1), owner="second")
        first.start()
        run = await first.wait_for_run()
        assert (run.deleted, run.streams, run.error) == (3, 1, None)
        second.start()
        try:
            lease = await store.read_side().lease(LEASE_NAME)
            assert lease is not None
            assert lease.owner == "first"
            await store.append("Reading-1", [NewEvent("Measured", {"n": 5})])
            again = await first.wait_for_run()
            assert again.deleted == 1
            assert second.runs == 0  # the lease keeps it out

            await first.stop()  # gives the lease up: the other takes over at its next tick
            await store.append("Reading-1", [NewEvent("Measured", {"n": 6})])
            taken = await second.wait_for_run(timeout=10)
            assert taken.deleted == 1
            lease = await store.read_side().lease(LEASE_NAME)
            assert lease is not None
            assert lease.owner == "second"
        finally:
            await first.stop()
            await second.stop()
        assert [e.data["n"] async for e in store.read_stream("Reading-1")] == [5, 6]


async def test_the_application_runs_its_schedule_and_stops_it(any_store_url: str) -> None:
    application = Application("readings", retention=KEEP_TWO)
    async with application.run(any_store_url, retention_every=timedelta(seconds=1)) as service:
        for n in range(4):
            await service.store.append("Reading-7", [NewEvent("Measured", {"n": n})])
        assert service.retention is not None
        for _ in range(20):  # at most 20 periods: the first run may come before the appends
            if (await service.retention.wait_for_run()).deleted:
                break
        assert [e.data["n"] async for e in service.store.read_stream("Reading-7")] == [2, 3]
        schedule = service.retention
    assert schedule.runs >= 1
    assert schedule._task is None  # stopped with the service


async def test_what_a_schedule_refuses() -> None:
    with pytest.raises(InvalidInput, match="two retention policies for the category 'Reading'"):
        Application("twice", retention=[*KEEP_TWO, RetentionPolicy("Reading", max_count=9)])
    with pytest.raises(InvalidInput, match="retention takes RetentionPolicy objects"):
        Application("wrong", retention=["Reading"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="has no retention policies to apply every"):
        await Application("none").start("memory://", retention_every=timedelta(hours=1))
    async with await open_store("memory://") as store:
        with pytest.raises(InvalidInput, match="at most once a second"):
            RetentionSchedule(store, KEEP_TWO, timedelta(milliseconds=10))
        with pytest.raises(InvalidInput, match="needs policies"):
            RetentionSchedule(store, [], timedelta(hours=1))
