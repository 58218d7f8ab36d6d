"""The repository on every recorder: load, save, conflicts, time travel, snapshots, upcasting."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from eventsourcing_app.core.errors import ConcurrencyError
from eventsourcing_app.core.records import NO_STREAM, NewEvent, SnapshotRecord, StreamHead
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.domain import AggregateNotFound, UnknownEventType
from tests.domain.sample import Account, MoneyDeposited

TYPE = "sample.Account"


@pytest.fixture
def clock():
    """A clock that moves one minute per append, so times are known."""
    moments = (
        dt.datetime(2026, 5, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n) for n in range(10**6)
    )
    return lambda: next(moments)


@pytest.fixture
def store(recorder, clock):
    return EventStore(recorder, clock=clock, read_batch_size=4)


@pytest.fixture
def accounts(store):
    return Repository(Account, store)


def opened_with(repository, *amounts: str) -> Account:
    account = Account.open("Ada")
    repository.save(account)
    for amount in amounts:
        account.deposit(Decimal(amount))
        repository.save(account)
    return account


def test_saved_aggregates_load_with_their_state_and_version(accounts):
    account = Account.open("Ada")
    account.deposit(Decimal("10.00"))
    account.withdraw(Decimal("3.25"))
    stored = accounts.save(account)
    assert [e.version for e in stored] == [1, 2, 3]
    assert account.pending_events == []
    loaded = accounts.load(account.id)
    assert loaded.state() == account.state()
    assert loaded.balance == Decimal("6.75")
    assert accounts.load(str(account.id)).version == 3
    assert accounts.save(loaded) == []


def test_a_load_leaves_the_stream_s_head_remembered_for_the_save_that_follows(accounts, store):
    """The load's replay remembers the stream's head, so the save after it (a command) needs
    no query for it; what it chains onto is the stream's real last event."""
    account = opened_with(accounts, "1.00", "2.00", "3.00", "4.00", "5.00")
    last = list(store.read_stream(account.id))[-1]
    store.heads.forget(account.id)
    loaded = accounts.load(account.id)  # 6 events: two replay batches of 4
    assert store.heads.get(account.id) == StreamHead(TYPE, 6, last.hash)
    loaded.deposit(Decimal("6.00"))
    assert [e.version for e in accounts.save(loaded)] == [7]
    assert accounts.load(account.id).balance == Decimal("21.00")
    assert verify_chains(store.recorder).intact


def test_a_lost_race_is_a_conflict_not_a_lost_update(accounts):
    account = opened_with(accounts, "10.00")
    first, second = accounts.load(account.id), accounts.load(account.id)
    first.deposit(Decimal("1.00"))
    second.deposit(Decimal("2.00"))
    accounts.save(first)
    with pytest.raises(ConcurrencyError) as caught:
        accounts.save(second)
    assert (caught.value.expected, caught.value.actual) == (2, 3)
    assert accounts.load(account.id).balance == Decimal("11.00")


def test_missing_aggregates_versions_and_times_are_not_found(accounts, store):
    with pytest.raises(AggregateNotFound, match="no Account"):
        accounts.load(uuid.uuid4())
    with pytest.raises(AggregateNotFound, match="not an aggregate id"):
        accounts.load("account-1")
    account = opened_with(accounts, "1.00")
    with pytest.raises(AggregateNotFound, match="has 2 events, not 5"):
        accounts.load(account.id, version=5)
    first_event = next(iter(store.read_stream(account.id)))
    before = first_event.created_at - dt.timedelta(seconds=1)
    with pytest.raises(AggregateNotFound, match="did not exist at"):
        accounts.load(account.id, as_of=before)
    with pytest.raises(ValueError, match="positive integer"):
        accounts.load(account.id, version=0)
    other = uuid.uuid4()
    store.append(
        other, [NewEvent("sample.Else", {})], expected_version=NO_STREAM, aggregate_type="x.Y"
    )
    with pytest.raises(AggregateNotFound, match=r"is a x\.Y"):
        accounts.load(other)


def test_time_travel_by_version_and_by_time(accounts, store):
    account = opened_with(accounts, "1.00", "2.00", "4.00")
    assert accounts.load(account.id, version=2).balance == Decimal("1.00")
    assert accounts.load(account.id, version=3).balance == Decimal("3.00")
    times = [e.created_at for e in store.read_stream(account.id)]
    assert accounts.load(account.id, as_of=times[2]).balance == Decimal("3.00")
    between = times[2] + (times[3] - times[2]) / 2
    assert accounts.load(account.id, as_of=between).version == 3
    assert accounts.load(account.id, as_of=times[3] + dt.timedelta(days=1)).version == 4


def test_execute_retries_a_command_after_a_conflict(accounts):
    account = opened_with(accounts, "10.00")
    interloper = Repository(Account, accounts.store)
    calls = []

    def deposit_five(target: Account) -> None:
        calls.append(target.version)
        if len(calls) == 1:  # someone else writes between our load and our save
            other = interloper.load(account.id)
            other.deposit(Decimal("1.00"))
            interloper.save(other)
        target.deposit(Decimal("5.00"))

    loaded, stored = accounts.execute(account.id, deposit_five)
    assert calls == [2, 3]
    assert [e.version for e in stored] == [4]
    assert loaded.balance == accounts.load(account.id).balance == Decimal("16.00")


