"""Typed events: names, versions, the registry, upcasting and renames."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from eventledger import (
    Event,
    EventDecodeError,
    EventRegistry,
    InvalidInput,
    RecordedEvent,
    UnknownEventType,
)

registry = EventRegistry()


class Placed(Event, registry=registry):
    customer: str
    total_cents: int


class Named(Event, name="shop.Named", version=3, registry=registry):
    title: str


def recorded(event_type: str, data: dict[str, Any], schema_version: int = 1) -> RecordedEvent:
    return RecordedEvent(
        uuid.uuid4(), "Order-1", 4, 99, event_type, schema_version, data, {}, datetime.now(UTC)
    )


def test_type_name_and_version_default_to_the_class_name_and_one() -> None:
    assert (Placed.event_type, Placed.event_version) == ("Placed", 1)
    assert (Named.event_type, Named.event_version) == ("shop.Named", 3)


def test_events_are_immutable_and_refuse_unknown_fields() -> None:
    event = Placed(customer="alice", total_cents=100)
    with pytest.raises(pydantic.ValidationError):
        event.customer = "bob"
    with pytest.raises(pydantic.ValidationError, match="colour"):
        Placed(customer="alice", total_cents=1, colour="red")  # type: ignore[call-arg]


def test_payload_validation_errors_name_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="total_cents"):
        Placed(customer="alice", total_cents="lots")  # type: ignore[arg-type]


def test_an_event_becomes_a_new_event_with_its_type_and_version() -> None:
    new = Named(title="x").to_new_event({"actor": "me"})
    assert (new.type, new.schema_version, new.data, new.metadata) == (
        "shop.Named",
        3,
        {"title": "x"},
        {"actor": "me"},
    )


def test_decoding_a_recorded_event_gives_its_class() -> None:
    assert registry.decode(recorded("Placed", {"customer": "a", "total_cents": 5})) == Placed(
        customer="a", total_cents=5
    )


def test_an_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(UnknownEventType, match=r"'Vanished'.*stream 'Order-1', version 4"):
        registry.decode(recorded("Vanished", {}))


def test_a_payload_that_does_not_fit_names_the_field_and_the_event() -> None:
    with pytest.raises(EventDecodeError, match=r"total_cents: .*stream 'Order-1'"):
        registry.decode(recorded("Placed", {"customer": "a", "total_cents": "many"}))


def test_two_classes_cannot_claim_one_type_name() -> None:
    with pytest.raises(InvalidInput, match="'Placed' is taken by"):

        class Placed(Event, registry=registry):
            other: int


def test_bad_names_and_versions_are_refused() -> None:
    with pytest.raises(InvalidInput, match="event type"):

        class BadName(Event, name="not valid", registry=EventRegistry()):
            pass

    with pytest.raises(InvalidInput, match="version must be an int"):

        class BadVersion(Event, version=0, registry=EventRegistry()):
            pass


def test_upcasters_lift_old_payloads_step_by_step() -> None:
    local = EventRegistry()

    class Shipped(Event, version=3, registry=local):
        carrier: str
        tracking: str

    @local.upcaster("Shipped", from_version=1)
    def add_carrier(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "carrier": "unknown"}

    @local.upcaster("Shipped", from_version=2)
    def rename_field(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        data["tracking"] = data.pop("tracking_number")
        return data

    stored = {"tracking_number": "T-1"}
    assert local.decode(recorded("Shipped", stored, 1)) == Shipped(
        carrier="unknown", tracking="T-1"
    )
    assert stored == {"tracking_number": "T-1"}, "the stored payload must not change"
    v2 = {"tracking_number": "T-2", "carrier": "DHL"}
    assert local.decode(recorded("Shipped", v2, 2)) == Shipped(carrier="DHL", tracking="T-2")


def test_a_missing_upcaster_names_the_type_and_versions() -> None:
    local = EventRegistry()

    class Billed(Event, version=2, registry=local):
        cents: int

    with pytest.raises(EventDecodeError, match=r"Billed is stored at version 1 .* version 2"):
        local.decode(recorded("Billed", {"euros": 1}, 1))


def test_a_payload_from_newer_code_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="written by newer code"):
        registry.decode(recorded("Placed", {"customer": "a", "total_cents": 1}, 2))


def test_a_renamed_type_is_read_under_its_new_name() -> None:
    local = EventRegistry()

    class OrderPlaced(Event, version=2, registry=local):
        customer: str

    local.rename("OrderMade", "OrderPlaced")

    @local.upcaster("OrderPlaced", from_version=1)
    def v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"customer": data["who"]}

    assert local.decode(recorded("OrderMade", {"who": "zoe"})) == OrderPlaced(customer="zoe")
    assert "OrderMade" in local
    with pytest.raises(InvalidInput, match="cycle"):
        local.rename("OrderPlaced", "OrderMade")


def test_an_upcaster_is_registered_once_per_version() -> None:
    local = EventRegistry()

    @local.upcaster("Thing", from_version=1)
    def first(data: dict[str, Any]) -> dict[str, Any]:
        return data

    with pytest.raises(InvalidInput, match="already has an upcaster"):
        local.upcaster("Thing", from_version=1)(first)


def test_a_page_decodes_as_each_event_would_alone() -> None:
    local = EventRegistry()

    class OrderPlaced(Event, version=2, registry=local):
        customer: str

    class Paid(Event, registry=local):
        cents: int

    @local.upcaster("OrderPlaced", from_version=1)
    def v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"customer": data["who"]}

    page = [
        recorded("OrderPlaced", {"customer": "ann"}, 2),
        recorded("OrderPlaced", {"who": "bob"}, 1),
        recorded("Paid", {"cents": "12"}),
        recorded("Paid", {"cents": 3}),
    ]
    assert local.decode_page(page) == [local.decode(r) for r in page]
    assert local.decode_page([]) == []
    # A rename after the first page changes what the next page reads.
    local.rename("Paid", "OrderPlaced")
    assert local.decode_page([recorded("Paid", {"who": "cy"})]) == [OrderPlaced(customer="cy")]


def test_a_bad_event_in_a_page_names_its_field_and_place_as_decode_does() -> None:
    page = [
        recorded("Placed", {"customer": "a", "total_cents": 5}),
        recorded("Placed", {"customer": "a", "total_cents": "many"}),
    ]
    with pytest.raises(EventDecodeError, match=r"total_cents: .*stream 'Order-1', version 4"):
        registry.decode_page(page)
    with pytest.raises(UnknownEventType, match=r"'Vanished'.*stream 'Order-1'"):
        registry.decode_page([recorded("Vanished", {})])


def test_an_upcaster_that_fails_is_a_decode_error_naming_it_and_the_event() -> None:
    local = EventRegistry()

    class Moved(Event, version=2, registry=local):
        to: str

    @local.upcaster("Moved", from_version=1)
    def needs_where(data: dict[str, Any]) -> dict[str, Any]:
        return {"to": data["where"]}

    with pytest.raises(
        EventDecodeError,
        match=r"upcaster of Moved from version 1 \(.*needs_where\) raised KeyError: 'where'"
        r" \(stream 'Order-1', version 4",
    ) as caught:
        local.decode(recorded("Moved", {"there": "x"}, 1))
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(EventDecodeError, match="needs_where"):
        local.decode_page([recorded("Moved", {"where": "a"}, 1), recorded("Moved", {}, 1)])


def test_an_upcaster_must_return_the_payload() -> None:
    local = EventRegistry()

    class Moved(Event, version=2, registry=local):
        to: str

    @local.upcaster("Moved", from_version=1)
    def forgot_return(data: dict[str, Any]) -> dict[str, Any]:
        data = {**data, "to": "x"}
        return None  # type: ignore[return-value]

    with pytest.raises(EventDecodeError, match=r"forgot_return\) returned NoneType, not the"):
        local.decode(recorded("Moved", {}, 1))


def test_an_upcaster_s_own_decode_error_is_kept_as_it_is() -> None:
    local = EventRegistry()

    class Moved(Event, version=2, registry=local):
        to: str

    @local.upcaster("Moved", from_version=1)
    def only_known_places(data: dict[str, Any]) -> dict[str, Any]:
        raise UnknownEventType(f"no place {data.get('where')!r}")

    with pytest.raises(UnknownEventType, match=r"no place 'x' \(stream 'Order-1'"):
        local.decode(recorded("Moved", {"where": "x"}, 1))
