"""Property: loading at any version or time, with or without snapshots, equals a plain replay."""

import contextlib
import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.store import EventStore
from tests.domain.sample import Account, InsufficientFunds

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
commands = st.lists(st.tuples(st.sampled_from(["deposit", "withdraw"]), amounts), max_size=30)


def minute_clock():
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    moments = (start + dt.timedelta(minutes=n) for n in range(10**6))
    return lambda: next(moments)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(commands=commands, interval=st.integers(1, 7), save_every=st.integers(1, 5))
def test_state_at_every_version_and_time_equals_a_replay(
    recorder, snapshots, commands, interval, save_every
):
    store = EventStore(recorder, clock=minute_clock(), read_batch_size=5)
    with_snapshots = Repository(Account, store, snapshots=snapshots, snapshot_interval=interval)
    account = Account.open("Ada")
    for number, (command, amount) in enumerate(commands, start=1):
        with contextlib.suppress(InsufficientFunds):
            getattr(account, command)(amount)
        if number % save_every == 0:
            with_snapshots.save(account)
    with_snapshots.save(account)

    stored = list(store.read_stream(account.id))
    replay = Account(account.id)
    expected = {}
    for event in stored:
        replay.apply(with_snapshots.to_domain(event))
        expected[event.version] = replay.state()
    assert replay.state() == account.state()

    without_snapshots = Repository(Account, store)
    for version, state in expected.items():
        assert with_snapshots.load(account.id, version=version).state() == state
        assert without_snapshots.load(account.id, version=version).state() == state
    for event in stored:
        as_of = with_snapshots.load(account.id, as_of=event.created_at)
        last_at_that_time = max(e.version for e in stored if e.created_at <= event.created_at)
        assert as_of.state() == expected[last_at_that_time]
    assert with_snapshots.stale_snapshots == 0
