"""The event store's contract, run against every recorder (in memory, Django on this database)."""

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.core.errors import (
    ConcurrencyError,
    InvalidAppend,
    MissingPredecessor,
    StreamTypeMismatch,
)
from eventsourcing_app.core.records import (
    ANY,
    GENESIS_HASH,
    NO_STREAM,
    START,
    NewEvent,
    Position,
    StreamHead,
)
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.core.verification import verify_chains
from tests.helpers import deposits, new_id

ACCOUNT = "ledger.Account"


def stream_of(store, aggregate_id):
    return [(e.version, e.event_type, e.data) for e in store.read_stream(aggregate_id)]


def test_append_to_a_new_stream_numbers_versions_from_one(store):
    account = new_id()
    stored = store.append(
        account,
        deposits("1.00", "2.00", "3.00"),
        expected_version=NO_STREAM,
        aggregate_type=ACCOUNT,
    )
    assert [e.version for e in stored] == [1, 2, 3]
    assert [e.data["amount"] for e in store.read_stream(account)] == ["1.00", "2.00", "3.00"]
    assert stored == list(store.read_stream(account))
    assert store.stream_version(account) == 3


def test_exact_expected_version_extends_the_stream(store):
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=0, aggregate_type=ACCOUNT)
    stored = store.append(
        account, deposits("2.00", "3.00"), expected_version=1, aggregate_type=ACCOUNT
    )
    assert [e.version for e in stored] == [2, 3]
    assert [v for v, _, _ in stream_of(store, account)] == [1, 2, 3]