def test_execute_gives_up_after_its_attempts(accounts):
    account = opened_with(accounts)

    def always_overtaken(target: Account) -> None:
        other = Repository(Account, accounts.store).load(account.id)
        other.deposit(Decimal("1.00"))
        accounts.save(other)
        target.deposit(Decimal("5.00"))

    with pytest.raises(ConcurrencyError):
        accounts.execute(account.id, always_overtaken, attempts=2)
    assert accounts.load(account.id).balance == Decimal("2.00")


def test_old_schema_versions_are_upcast_on_read_and_stay_stored_as_they_were(accounts, store):
    account = opened_with(accounts)
    store.append(
        account.id,
        [
            NewEvent("sample.MoneyDeposited", {"value": "1.00"}, schema_version=1),
            NewEvent("sample.MoneyDeposited", {"value": "2.00", "currency": "EUR"}, 2),
            NewEvent(
                "sample.MoneyDeposited", {"amount": "4.00", "currency": "EUR", "reference": None}, 3
            ),
        ],
        expected_version=1,
        aggregate_type=TYPE,
    )
    loaded = accounts.load(account.id)
    assert loaded.balance == Decimal("7.00")
    stored = list(store.read_stream(account.id))
    assert [e.schema_version for e in stored[1:]] == [1, 2, 3]
    assert stored[1].data == {"value": "1.00"}
    assert accounts.to_domain(stored[1]) == MoneyDeposited(Decimal("1.00"), "EUR")


def test_an_unknown_stored_event_type_names_type_and_aggregate(accounts, store):
    account = opened_with(accounts)
    store.append(
        account.id, [NewEvent("sample.Mystery", {})], expected_version=1, aggregate_type=TYPE
    )
    with pytest.raises(
        UnknownEventType, match=rf"'sample\.Mystery' .* v2 of sample\.Account {account.id}"
    ):
        accounts.load(account.id)


class CountingSnapshots:
    """Wrap a snapshot store and remember which versions loads started from."""

    def __init__(self, inner):
        self.inner, self.used = inner, []

    def latest(self, aggregate_id, at_or_below, schema_version=None):
        found = self.inner.latest(aggregate_id, at_or_below, schema_version)
        self.used.append(found and found.version)
        return found

    def save(self, snapshot):
        self.inner.save(snapshot)

    def purge(self, aggregate_type=None):
        return self.inner.purge(aggregate_type)


def test_snapshots_are_taken_every_n_events_and_loads_start_from_them(store, snapshots):
    counting = CountingSnapshots(snapshots)
    accounts = Repository(Account, store, snapshots=counting, snapshot_interval=3)
    account = opened_with(accounts, *["1.00"] * 7)  # versions 1..8, one save each
    assert [
        counting.inner.latest(account.id, v) and counting.inner.latest(account.id, v).version
        for v in (2, 3, 5, 6, 8)
    ] == [None, 3, 3, 6, 6]
    replay = Repository(Account, store)
    for version in range(1, 9):
        loaded = accounts.load(account.id, version=version)
        assert loaded.state() == replay.load(account.id, version=version).state()
    assert counting.used[-8:] == [None, None, 3, 3, 3, 6, 6, 6]
    assert accounts.load(account.id).balance == Decimal("7.00")


def test_a_save_crossing_several_boundaries_writes_one_snapshot_at_its_end(store, snapshots):
    accounts = Repository(Account, store, snapshots=snapshots, snapshot_interval=2)
    account = Account.open("Ada")
    for _ in range(4):
        account.deposit(Decimal("1.00"))
    accounts.save(account)
    assert snapshots.latest(account.id, None).version == 5
    assert snapshots.latest(account.id, 4) is None


def test_stale_or_broken_snapshots_are_ignored_counted_and_never_crash(store, snapshots):
    accounts = Repository(Account, store, snapshots=snapshots, snapshot_interval=2)
    account = opened_with(accounts, "1.00", "2.00", "4.00")  # snapshots at v2 and v4
    snapshots.save(SnapshotRecord(account.id, TYPE, 3, {"balance": "garbage"}, schema_version=1))
    Account.snapshot_schema_version = 2  # the aggregate's shape changed since
    try:
        assert (
            accounts.load(account.id).state() == Repository(Account, store).load(account.id).state()
        )
        assert accounts.stale_snapshots == 1
    finally:
        Account.snapshot_schema_version = 1
    broken = SnapshotRecord(account.id, TYPE, 5, {"balance": {"$decimal": "not a number"}}, 1)
    store.append(
        account.id,
        [
            NewEvent(
                "sample.MoneyDeposited", {"amount": "8.00", "currency": "EUR", "reference": None}, 3
            )
        ],
        expected_version=4,
        aggregate_type=TYPE,
    )
    snapshots.save(broken)
    assert accounts.load(account.id).balance == Decimal("15.00")
    assert accounts.stale_snapshots == 2


def test_a_conflicting_save_writes_no_snapshot(store, snapshots):
    accounts = Repository(Account, store, snapshots=snapshots, snapshot_interval=2)
    account = opened_with(accounts)
    first, second = accounts.load(account.id), accounts.load(account.id)
    first.deposit(Decimal("1.00"))
    second.deposit(Decimal("9.00"))
    accounts.save(first)
    snapshots.purge()
    with pytest.raises(ConcurrencyError):
        accounts.save(second)
    assert snapshots.latest(account.id, None) is None
