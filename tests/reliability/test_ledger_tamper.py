"""An attacker with the database rewrites the log or the ledger; a digest kept outside names it."""

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from eventsourcing_app.core.records import START
from eventsourcing_app.core.verification import recomputed_hash, verify_chains
from eventsourcing_app.ledger import digests, keys
from eventsourcing_app.ledger.integrity import check_against_digest
from eventsourcing_app.ledger.sealer import Sealer
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store, get_recorder
from tests.helpers import deposits, new_id, on_postgresql

STREAMS, ROUNDS, PER_ROUND = 4, 3, 2
SIZE = STREAMS * ROUNDS * PER_ROUND
NEWEST = ROUNDS * PER_ROUND
TABLES = ("events", "ledger_leaves", "ledger_nodes")


@dataclass
class Log:
    """The log the trials tamper with: its streams in the order they were opened, its event
    ids in log order when the digest was taken, and that digest's file outside the database."""

    streams: list[uuid.UUID]
    order: list[int]
    digest: Path

    def event(self, stream: int, version: int) -> Event:
        return Event.objects.get(aggregate_id=self.streams[stream], version=version)

    def leaf(self, event: Event) -> int:
        """Return the leaf an event was sealed at: its place in the log then."""
        return self.order.index(event.pk)


def enabled_triggers() -> set[str]:
    """Return the append-only triggers in force on the events and ledger tables."""
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' "
                "AND tgrelid = ANY(%s::regclass[])",
                [list(TABLES)],
            )
        else:
            marks = ", ".join(["%s"] * len(TABLES))
            cursor.execute(
                f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})",
                list(TABLES),
            )
        return {name for (name,) in cursor.fetchall()}


@pytest.fixture
def log(log_db, tmp_path) -> Iterator[Log]:
    """Four interleaved streams of six deposits (two per round), sealed, with a digest file."""
    store = get_event_store()
    streams = [new_id() for _ in range(STREAMS)]
    for round_ in range(ROUNDS):
        for aggregate_id in streams:
            amounts = [f"{round_ + 1}.{n}0" for n in range(PER_ROUND)]
            store.append(aggregate_id, deposits(*amounts), expected_version=round_ * PER_ROUND,
                         aggregate_type="ledger.Account")  # fmt: skip
    digest = tmp_path / "digest-kept-elsewhere.json"
    call_command("ledger_digest", "--no-progress", "--out", str(digest), stdout=StringIO())
    assert json.loads(digest.read_text())["tree_size"] == SIZE
    before = enabled_triggers()
    assert len(before) >= 2 * len(TABLES)
    order = list(Event.objects.order_by("transaction_id", "id").values_list("pk", flat=True))
    yield Log(streams, order, digest)
    assert enabled_triggers() == before, "a trial left the append-only triggers off"


@contextmanager
def triggers_off(*tables: str):
    """Run statements with the tables' append-only triggers off, as the database's owner could;
    they are on again after (committed on PostgreSQL, where the trials commit)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if on_postgresql():
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
            yield cursor
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        else:
            marks = ", ".join(["%s"] * len(tables))
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                f"WHERE type = 'trigger' AND tbl_name IN ({marks})",
                list(tables),
            )
            saved = cursor.fetchall()
            for name, _ in saved:
                cursor.execute(f"DROP TRIGGER {name}")
            yield cursor
            for _, sql in saved:
                cursor.execute(sql)


def verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_events", "--no-progress", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> tuple[str, str]:
    """Run verify_events expecting exit 1; return its message and what it printed."""
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("verify_events", "--no-progress", *args, stdout=out)
    assert caught.value.returncode == 1
    return str(caught.value), out.getvalue()


def chains_intact() -> bool:
    return verify_chains(get_recorder()).intact


def rewrite_stream_from(log: Log, stream: int, version: int, data: dict) -> Event:
    """Give an event new data and rewrite its hash and every later hash and link of its
    stream, so that the chain verifies again; return the altered event."""
    recorder = get_recorder()
    events = recorder.read_chains(None, 1000, log.streams[stream])
    previous = events[version - 2].hash if version > 1 else events[0].previous_hash
    with triggers_off("events") as cursor:
        for event in events[version - 1 :]:
            content = data if event.version == version else event.data
            new_hash = recomputed_hash(event, data=content, previous_hash=previous)
            cursor.execute(
                "UPDATE events SET event_data = %s, hash = %s, previous_hash = %s WHERE id = %s",
                [json.dumps(content), new_hash, previous, event.id],
            )
            previous = new_hash
    return log.event(stream, version)


def swap_places(first: Event, second: Event) -> None:
    """Swap two events' places in the log, (transaction_id, id), through a free id."""
    spare = Event.objects.order_by("-id").first().pk + 1000
    update = "UPDATE events SET id = %s, transaction_id = %s WHERE id = %s"
    with triggers_off("events") as cursor:
        cursor.execute(update, [spare, second.transaction_id, first.pk])
        cursor.execute(update, [first.pk, first.transaction_id, second.pk])
        cursor.execute(update, [second.pk, second.transaction_id, spare])