def test_stale_expected_version_is_a_conflict_and_writes_nothing(store):
    account = new_id()
    store.append(
        account, deposits("1.00", "2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    with pytest.raises(ConcurrencyError) as caught:
        store.append(account, deposits("3.00", "4.00"), expected_version=1, aggregate_type=ACCOUNT)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert caught.value.aggregate_id == account
    assert len(stream_of(store, account)) == 2


def test_expected_version_above_the_end_is_refused_never_leaving_a_gap(store):
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    with pytest.raises(ConcurrencyError) as caught:
        store.append(account, deposits("9.00"), expected_version=5, aggregate_type=ACCOUNT)
    assert (caught.value.expected, caught.value.actual) == (5, 1)
    assert [v for v, _, _ in stream_of(store, account)] == [1]


def test_no_stream_on_an_existing_stream_is_a_conflict(store):
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    with pytest.raises(ConcurrencyError) as caught:
        store.append(account, deposits("2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    assert (caught.value.expected, caught.value.actual) == (NO_STREAM, 1)


def test_exact_version_on_a_missing_stream_is_a_conflict(store):
    account = new_id()
    with pytest.raises(ConcurrencyError) as caught:
        store.append(account, deposits("1.00"), expected_version=2, aggregate_type=ACCOUNT)
    assert caught.value.actual is None
    assert store.stream_version(account) is None


def test_any_appends_at_the_end_whatever_the_version(store):
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=ANY, aggregate_type=ACCOUNT)
    stored = store.append(account, deposits("2.00"), expected_version=ANY, aggregate_type=ACCOUNT)
    assert [e.version for e in stored] == [2]


def test_a_stream_keeps_its_aggregate_type(store):
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    with pytest.raises(StreamTypeMismatch, match=r"holds a ledger\.Account"):
        store.append(
            account, deposits("2.00"), expected_version=1, aggregate_type="ledger.Transfer"
        )
    assert store.stream_version(account) == 1


def _bad_appends():
    good = deposits("1.00")
    return {
        "empty type": dict(events=[NewEvent("", {})]),
        "type not a name": dict(events=[NewEvent("bank deposit!", {})]),
        "type too long": dict(events=[NewEvent("a" * 101, {})]),
        "type not a string": dict(events=[NewEvent(42, {})]),
        "decimal in data": dict(events=[NewEvent("ledger.X", {"amount": Decimal("1.00")})]),
        "datetime in data": dict(events=[NewEvent("ledger.X", {"at": dt.datetime(2026, 1, 1)})]),
        "set in data": dict(events=[NewEvent("ledger.X", {"tags": {"a"}})]),
        "nan in data": dict(events=[NewEvent("ledger.X", {"rate": float("nan")})]),
        "non-string key": dict(events=[NewEvent("ledger.X", {1: "one"})]),
        "NUL in data": dict(events=[NewEvent("ledger.X", {"memo": "a\x00b"})]),
        "lone surrogate": dict(events=[NewEvent("ledger.X", {"memo": "\ud800"})]),
        "data not an object": dict(events=[NewEvent("ledger.X", ["a"])]),
        "bad metadata": dict(events=[NewEvent("ledger.X", {}, metadata={"why": object()})]),
        "schema version zero": dict(events=[NewEvent("ledger.X", {}, schema_version=0)]),
        "schema version text": dict(events=[NewEvent("ledger.X", {}, schema_version="2")]),
        "no events": dict(events=[]),
        "not a list": dict(events=NewEvent("ledger.X", {})),
        "not NewEvent": dict(events=[{"event_type": "ledger.X"}]),
        "stream not a UUID": dict(events=good, stream="account-1"),
        "stream an int": dict(events=good, stream=7),
        "expected version text": dict(events=good, expected_version="0"),
        "expected version float": dict(events=good, expected_version=0.0),
        "expected version bool": dict(events=good, expected_version=False),
        "expected version None": dict(events=good, expected_version=None),
        "expected version negative": dict(events=good, expected_version=-1),
        "aggregate type empty": dict(events=good, aggregate_type=""),
        # a good event after a bad one: nothing of the batch may be written
        "bad event after a good one": dict(events=[*good, NewEvent("ledger.X", {"x": {1, 2}})]),
    }


@pytest.mark.parametrize("case", list(_bad_appends()))
def test_bad_input_gets_a_clear_error_and_writes_nothing(store, case):
    account = new_id()
    arguments = {
        "stream": account,
        "expected_version": NO_STREAM,
        "aggregate_type": ACCOUNT,
        **_bad_appends()[case],
    }
    stream = arguments.pop("stream")
    events = arguments.pop("events")
    with pytest.raises(InvalidAppend) as caught:
        store.append(stream, events, **arguments)
    assert str(caught.value)
    assert list(store.read_log()) == []


def test_unknown_event_type_is_refused_when_the_store_knows_its_types(recorder):
    store = EventStore(recorder, event_types={"ledger.MoneyDeposited"})
    with pytest.raises(InvalidAppend, match=r"unknown event type 'ledger\.Typo'"):
        store.append(
            new_id(),
            [NewEvent("ledger.MoneyDeposited", {}), NewEvent("ledger.Typo", {})],
            expected_version=NO_STREAM,
            aggregate_type=ACCOUNT,
        )
    assert list(store.read_log()) == []


def test_aggregate_id_may_be_given_as_text(store):
    account = new_id()
    store.append(str(account), deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    assert [e.aggregate_id for e in store.read_stream(account)] == [account]


def test_read_stream_up_to_a_version_after_a_version_and_in_batches(store):
    account = new_id()
    amounts = [f"{n}.00" for n in range(1, 11)]
    store.append(account, deposits(*amounts), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    assert [e.version for e in store.read_stream(account)] == list(range(1, 11))
    assert [e.version for e in store.read_stream(account, to_version=7)] == list(range(1, 8))
    assert [e.version for e in store.read_stream(account, after_version=8)] == [9, 10]
    assert list(store.read_stream(new_id())) == []


def test_replay_stream_gives_what_read_stream_does_for_a_replay(store):
    """Type, version, schema, data and hash of each event, up to a version, after a version
    and across batches (3 a read here); a whole stream replayed is remembered as its head."""
    account, other = new_id(), new_id()
    amounts = [f"{n}.00" for n in range(1, 11)]
    store.append(account, deposits(*amounts), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    store.append(other, deposits("9.00"), expected_version=NO_STREAM, aggregate_type="x.Other")
    wanted = [
        (e.aggregate_id, e.aggregate_type, e.event_type, e.version, e.schema_version, e.data,
         e.hash)
        for e in store.read_stream(account)
    ]  # fmt: skip
    store.heads.forget(account)
    assert [tuple(e) for e in store.replay_stream(account)] == wanted
    assert store.heads.get(account) == StreamHead(ACCOUNT, 10, wanted[-1][-1])
    assert [e.version for e in store.replay_stream(str(account), to_version=7)] == [*range(1, 8)]
    assert [e.version for e in store.replay_stream(account, after_version=8)] == [9, 10]
    assert [e.version for e in store.replay_stream(account, after_version=3, to_version=6)] == [
        4,
        5,
        6,
    ]
    store.heads.forget(account)
    list(store.replay_stream(account, to_version=7))
    assert store.heads.get(account) is None  # not the head: the stream goes on
    assert list(store.replay_stream(new_id())) == []


def test_read_stream_as_of_a_time(recorder):
    moments = iter(dt.datetime(2026, 3, day, 12, 0, tzinfo=dt.UTC) for day in (1, 2, 3, 4))
    store = EventStore(recorder, clock=lambda: next(moments))
    account = new_id()
    for version, amount in enumerate(("1.00", "2.00", "3.00", "4.00")):
        store.append(account, deposits(amount), expected_version=version, aggregate_type=ACCOUNT)
    as_of = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert [e.version for e in store.read_stream(account, as_of=as_of)] == [1, 2]
    before = as_of - dt.timedelta(days=5)
    assert list(store.read_stream(account, as_of=before)) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        list(store.read_stream(account, as_of=dt.datetime(2026, 3, 2)))


def test_read_log_streams_everything_in_order_and_resumes_from_a_position(store):
    first, second = new_id(), new_id()
    store.append(
        first, deposits("1.00", "2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    store.append(second, deposits("3.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    store.append(first, deposits("4.00", "5.00"), expected_version=2, aggregate_type=ACCOUNT)
    log = list(store.read_log())
    assert [e.data["amount"] for e in log] == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    positions = [e.position for e in log]
    assert positions == sorted(positions)
    assert len(set(positions)) == 5
    assert all(position > START for position in positions)
    resumed = list(store.read_log(after=log[1].position))
    assert [e.data["amount"] for e in resumed] == ["3.00", "4.00", "5.00"]
    assert [e.data["amount"] for e in store.read_log(limit=4)] == ["1.00", "2.00", "3.00", "4.00"]
    assert list(store.read_log(after=log[-1].position)) == []


def test_read_log_of_some_event_types_keeps_the_log_s_order_and_its_limits(store):
    """What a rebuild reads: only the types its projections handle, batch after batch."""
    first, second = new_id(), new_id()
    withdrawn = [NewEvent("ledger.MoneyWithdrawn", {"amount": "0.50"})]
    store.append(first, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    store.append(first, withdrawn, expected_version=1, aggregate_type=ACCOUNT)
    store.append(second, deposits("2.00", "3.00"), expected_version=NO_STREAM,
                 aggregate_type=ACCOUNT)  # fmt: skip
    store.append(first, withdrawn + deposits("4.00"), expected_version=2, aggregate_type=ACCOUNT)
    everything = list(store.read_log())
    for wanted in ({"ledger.MoneyDeposited"}, {"ledger.MoneyWithdrawn"}, {"x.Other"},
                   {"ledger.MoneyDeposited", "ledger.MoneyWithdrawn", "x.Other"}):  # fmt: skip
        expected = [event for event in everything if event.event_type in wanted]
        assert list(store.read_log(event_types=wanted)) == expected  # in batches of 3
        assert list(store.read_log(event_types=wanted, limit=2)) == expected[:2]
        if expected:
            after = expected[0].position
            assert list(store.read_log(after, event_types=wanted)) == expected[1:]
    assert list(store.read_log(event_types=set())) == []
    deposited = list(store.read_log(event_types=frozenset({"ledger.MoneyDeposited"})))
    assert [e.data["amount"] for e in deposited] == ["1.00", "2.00", "3.00", "4.00"]


@pytest.mark.parametrize("microsecond", [0, 1, 678901])
def test_times_read_back_exactly_through_streams_and_the_log(store, microsecond):
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5, microsecond, tzinfo=dt.UTC)
    account = new_id()
    before = store.head()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT,
                 imported_at=stamp)  # fmt: skip
    [streamed] = store.read_stream(account)
    [logged] = store.read_log(before)
    assert streamed.created_at == logged.created_at == stamp
    assert logged.created_at.utcoffset() == dt.timedelta(0)
    assert logged.aggregate_id == account


def test_position_text_round_trips():
    assert Position.parse(str(Position(12, 345))) == Position(12, 345)
    with pytest.raises(ValueError, match="not a log position"):
        Position.parse("12")


def test_metadata_comes_from_the_context_and_the_event(store):
    account = new_id()
    with metadata_context(
        user_id="7", correlation_id="corr-1", causation_id="cmd-1", trace_id="a" * 32
    ):
        store.append(
            account,
            [NewEvent("ledger.MoneyDeposited", {"amount": "1.00"}, metadata={"reason": "salary"})],
            expected_version=NO_STREAM,
            aggregate_type=ACCOUNT,
        )
    (event,) = store.read_stream(account)
    assert event.metadata == {
        "user_id": "7",
        "correlation_id": "corr-1",
        "causation_id": "cmd-1",
        "trace_id": "a" * 32,
        "reason": "salary",
    }


def test_metadata_outside_any_context_starts_a_new_correlation(store):
    first, second = new_id(), new_id()
    store.append(first, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    store.append(second, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    (one,), (two,) = store.read_stream(first), store.read_stream(second)
    assert one.metadata["user_id"] is None
    assert uuid.UUID(one.metadata["correlation_id"])
    assert one.metadata["causation_id"] == one.metadata["correlation_id"]
    assert len(one.metadata["trace_id"]) == 32
    assert one.metadata["correlation_id"] != two.metadata["correlation_id"]


def test_events_chain_their_hashes_and_verify(store):
    account = new_id()
    store.append(
        account, deposits("1.00", "2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    store.append(account, deposits("3.00"), expected_version=2, aggregate_type=ACCOUNT)
    events = list(store.read_stream(account))
    assert events[0].previous_hash == GENESIS_HASH
    assert [e.previous_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert len({e.hash for e in events}) == 3
    report = verify_chains(store.recorder, batch_size=2)
    assert report.intact
    assert (report.events_checked, report.streams_checked) == (3, 1)


def test_json_values_survive_storage_with_their_hash_intact(store):
    data = {
        "huge": 1e100,
        "tiny": 1.2345678901234567e-7,
        "negative_zero": -0.0,
        "tenth": 0.1,
        "big_int": 2**63 + 1,
        "text": "Zürich — 東京 ✓",
        "nested": {"b": [1, 2.5, None, True], "a": {"z": "", "y": False}},
    }
    account = new_id()
    store.append(
        account, [NewEvent("ledger.X", data)], expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    (event,) = store.read_stream(account)
    assert event.data["text"] == data["text"]
    assert event.data["big_int"] == 2**63 + 1
    assert event.data["tenth"] == 0.1
    assert verify_chains(store.recorder).intact


def test_one_append_of_many_events_is_one_contiguous_batch(store, settings):
    settings.EVENTSOURCING = {"INSERT_BATCH_SIZE": 7}
    account = new_id()
    events = [NewEvent("ledger.X", {"n": n}) for n in range(50)]
    stored = store.append(account, events, expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    assert [e.version for e in stored] == list(range(1, 51))
    assert [e.data["n"] for e in store.read_stream(account)] == list(range(50))
    assert verify_chains(store.recorder).intact


class Boom(Exception):
    pass


def test_a_head_remembered_from_a_rolled_back_append_misleads_nobody(store):
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)

    def append_then_fail():
        with store.recorder.transaction():
            store.append(account, deposits("2.00"), expected_version=1, aggregate_type=ACCOUNT)
            raise Boom  # the caller's transaction rolls the append back

    with pytest.raises(Boom):
        append_then_fail()
    assert store.heads.get(account).version == 2  # what the store remembers never committed
    with pytest.raises(ConcurrencyError) as caught:
        store.append(account, deposits("3.00"), expected_version=2, aggregate_type=ACCOUNT)
    assert (caught.value.expected, caught.value.actual) == (2, 1)
    stored = store.append(account, deposits("3.00"), expected_version=1, aggregate_type=ACCOUNT)
    assert [e.version for e in stored] == [2]
    assert [e.data["amount"] for e in store.read_stream(account)] == ["1.00", "3.00"]
    assert verify_chains(store.recorder).intact


def test_the_recorder_refuses_events_whose_predecessor_is_not_stored(store):
    account = new_id()
    (first,) = store.append(
        account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    store.heads.remember(account, StreamHead(ACCOUNT, 1, "f" * 64))  # a wrong hint
    stored = store.append(account, deposits("2.00"), expected_version=1, aggregate_type=ACCOUNT)
    assert stored[0].previous_hash == first.hash
    record = dataclasses.replace(stored[0], version=5, previous_hash="e" * 64)
    with pytest.raises(MissingPredecessor), store.recorder.transaction():
        store.recorder.insert([record])
    assert [e.version for e in store.read_stream(account)] == [1, 2]


def test_reading_a_whole_stream_remembers_its_head(store):
    account = new_id()
    store.append(
        account, deposits("1.00", "2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    reader = EventStore(store.recorder)
    assert reader.heads.get(account) is None
    last = list(reader.read_stream(account))[-1]
    assert reader.heads.get(account) == StreamHead(ACCOUNT, 2, last.hash)
    other = new_id()
    store.append(
        other, deposits("1.00", "2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    list(reader.read_stream(other, to_version=1))
    assert reader.heads.get(other) is None


def test_imported_history_keeps_its_time_and_says_it_was_imported(store):
    account = new_id()
    then = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
    (event,) = store.append(
        account,
        deposits("1.00"),
        expected_version=NO_STREAM,
        aggregate_type=ACCOUNT,
        imported_at=then,
    )
    (now,) = store.append(account, deposits("2.00"), expected_version=1, aggregate_type=ACCOUNT)
    assert event.created_at == then
    assert event.metadata["imported"] is True
    assert dt.datetime.fromisoformat(event.metadata["recorded_at"]) > then
    assert "imported" not in now.metadata
    assert now.created_at > then
    with pytest.raises(InvalidAppend, match="timezone-aware"):
        store.append(
            account,
            deposits("3.00"),
            expected_version=2,
            aggregate_type=ACCOUNT,
            imported_at=dt.datetime(2025, 3, 1),
        )
    assert verify_chains(store.recorder).intact


def test_events_of_one_append_do_not_share_their_metadata(store):
    first, second = store.append(
        new_id(), deposits("1.00", "2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
    )
    assert first.metadata == second.metadata
    first.metadata["user_id"] = "someone else"
    assert second.metadata["user_id"] is None
