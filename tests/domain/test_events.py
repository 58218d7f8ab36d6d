"""Events, their JSON codec, aggregates and upcasters, with no database."""

import dataclasses
import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal

import pytest

from eventsourcing_app.core.errors import RegistrationError
from eventsourcing_app.domain import (
    DomainEvent,
    EventDecodingError,
    UnknownEventType,
    event_type,
    registry,
)
from eventsourcing_app.domain.events import EventRegistry
from eventsourcing_app.domain.upcasting import Upcasters
from tests.domain.sample import Account, AccountOpened, MoneyDeposited, MoneyWithdrawn


def test_events_have_stable_names_and_schema_versions():
    assert MoneyDeposited.type_name == "sample.MoneyDeposited"
    assert MoneyDeposited.schema_version == 3
    assert AccountOpened.schema_version == 1
    assert "sample.MoneyWithdrawn" in registry


def test_money_ids_and_times_round_trip_exactly_through_plain_json():
    event = MoneyDeposited(Decimal("1234567890.10"), "EUR", uuid.uuid4())
    data = registry.encode(event)
    assert data == {"amount": "1234567890.10", "currency": "EUR", "reference": str(event.reference)}
    assert registry.decode("sample.MoneyDeposited", data) == event
    zurich = dt.datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=zoneinfo.ZoneInfo("Europe/Zurich"))
    withdrawn = MoneyWithdrawn(Decimal("0.01"), zurich)
    decoded = registry.decode("sample.MoneyWithdrawn", registry.encode(withdrawn))
    assert decoded == withdrawn
    assert decoded.at.utcoffset() == zurich.utcoffset()
    opened = AccountOpened("Ada", dt.date(1815, 12, 10))
    assert registry.decode("sample.AccountOpened", registry.encode(opened)) == opened


def test_renaming_the_class_does_not_break_old_events():
    stored = {"owner": "Ada", "opened_on": "2026-01-02"}
    renamed = EventRegistry()

    @dataclasses.dataclass(frozen=True)
    class CustomerAccountOpened(DomainEvent):
        owner: str
        opened_on: dt.date

    renamed.register(CustomerAccountOpened, "sample.AccountOpened", 1)
    assert renamed.decode("sample.AccountOpened", stored) == CustomerAccountOpened(
        "Ada", dt.date(2026, 1, 2)
    )


def test_registration_mistakes_are_refused():
    with pytest.raises(RegistrationError, match="already registered"):

        @event_type("sample.MoneyDeposited")
        @dataclasses.dataclass(frozen=True)
        class Impostor(DomainEvent):
            amount: Decimal

    with pytest.raises(RegistrationError, match="frozen dataclass"):

        @event_type("sample.Mutable")
        @dataclasses.dataclass
        class Mutable(DomainEvent):
            amount: Decimal


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "1.00", "currency": "EUR"}, r"missing \['reference'\]"),
        ({"amount": "1.00", "currency": "EUR", "reference": None, "x": 1}, r"unexpected \['x'\]"),
        ({"amount": "lots", "currency": "EUR", "reference": None}, "sample.MoneyDeposited"),
        ({"amount": 1.5, "currency": "EUR", "reference": None}, "decimal string"),
        ({"amount": "1", "currency": "EUR", "reference": "not-a-uuid"}, "sample.MoneyDeposited"),
        (["not", "an", "object"], "not an object"),
    ],
)
def test_data_that_does_not_fit_its_class_is_a_clear_error(data, message):
    with pytest.raises(EventDecodingError, match=message):
        registry.decode("sample.MoneyDeposited", data)


def test_unknown_type_names_are_a_clear_error():
    with pytest.raises(UnknownEventType, match=r"'sample\.Nope'"):
        registry.event_class("sample.Nope")


def test_commands_record_events_and_apply_them():
    account = Account.open("Ada")
    account.deposit(Decimal("10.00"))
    account.withdraw(Decimal("2.50"))
    assert account.version == 3
    assert account.original_version == 0
    assert account.balance == Decimal("7.50")
    assert [type(e) for e in account.pending_events] == [
        AccountOpened,
        MoneyDeposited,
        MoneyWithdrawn,
    ]
    assert len(account.mark_saved()) == 3
    assert account.pending_events == []
    assert account.original_version == 3


def test_a_refused_command_records_nothing():
    account = Account.open("Ada")
    with pytest.raises(ValueError, match="positive"):
        account.deposit(Decimal("-1"))
    assert account.version == 1
    assert len(account.pending_events) == 1


def test_an_event_the_aggregate_cannot_apply_names_type_and_aggregate():
    @event_type("sample.Unhandled")
    @dataclasses.dataclass(frozen=True)
    class Unhandled(DomainEvent):
        note: str

    account = Account.open("Ada")
    with pytest.raises(UnknownEventType, match=rf"Account {account.id} .*sample\.Unhandled"):
        account.apply(Unhandled("?"))


def test_upcasters_lift_old_data_step_by_step_without_touching_it():
    from eventsourcing_app.domain import upcasters

    stored_v1 = {"value": "5.00"}
    lifted = upcasters.upcast("sample.MoneyDeposited", 1, stored_v1, 3)
    assert lifted == {"amount": "5.00", "currency": "EUR", "reference": None}
    assert stored_v1 == {"value": "5.00"}
    assert registry.decode("sample.MoneyDeposited", lifted) == MoneyDeposited(
        Decimal("5.00"), "EUR"
    )
    with pytest.raises(EventDecodingError, match="newer than the v3"):
        upcasters.upcast("sample.MoneyDeposited", 4, {}, 3)


def test_chain_problems_name_the_gap():
    steps = Upcasters()
    for version in (1, 3):
        steps.register("shop.OrderPlaced", version, lambda data: data)
    steps.register("shop.Orphan", 1, lambda data: data)
    problems = steps.problems([("shop.OrderPlaced", 4), ("shop.Paid", 2)])
    assert problems == [
        "shop.OrderPlaced: no upcaster from v2 to v3 (the chain to v4 has a gap)",
        "shop.Orphan: upcasters are registered but no event class is",
    ]
    assert steps.problems([("shop.OrderPlaced", 3), ("shop.Orphan", 2)]) == [
        "shop.OrderPlaced: upcaster from v3 but the event class is at v3",
        "shop.OrderPlaced: no upcaster from v2 to v3 (the chain to v3 has a gap)",
    ]
