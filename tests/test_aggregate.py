"""Aggregates: handlers, the state guard, rebuilding, snapshot fingerprints."""

from __future__ import annotations

import pytest

from eventledger import Aggregate, AggregateStateError, Event, EventRegistry, InvalidInput, applies
from eventledger.testing import given

kit = EventRegistry()


class Deposited(Event, registry=kit):
    cents: int


class Withdrawn(Event, registry=kit):
    cents: int


class Frozen(Event, registry=kit):
    pass


class Noted(Event, registry=kit):
    text: str


class Account(Aggregate, category="Acct"):
    balance: int = 0
    frozen: bool = False

    def deposit(self, cents: int) -> None:
        self.record(Deposited(cents=cents))

    def note(self, text: str) -> None:
        self.record(Noted(text=text))

    @applies
    def _moved(self, event: Deposited | Withdrawn) -> None:
        self.balance += event.cents if isinstance(event, Deposited) else -event.cents

    @applies(Frozen)
    def _frozen(self, event: Frozen) -> None:
        self.frozen = True


def test_handlers_are_found_from_annotations_and_names() -> None:
    assert set(Account.handled_event_types()) == {Deposited, Withdrawn, Frozen}


def test_recording_applies_the_event_and_keeps_it_pending() -> None:
    account = Account(id="1")
    account.deposit(5)
    account.deposit(7)
    state = (account.balance, account.version, account.saved_version, account.pending_events)
    assert state == (12, 2, 0, (Deposited(cents=5), Deposited(cents=7)))
    account.mark_saved()
    after = (account.saved_version, account.pending_events)
    assert after == (2, ())


def test_state_changes_only_in_handlers() -> None:
    account = Account(id="1")
    with pytest.raises(
        AggregateStateError, match=r"Account\.balance changes only in an event handler"
    ):
        account.balance = 100
    assert account.balance == 0


def test_an_event_without_a_handler_is_refused_and_changes_nothing() -> None:
    account = Account(id="1")
    with pytest.raises(AggregateStateError, match="no handler for Noted"):
        account.note("hello")
    assert (account.version, account.pending_events) == (0, ())


def test_rebuilding_from_events_leaves_nothing_pending() -> None:
    account = Account.from_events("9", [Deposited(cents=10), Withdrawn(cents=3), Frozen()])
    assert (account.balance, account.frozen, account.version) == (7, True, 3)
    assert account.pending_events == ()


def test_stream_ids_use_the_category() -> None:
    assert Account.stream_id_for("9") == "Acct-9"
    assert Account(id="x").stream_id == "Acct-x"

    class Plain(Aggregate):
        pass

    assert Plain.stream_id_for("1") == "Plain-1"
    with pytest.raises(InvalidInput, match="control character"):
        Plain.stream_id_for("bad\nid")


def test_handlers_are_inherited_and_can_be_overridden() -> None:
    class Savings(Account):
        interest: int = 0

        @applies(Deposited)
        def _deposited(self, event: Deposited) -> None:
            self.balance += event.cents
            self.interest += 1

    savings = Savings.from_events("s", [Deposited(cents=4), Withdrawn(cents=1)])
    assert (savings.balance, savings.interest) == (3, 1)


def test_the_snapshot_fingerprint_follows_the_shape_and_the_snapshot_version() -> None:
    class V1(Aggregate):
        count: int = 0

    class V1Again(Aggregate):
        count: int = 0

    class V2(Aggregate):
        count: str = ""

    class V1Bumped(Aggregate):
        snapshot_version = 2
        count: int = 0

    assert V1.snapshot_fingerprint() != V2.snapshot_fingerprint()
    assert V1.snapshot_fingerprint() != V1Bumped.snapshot_fingerprint()
    # The title differs, the shape does not: the class name is part of the JSON schema.
    assert V1.snapshot_fingerprint() != V1Again.snapshot_fingerprint()


def test_snapshots_round_trip_the_state_and_version() -> None:
    account = Account.from_events("3", [Deposited(cents=10), Frozen()])
    copy = Account.from_snapshot(account.to_snapshot(), account.version)
    assert copy == account
    assert copy.version == 2


def test_bad_handler_declarations_are_refused_at_class_definition() -> None:
    with pytest.raises(InvalidInput, match="takes Event subclasses"):
        applies(int)  # type: ignore[type-var]
    with pytest.raises(InvalidInput, match="annotate the event parameter"):

        class Unannotated(Aggregate):
            @applies
            def _x(self, event) -> None:  # type: ignore[no-untyped-def]
                pass

    with pytest.raises(InvalidInput, match="not an Event subclass"):

        class WrongType(Aggregate):
            @applies
            def _x(self, event: int) -> None:
                pass


def test_the_kit_reports_what_differs() -> None:
    outcome = given(Account, Deposited(cents=1)).when(lambda a: a.deposit(2))
    with pytest.raises(AssertionError, match=r"expected events \[Deposited\(cents=3\)\]"):
        outcome.then(Deposited(cents=3))
    with pytest.raises(AssertionError, match="nothing was raised"):
        outcome.raises(AggregateStateError)
    failing = given(Account).when(lambda a: a.note("x"))
    with pytest.raises(AssertionError, match="the action raised AggregateStateError"):
        failing.then()
    with pytest.raises(AssertionError, match="does not match"):
        failing.raises(AggregateStateError, match="something else")


def test_the_kit_catches_a_rule_checked_after_recording() -> None:
    def sloppy(account: Account) -> None:
        account.deposit(1)
        raise ValueError("rule checked too late")

    with pytest.raises(AssertionError, match="only after recording"):
        given(Account).when(sloppy).raises(ValueError)