def forged() -> bytes:
    return hashlib.sha256(b"forged").digest()


def test_an_untouched_log_verifies_against_its_digest(log, tmp_path):
    out = verify("--digest", str(log.digest))
    assert f"{SIZE} events in {STREAMS} streams checked, 0 broken" in out
    assert f"{SIZE} ledger leaves checked" in out
    assert f"digest of {SIZE} events" in out
    assert "the log is intact." in out
    pem = tmp_path / "ledger.pub.pem"
    pem.write_text(digests.public_key_document(keys.public_key())["public_key_pem"])
    assert "the log is intact." in verify("--digest", str(log.digest), "--public-key", str(pem))


@pytest.mark.parametrize("where", ["middle of the log", "end of the log", "later events"])
def test_a_stream_cut_short_is_named(log, where):
    """Deleted at the log's end, in its middle, or while events came after the digest (the
    log then still holds as many events as the digest sealed)."""
    stream = STREAMS - 1 if where == "end of the log" else 0
    victim = log.event(stream, NEWEST)
    assert (log.leaf(victim) == SIZE - 1) == (where == "end of the log")
    if where == "later events":
        store = get_event_store()
        store.append(log.streams[1], deposits("7.00", "8.00"), expected_version=NEWEST,
                     aggregate_type="ledger.Account")  # fmt: skip
    with triggers_off("events") as cursor:
        cursor.execute("DELETE FROM events WHERE id = %s", [victim.pk])
    assert chains_intact()  # nothing after a stream's newest event links to it
    message, _ = refused("--digest", str(log.digest))
    short = f"the log holds {SIZE - 1} of the {SIZE} events the digest sealed; "
    assert (
        f"against the digest of {SIZE} events: {'' if where == 'later events' else short}"
        f"first missing: stream {log.streams[stream]} was cut short at v{NEWEST - 1}: event "
        f"{victim.pk} ({log.streams[stream]} v{NEWEST}), sealed at leaf {log.leaf(victim)}, is "
        "missing from the log"
    ) in message


def test_a_deleted_stream_is_named(log):
    first = log.event(1, 1)
    doomed = list(Event.objects.filter(aggregate_id=log.streams[1]).values_list("pk", flat=True))
    assert len(doomed) == NEWEST
    with triggers_off("events") as cursor:
        for pk in doomed:
            cursor.execute("DELETE FROM events WHERE id = %s", [pk])
    assert chains_intact()
    message, _ = refused("--digest", str(log.digest))
    assert (
        f"the log holds {SIZE - NEWEST} of the {SIZE} events the digest sealed; first missing: "
        f"stream {log.streams[1]} was deleted: event {first.pk} ({log.streams[1]} v1), sealed "
        f"at leaf {log.leaf(first)}, is missing from the log"
    ) in message


def test_an_altered_event_with_its_chain_rewritten_is_named(log):
    victim = rewrite_stream_from(log, 2, 3, {"amount": "2000.00"})
    assert victim.event_data == {"amount": "2000.00"}
    assert chains_intact()
    message, out = refused("--digest", str(log.digest))
    assert (
        f"against the digest of {SIZE} events: event {victim.pk} "
        f"({log.streams[2]} v3) was altered after it was sealed at leaf {log.leaf(victim)}: "
        "its hash is not the one the digest covers"
    ) in message
    assert ", 0 broken" in out  # the chains verify


def test_an_altered_event_with_its_chain_rewritten_is_found_by_the_ledger_alone(log):
    victim = rewrite_stream_from(log, 2, 3, {"amount": "2000.00"})
    message, out = refused()
    assert (
        f"ledger: ledger leaf {log.leaf(victim)} (event {victim.pk} "
        f"({log.streams[2]} v3)): the leaf does not match the event's hash"
    ) in message
    assert ", 0 broken" in out  # the chains verify
    with pytest.raises(CommandError, match=f"sealed at leaf {log.leaf(victim)}: it was rewritten"):
        verify("--aggregate", str(log.streams[2]))


