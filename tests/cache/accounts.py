"""A small document read model for the cache's tests, and a model of it in plain Python
that says what the read model holds at any position of the log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from eventledger import RecordedEvent
from eventledger.projections import Context, DocumentProjection, Range, on


class Accounts(DocumentProjection):
    """One document per account: its owner and balance; closing deletes it."""

    name = "accounts"
    categories = ("Account",)
    indexes: ClassVar[dict[str, str]] = {"owner": "text", "balance": "number"}
    label: ClassVar[str] = "v1"
    """Written into every document: a rebuild after changing it shows which generation
    answers."""

    @on("Opened")
    async def opened(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        doc = {"id": context.aggregate_id, "owner": event.data["owner"], "balance": 0}
        await context.docs.put(context.aggregate_id, {**doc, "label": type(self).label})

    @on("Deposited")
    async def deposited(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        doc = await context.docs.get(context.aggregate_id)
        if doc is not None:
            doc["balance"] += event.data["amount"]
            await context.docs.put(context.aggregate_id, doc)

    @on("Closed")
    async def closed(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        await context.docs.delete(context.aggregate_id)


def fold(events: Iterable[RecordedEvent], upto: int, label: str = "v1") -> dict[str, Any]:
    """The documents of :class:`Accounts` after the events up to position `upto`."""
    docs: dict[str, Any] = {}
    for event in events:
        if event.position > upto or event.category != "Account":
            continue
        doc_id = event.stream_id.partition("-")[2]
        if event.type == "Opened":
            owner = event.data["owner"]
            docs[doc_id] = {"id": doc_id, "owner": owner, "balance": 0, "label": label}
        elif event.type == "Deposited" and doc_id in docs:
            docs[doc_id] = {
                **docs[doc_id],
                "balance": docs[doc_id]["balance"] + event.data["amount"],
            }
        elif event.type == "Closed":
            docs.pop(doc_id, None)
    return docs


def matches(doc: dict[str, Any], where: dict[str, Any]) -> bool:
    for field, condition in where.items():
        value = doc.get(field)
        if isinstance(condition, Range):
            for op, bound in condition.bounds():
                if (
                    value is None
                    or not {
                        ">": value > bound,
                        ">=": value >= bound,
                        "<": value < bound,
                        "<=": value <= bound,
                    }[op]
                ):
                    return False
        elif value != condition:
            return False
    return True
