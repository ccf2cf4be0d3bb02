"""Conformance tests for the document collections of
:class:`~eventledger.storage.ReadSideStorage` (part of ReadSideConformance)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventledger import EventStore
from eventledger.storage import Range, ReadSideStorage, Where
from eventledger.testing._storage_support import OpensStore, rolled_back

__all__ = ["DocumentConformance"]

INDEXES = {"status": "text", "total": "number", "paid": "boolean", "customer.city": "text"}
"""An index of each kind, and one on a nested field."""

# Totals as JSON numbers and as decimal strings; fields missing, or null.
DOCS: dict[str, dict[str, Any]] = {
    "a": {"ref": "a", "status": "paid", "total": 5, "paid": True, "customer": {"city": "Oslo"}},
    "b": {
        "ref": "b",
        "status": "open",
        "total": "28.00",
        "paid": False,
        "customer": {"city": "Bergen"},
    },
    "c": {"ref": "c", "status": "paid", "total": 100.5, "paid": True, "lines": [1, 2]},
    "d": {"ref": "d", "status": "shipped", "total": 9, "customer": {"city": "Oslo"}},
    "e": {"ref": "e", "status": "open", "total": None, "customer": {"city": "Tromso"}},
    "f": {"ref": "f", "status": "paid", "total": 9, "paid": False, "customer": {"city": "Alta"}},
}

_SHARED_BY_EVERY_BACKEND = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.differing_executors,
    HealthCheck.too_slow,
]

_ABSENT = "absent"
"""A generated value standing for a document without the field."""


def _raw(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc)


async def _fill(
    store: EventStore,
    read_side: ReadSideStorage,
    table: str = "orders_g1",
    docs: Mapping[str, Mapping[str, Any]] = DOCS,
    view: str | None = "orders",
) -> None:
    async with store.transaction() as tx:
        await read_side.create_collection(tx, table, INDEXES)
    async with store.transaction() as tx:
        # As text and as bytes: both are JSON.
        upserts: dict[str, bytes | str] = {
            key: _raw(doc) if n % 2 else _raw(doc).encode()
            for n, (key, doc) in enumerate(docs.items())
        }
        await read_side.write_documents(tx, table, upserts, [])
        if view is not None:
            await read_side.point_view(tx, view, table)


async def _get(
    read_side: ReadSideStorage, table: str, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    found = await read_side.get_raw_documents(None, table, ids)
    return {key: json.loads(raw) for key, raw in found.items()}


class DocumentConformance(OpensStore):
    """Document collections: raw JSON in and out, queries on indexed fields, views."""

    @pytest.fixture
    def read_side(self, store: EventStore) -> ReadSideStorage:
        assert "read_side" in store.capabilities
        storage = store.read_side()
        assert isinstance(storage, ReadSideStorage)
        return storage

    async def _refs(
        self,
        read_side: ReadSideStorage,
        where: Where,
        order_by: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
        table: str = "orders",
    ) -> list[str]:
        found = await read_side.find(table, INDEXES, where, order_by, limit, offset)
        return [doc["ref"] for doc in found]

    # --- writing and reading ------------------------------------------------------------

    async def test_documents_are_written_and_read_back_as_json(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side, view=None)
        found = await read_side.get_raw_documents(None, "orders_g1", ["a", "missing", "c", "b"])
        assert set(found) == {"a", "b", "c"}
        assert all(isinstance(raw, bytes | str) for raw in found.values())
        assert {key: json.loads(raw) for key, raw in found.items()} == {
            key: DOCS[key] for key in "abc"
        }
        assert await read_side.get_raw_documents(None, "orders_g1", []) == {}
        async with store.transaction() as tx:
            in_tx = await read_side.get_raw_documents(tx, "orders_g1", ["d", "missing"])
        assert {key: json.loads(raw) for key, raw in in_tx.items()} == {"d": DOCS["d"]}

    async def test_a_write_replaces_documents_and_deletes_others(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side, view=None)
        replaced = {"ref": "a", "status": "cancelled", "note": 'é ✓ "quoted"'}
        async with store.transaction() as tx:
            await read_side.write_documents(
                tx, "orders_g1", {"a": _raw(replaced), "g": _raw({"ref": "g"})}, ["b", "gone"]
            )
        assert await _get(read_side, "orders_g1", ["a", "b", "g"]) == {
            "a": replaced,
            "g": {"ref": "g"},
        }
        assert await read_side.count("orders_g1", INDEXES, {}) == 6
        async with store.transaction() as tx:
            await read_side.write_documents(tx, "orders_g1", {}, ["c", "d"])
        assert await _get(read_side, "orders_g1", ["c", "d", "e"]) == {"e": DOCS["e"]}

    async def test_writes_of_a_rolled_back_transaction_are_not_seen(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        async with rolled_back(store) as tx:
            await read_side.write_documents(
                tx, "orders_g1", {"a": _raw({"ref": "a2"}), "z": _raw({"ref": "z"})}, ["b"]
            )
        assert await _get(read_side, "orders_g1", ["a", "b", "z"]) == {
            "a": DOCS["a"],
            "b": DOCS["b"],
        }
        assert await read_side.count("orders", INDEXES, {}) == len(DOCS)
        assert await self._refs(read_side, {"status": "open"}) == ["b", "e"]

    async def test_creating_a_collection_again_keeps_its_documents(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        async with store.transaction() as tx:
            await read_side.create_collection(tx, "orders_g1", INDEXES)
        assert await read_side.count("orders_g1", INDEXES, {}) == len(DOCS)

    async def test_a_dropped_collection_is_gone(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side, view=None)
        async with store.transaction() as tx:
            await read_side.drop_collection(tx, "orders_g1")
            await read_side.drop_collection(tx, "never_created")
        async with store.transaction() as tx:
            await read_side.create_collection(tx, "orders_g1", INDEXES)
        assert await read_side.count("orders_g1", INDEXES, {}) == 0
        assert await read_side.get_raw_documents(None, "orders_g1", ["a"]) == {}

    async def test_reads_through_a_view_see_the_table_it_points_to(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await _get(read_side, "orders", ["a"]) == {"a": DOCS["a"]}
        assert await read_side.count("orders", INDEXES, {"status": "paid"}) == 3
        # A rebuild fills a second generation, points the view at it and drops the first.
        second = {"x": {"ref": "x", "status": "paid", "total": 1}}
        await _fill(store, read_side, "orders_g2", second, view=None)
        assert await self._refs(read_side, {"status": "paid"}) == ["a", "c", "f"]
        async with store.transaction() as tx:
            await read_side.point_view(tx, "orders", "orders_g2")
        async with store.transaction() as tx:
            await read_side.drop_collection(tx, "orders_g1")
        assert await self._refs(read_side, {"status": "paid"}) == ["x"]
        assert await _get(read_side, "orders", ["a", "x"]) == {"x": second["x"]}
        assert await read_side.count("orders", INDEXES, {}) == 1

    # --- queries ----------------------------------------------------------------------

    async def test_find_without_conditions_gives_every_document_by_id(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        found = await read_side.find("orders", INDEXES, {}, [], 100, 0)
        assert found == list(DOCS.values())
        assert await self._refs(read_side, {}, table="orders_g1") == list("abcdef")

    async def test_find_by_equal_text_and_any_of_a_list(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {"status": "paid"}) == ["a", "c", "f"]
        assert await self._refs(read_side, {"status": "refunded"}) == []
        assert await self._refs(read_side, {"status": ["open", "shipped"]}) == ["b", "d", "e"]
        assert await self._refs(read_side, {"status": ("shipped",)}) == ["d"]
        assert await self._refs(read_side, {"status": []}) == []
        assert await self._refs(read_side, {"status": "paid", "paid": False}) == ["f"]

    async def test_numbers_and_decimal_strings_compare_as_numbers(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {"total": 28}) == ["b"]
        assert await self._refs(read_side, {"total": Decimal("28.00")}) == ["b"]
        assert await self._refs(read_side, {"total": 9}) == ["d", "f"]
        assert await self._refs(read_side, {"total": 100.5}) == ["c"]
        assert await self._refs(read_side, {"total": [5, Decimal("28")]}) == ["a", "b"]
        assert await self._refs(read_side, {"total": Range(gte=10)}) == ["b", "c"]
        assert await self._refs(read_side, {"total": Range(gt=5, lt=100)}) == ["b", "d", "f"]
        assert await self._refs(read_side, {"total": Range(lte=9)}) == ["a", "d", "f"]
        assert await self._refs(
            read_side, {"total": Range(gte=Decimal("28"), lte=Decimal("28.00"))}
        ) == ["b"]
        # A range never matches a missing value.
        assert await self._refs(read_side, {"total": Range(gt=-1000)}) == list("abcdf")

    async def test_booleans_compare_as_booleans(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {"paid": True}) == ["a", "c"]
        assert await self._refs(read_side, {"paid": False}) == ["b", "f"]

    async def test_none_finds_documents_without_the_field(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {"total": None}) == ["e"]
        assert await self._refs(read_side, {"paid": None}) == ["d", "e"]
        assert await self._refs(read_side, {"customer.city": None}) == ["c"]

    async def test_nested_fields_are_found_by_their_dotted_path(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {"customer.city": "Oslo"}) == ["a", "d"]
        assert await self._refs(read_side, {"customer.city": ["Alta", "Bergen"]}) == ["b", "f"]
        assert await self._refs(read_side, {"customer.city": Range(gte="B", lt="P")}) == [
            "a",
            "b",
            "d",
        ]

    async def test_conditions_on_several_fields_all_hold(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        where = {"status": "paid", "total": Range(gte=9)}
        assert await self._refs(read_side, where) == ["c", "f"]
        assert await self._refs(read_side, {**where, "customer.city": None}) == ["c"]

    async def test_find_orders_ascending_with_missing_values_last_and_ties_by_id(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {}, ["total"]) == ["a", "d", "f", "b", "c", "e"]
        assert await self._refs(read_side, {}, ["customer.city"]) == list("fbadec")

    async def test_find_orders_descending_with_missing_values_last_and_ties_by_id(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {}, ["-total"]) == ["c", "b", "d", "f", "a", "e"]
        assert await self._refs(read_side, {}, ["-customer.city"]) == list("eadbfc")

    async def test_find_orders_by_several_fields(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {}, ["status", "-total"]) == list("becfad")
        assert await self._refs(read_side, {"status": "paid"}, ["-paid", "total"]) == list("acf")

    async def test_find_pages_with_limit_and_offset(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await self._refs(read_side, {}, ["total"], limit=2, offset=1) == ["d", "f"]
        assert await self._refs(read_side, {}, ["total"], limit=10, offset=5) == ["e"]
        assert await self._refs(read_side, {}, ["total"], limit=10, offset=6) == []
        assert await self._refs(read_side, {"status": "paid"}, [], limit=1, offset=1) == ["c"]

    async def test_count_counts_what_find_finds(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        await _fill(store, read_side)
        assert await read_side.count("orders", INDEXES, {}) == 6
        assert await read_side.count("orders", INDEXES, {"status": "paid"}) == 3
        assert await read_side.count("orders", INDEXES, {"total": Range(gte=10)}) == 2
        assert await read_side.count("orders", INDEXES, {"total": None}) == 1
        assert await read_side.count("orders", INDEXES, {"status": []}) == 0
        assert await read_side.count("orders_g1", INDEXES, {"customer.city": "Oslo"}) == 2

    @settings(max_examples=25, deadline=None, suppress_health_check=_SHARED_BY_EVERY_BACKEND)
    @given(
        values=st.lists(
            st.one_of(
                st.just(_ABSENT),
                st.none(),
                st.integers(min_value=-50, max_value=50),
                st.decimals(min_value=-50, max_value=50, places=2).map(lambda d: f"{d:.2f}"),
                st.decimals(min_value=-50, max_value=50, places=2).map(float),
            ),
            max_size=12,
        ),
        lower=st.one_of(st.none(), st.integers(min_value=-60, max_value=60)),
        upper=st.one_of(st.none(), st.integers(min_value=-60, max_value=60)),
        descending=st.booleans(),
        offset=st.integers(min_value=0, max_value=4),
    )
    async def test_find_matches_a_sort_by_numeric_value(
        self,
        store: EventStore,
        read_side: ReadSideStorage,
        values: list[Any],
        lower: int | None,
        upper: int | None,
        descending: bool,
        offset: int,
    ) -> None:
        """Any mix of numbers, decimal strings and missing values is filtered and ordered
        like their numeric values (missing last, ties by id)."""
        table = f"numbers_{uuid.uuid4().hex[:12]}"
        docs = {
            f"d{n:02d}": {"n": n} if value == _ABSENT else {"n": n, "total": value}
            for n, value in enumerate(values)
        }
        await _fill(store, read_side, table, docs, view=None)

        def number(doc: Mapping[str, Any]) -> Decimal | None:
            value = doc.get("total")
            return None if value is None else Decimal(str(value))

        bounded = lower is not None or upper is not None
        kept = [
            (key, number(doc))
            for key, doc in docs.items()
            if not bounded
            or (
                (value := number(doc)) is not None
                and (lower is None or value >= lower)
                and (upper is None or value < upper)
            )
        ]
        present = sorted((key, value) for key, value in kept if value is not None)
        present.sort(key=lambda item: item[1], reverse=descending)  # stable: ties by id
        missing = sorted(key for key, value in kept if value is None)
        ordered = [*(key for key, _ in present), *missing]
        expected = [int(key[1:]) for key in ordered][offset : offset + 5]
        where: dict[str, Any] = {"total": Range(gte=lower, lt=upper)} if bounded else {}
        order = ["-total" if descending else "total"]
        found = await read_side.find(table, INDEXES, where, order, 5, offset)
        assert [doc["n"] for doc in found] == expected
        assert await read_side.count(table, INDEXES, where) == len(kept)