@pytest.mark.parametrize(
    "pair", [((0, 2), (3, 5)), ((1, 3), (1, 4))], ids=["two streams", "one stream"]
)
def test_reordered_events_are_named(log, pair):
    first, second = log.event(*pair[0]), log.event(*pair[1])
    assert log.leaf(first) < log.leaf(second)
    swap_places(first, second)
    assert log.event(*pair[0]).pk == second.pk
    assert chains_intact()
    message, _ = refused("--digest", str(log.digest))
    (stream, version), (other, other_version) = pair
    assert (
        f"against the digest of {SIZE} events: events were reordered: leaf {log.leaf(first)} "
        f"sealed event {first.pk} ({log.streams[stream]} v{version}), and the log now has "
        f"event {first.pk} ({log.streams[other]} v{other_version}) in its place; it is event "
        f"{second.pk} now"
    ) in message


@pytest.mark.parametrize(
    "row",
    [
        ("ledger_leaves", "leaf_index = 5", "ledger leaf 5 (event {event}): the leaf does not "
         "match the event's hash"),
        ("ledger_nodes", "level = 1 AND node_index = 2", "ledger node 2 of level 1 does not "
         "match the leaves below it"),
        ("ledger_nodes", "level = 4 AND node_index = 0", "ledger node 0 of level 4 does not "
         "match the leaves below it"),
    ],
    ids=["leaf", "node", "high node"],
)  # fmt: skip
def test_an_altered_ledger_row_is_named_and_the_log_still_matches(log, row):
    table, where, expected = row
    with triggers_off(table) as cursor:
        cursor.execute(f"UPDATE {table} SET hash = %s WHERE {where}", [forged()])
        assert cursor.rowcount == 1
    sealed = digests.Digest.from_dict(json.loads(log.digest.read_text()))
    assert check_against_digest(get_recorder(), sealed) is None
    message, out = refused("--digest", str(log.digest))
    event = Event.objects.get(pk=log.order[5])
    described = f"{event.pk} ({event.aggregate_id} v{event.version})"
    assert f"ledger: {expected.format(event=described)}" in message
    assert "against the digest" not in out
    assert chains_intact()


def test_events_and_ledger_rewritten_together_are_caught_by_the_digest_alone(log):
    victim = rewrite_stream_from(log, 1, 2, {"amount": "0.01"})
    events = get_recorder().read_log(START, 1000, holdback=False)
    with triggers_off("ledger_leaves", "ledger_nodes") as cursor:
        cursor.execute("DELETE FROM ledger_nodes")
        cursor.execute("DELETE FROM ledger_leaves")
        Sealer().extend(events)  # the attacker runs the sealer over the rewritten log
    assert "the log is intact." in verify()  # chains and ledger agree with each other
    message, out = refused("--digest", str(log.digest))
    assert message.endswith(
        f"against the digest of {SIZE} events: the first {SIZE} events do not "
        "give the digest's root, and the ledger tables were rewritten to match them: the "
        "altered event cannot be named from here"
    )
    assert f"event {victim.pk} " not in message
    assert ", 0 broken" in out
    assert "ledger:" not in out


def test_an_edited_root_hash_fails_the_signature(log):
    document = json.loads(log.digest.read_text())
    document["root_hash"] = forged().hex()
    log.digest.write_text(json.dumps(document))
    message, _ = refused("--digest", str(log.digest))
    kid = digests.key_id(keys.public_key())
    assert f"is not signed by key {kid} (it names {kid}), or it was altered: it proves nothing" in (
        message
    )


def test_a_digest_checked_against_another_key_fails(log, tmp_path):
    other = digests.load_private_key(digests.generate_private_key_pem()).public_key()
    pem = tmp_path / "other.pub.pem"
    pem.write_text(digests.public_key_document(other)["public_key_pem"])
    message, _ = refused("--digest", str(log.digest), "--public-key", str(pem))
    assert (
        f"is not signed by key {digests.key_id(other)} (it names "
        f"{digests.key_id(keys.public_key())}), or it was altered: it proves nothing"
    ) in message


def test_a_digest_signed_by_another_key_fails(log):
    """An attacker seals a digest of their own with a key of their own: not the ledger's key."""
    sealed = digests.Digest.from_dict(json.loads(log.digest.read_text()))
    attacker = digests.load_private_key(digests.generate_private_key_pem())
    fake = digests.seal(tree_size=sealed.tree_size, root=forged(),
                        last_position=sealed.last_position, sealed_at=sealed.sealed_at,
                        private_key=attacker)  # fmt: skip
    log.digest.write_text(json.dumps(fake.as_dict()))
    message, _ = refused("--digest", str(log.digest))
    assert (
        f"is not signed by key {digests.key_id(keys.public_key())} (it names "
        f"{digests.key_id(attacker.public_key())}), or it was altered: it proves nothing"
    ) in message
