"""Fault trials: SIGKILL the projection worker, the transfer saga and the Kafka relay, restart.

Each trial starts the real management command (production settings, `DJANGO_DEBUG=0`, the test
database) while a thread of the test appends bank commands through the services, kills it at a
random moment `FAULT_ROUNDS` times (5 unless set; `make soak` sets 50), restarts it, and finally
lets one last process catch up and stop cleanly. Then nothing may be lost and nothing applied
twice. Kills land inside batches: a process is frozen, its open transactions are counted, then
it is SIGKILLed (see tests/reliability/fleet.py). A killed process cannot release its leases; the
processes run with LEASE_SECONDS = 1 (tests/reliability/fault_settings.py) and every restart must
take them over. The randomness is seeded; FAULT_SEED=<seed> repeats a run's choices.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import threading
import time
import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from decimal import Decimal
from typing import NamedTuple

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from django.core.management import call_command
from django.db import connection, connections

from bankdemo import services
from bankdemo.domain import Refusal
from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.core.records import START, Position
from eventsourcing_app.models import Event, ProjectionCheckpoint
from eventsourcing_app.wiring import get_event_store
from tests.helpers import requires_postgresql
from tests.reliability import fault_settings
from tests.reliability.fleet import LEASE_SECONDS, Fleet, Kill

pytestmark = [pytest.mark.soak, requires_postgresql, pytest.mark.django_db(transaction=True)]

ROUNDS = int(os.environ.get("FAULT_ROUNDS") or 5)
SEED = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))
ASYNC = ["bank.daily_totals", "bank.transfer_saga", "bank.transfers"]
SAGA = ["bank.transfer_saga", "bank.transfers"]
REPLAYABLE = ["bank.account_balances", "bank.daily_totals", "bank.ledger_entries", "bank.transfers"]
PUBLIC = fault_settings.EVENTSOURCING["PUBLIC_EVENT_TYPES"]
DEPOSITED, WITHDRAWN = "bank.MoneyDeposited", "bank.MoneyWithdrawn"
REQUESTED, DEBITED = "bank.TransferRequested", "bank.TransferDebited"
FINISHED = {"bank.TransferCompleted": "completed", "bank.TransferFailed": "failed"}
DRAIN_TIMEOUT = 120.0
POLL = ("--poll-interval", "0.3")  # a live worker renews its leases at least this often


def test_killed_projection_workers_lose_nothing_and_apply_nothing_twice(tmp_path):
    """run_projections (all async projections, the saga among them) is SIGKILLed mid-batch and
    restarted while deposits, withdrawals and transfers are appended: afterwards every async
    read model equals a replay, each movement is in the ledger once, balances agree three ways,
    every transfer finished once with money conserved, and every checkpoint is at the log head."""
    rng = random.Random(f"{SEED}-workers")
    bank = Bank.open()
    kills, takeovers = [], []
    with Fleet(tmp_path) as fleet:
        with Writer(bank, rng.random(), transfer_share=0.3, pause=0.01) as writer:
            for _ in range(ROUNDS):
                batch = rng.choice(["1", "3", "10", "50"])
                worker = fleet.start("run_projections", "--batch-size", batch, *POLL)
                takeovers.append(fleet.wait_for_lease(worker, ASYNC))
                time.sleep(rng.uniform(0, 1.5))
                kills.append(fleet.kill(worker, ASYNC))
        drain(fleet, ASYNC, "run_projections", "--batch-size", "200", *POLL)
        verify_replay(REPLAYABLE)
        assert fleet.problems() == []
    events = bank_events()
    accounts = check_accounts(events)
    transfers = check_transfers(events)
    check_daily_totals(events)
    print(
        f"\nFAULTS run_projections (seed {SEED}): {summary(kills, takeovers)}, "
        f"{len(events)} events ({writer.appended} commands by the writer), "
        f"{accounts['movements']} movements on {accounts['accounts']} accounts, "
        f"{transfers_line(transfers)}; read models equal a replay, none applied twice"
    )


def test_killing_the_saga_mid_transfer_moves_money_exactly_once(tmp_path):
    """The saga is SIGKILLed while transfers are in flight (debited, not yet credited) and
    inside its steps: afterwards every transfer has exactly one debit and one credit, or one
    refund, or neither when it failed at the debit; every one is finished once; money is
    conserved; and the transfer read model equals a replay."""
    rng = random.Random(f"{SEED}-saga")
    bank = Bank.open()
    kills, takeovers, in_flight = [], [], []
    with Fleet(tmp_path) as fleet:
        with Writer(bank, rng.random(), transfer_share=0.7, pause=0.05):
            for _ in range(ROUNDS):
                batch = rng.choice(["1", "2", "5"])
                saga = fleet.start("run_projections", *SAGA, "--batch-size", batch, *POLL)
                takeovers.append(fleet.wait_for_lease(saga, SAGA))
                time.sleep(rng.uniform(0, 0.8))
                deadline = time.monotonic() + 2
                while transfers_in_flight() == 0 and time.monotonic() < deadline:
                    time.sleep(0.005)
                kills.append(fleet.kill(saga, SAGA))
                in_flight.append(transfers_in_flight())  # debited, their credit left to redo
        assert sum(in_flight) > 0, "no kill caught a transfer between its debit and credit"
        drain(fleet, SAGA, "run_projections", *SAGA, "--batch-size", "100", *POLL)
        verify_replay(["bank.account_balances", "bank.ledger_entries", "bank.transfers"])
        assert fleet.problems() == []
    events = bank_events()
    check_accounts(events)
    transfers = check_transfers(events)
    caught = sum(1 for count in in_flight if count)
    print(
        f"\nFAULTS transfer saga (seed {SEED}): {summary(kills, takeovers)}, "
        f"{caught} with transfers between debit and credit ({sum(in_flight)} transfers), "
        f"{len(events)} events, {transfers_line(transfers)}; each debited once, credited or "
        "refunded once, money conserved"
    )


def test_a_killed_relay_publishes_every_public_event_at_least_once(tmp_path, broker, topic):
    """publish_events is SIGKILLed while events are appended, and restarted. The relay claims at
    least once (eventsourcing_app/publishing.py: the checkpoint moves after the broker confirmed
    a batch; its idempotent producer removes retries within one process only, and a restarted
    process is a new producer). So: every public event arrives and no private one; every
    message the broker got from a killed relay for an event after the checkpoint it had
    committed is sent again, and no event at or before it is; a repeat is an exact copy (key,
    headers, value), so consumers de-duplicate by the envelope's event_id; and per key, first
    arrivals keep version order. Every other kill (the first included) is aimed: the relay is
    frozen (SIGSTOP) at random moments until the broker holds messages for events after its
    committed checkpoint, and killed then, so that the duplicate path is taken in every run."""
    rng = random.Random(f"{SEED}-relay")
    bank = Bank.open()
    name = f"publish:{topic}"
    kills, takeovers, relays, aimed, hits = [], [], [], 0, 0
    with (
        Fleet(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap) as fleet,
        Topic(broker.bootstrap, topic) as followed,
    ):
        with Writer(bank, rng.random(), transfer_share=0.2, pause=0.005) as writer:
            for round_number in range(ROUNDS):
                batch, seen = rng.choice([5, 20, 100]), len(followed.received)
                relay = fleet.start("publish_events", "--topic", topic, "--batch-size", str(batch))
                takeovers.append(fleet.wait_for_lease(relay, [name]))
                if round_number % 2:  # anywhere; a first batch waits ~0.5 s for a producer id
                    time.sleep(rng.uniform(0, 2))
                else:  # frozen, its checkpoint holds still: kill if the broker is ahead of it
                    aimed += 1
                    for _ in range(40):
                        time.sleep(rng.uniform(0, 0.1))
                        fleet.freeze(relay)
                        followed.settle(0.1)
                        if any(m.position > committed(name) for m in followed.received[seen:]):
                            hits += 1
                            break
                        fleet.thaw(relay)
                kills.append(fleet.kill(relay, [name]))
                followed.settle()
                relays.append(DeadRelay(followed.received[seen:], committed(name), batch))
        drain(fleet, [name], "publish_events", "--topic", topic)
        assert fleet.problems() == []
        log = list(
            Event.objects.order_by("transaction_id", "id").values_list(
                "transaction_id", "id", "event_type"
            )
        )
        public = {event_id for _, event_id, event_type in log if event_type in PUBLIC}
        messages = followed.until_seen(public)
    copies = defaultdict(list)
    for message in messages:
        copies[message.event_id].append((message.key, message.headers, message.value))
    assert set(copies) == public, "an event was lost, or a private one published"
    repeated = {event_id for event_id, sent in copies.items() if len(sent) > 1}
    for event_id in repeated:
        assert len(set(copies[event_id])) == 1, f"event {event_id} differs between copies"
    positions = [Position(tx, event_id) for tx, event_id, _ in log]
    unconfirmed, resent, leaving = set(), set(), 0
    for dead in relays:
        after = bisect_right(positions, dead.committed)
        unconfirmed |= {position.id for position in positions[after : after + dead.batch]}
        left_behind = {m.event_id for m in dead.sent if m.position > dead.committed}
        resent |= left_behind
        leaving += bool(left_behind)
    assert hits > 0, "no aimed kill found messages on the broker beyond a checkpoint"
    assert leaving >= hits, "a kill aimed at unconfirmed messages left none"
    assert resent <= repeated, "a message beyond a dead relay's checkpoint was not sent again"
    assert repeated <= unconfirmed, "an event at or before a committed checkpoint was sent again"
    check_order_per_key(messages)
    print(
        f"\nFAULTS publish_events (seed {SEED}): {summary(kills, takeovers)}, {aimed} aimed at "
        f"messages on the broker beyond the checkpoint ({hits} found them), {len(log)} events "
        f"({writer.appended} commands), {len(public)} public: all delivered, {len(messages)} "
        f"messages, {len(messages) - len(copies)} duplicates (exact copies of {len(repeated)} "
        f"events; {leaving} kills left {len(resent)} events on the broker beyond their "
        "checkpoint, all sent again; none at or before a committed checkpoint)"
    )


class Bank:
    """Accounts for the trials: funded ones in EUR and one in USD (a transfer between currencies
    is debited, refused at the credit and refunded), one opened empty (its debits are refused
    until transfers credit it) and one closed (transfers from it are refused, to it refunded)."""

    def __init__(self, funded: list[uuid.UUID], others: list[uuid.UUID]) -> None:
        self.funded = funded
        self.every = funded + others

    @classmethod
    def open(cls) -> Bank:
        funded = []
        for number, currency in enumerate(["EUR"] * 6 + ["USD"]):
            account, _ = services.account_open(owner=f"fault {number}", currency=currency)
            services.account_deposit(account_id=account.id, amount="5000.00")
            funded.append(account.id)
        empty, _ = services.account_open(owner="fault empty", currency="EUR")
        closed, _ = services.account_open(owner="fault closed", currency="EUR")
        services.account_close(account_id=closed.id, reason="customer left")
        return cls(funded, [empty.id, closed.id])


class Writer:
    """Append bank commands from a thread of the test process until the block ends."""

    def __init__(self, bank: Bank, seed: float, *, transfer_share: float, pause: float) -> None:
        self.bank = bank
        self.rng = random.Random(seed)
        self.transfer_share = transfer_share
        self.pause = pause
        self.appended = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the writer did not stop"
        if self._error is not None and exc_info[0] is None:
            raise AssertionError("the writer failed") from self._error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with contextlib.suppress(Refusal):  # a domain refusal appends nothing
                    self._command()
                    self.appended += 1
                time.sleep(self.rng.uniform(0, self.pause))
        except BaseException as exc:
            self._error = exc
        finally:
            connections.close_all()

    def _command(self) -> None:
        rng = self.rng
        amount = f"{rng.randint(1, 40000) / 100:.2f}"
        roll = rng.random()
        if roll < self.transfer_share:
            source, destination = rng.sample(self.bank.every, 2)
            amount = f"{rng.randint(1, 10000) / 100:.2f}"
            services.transfer_request(source_id=source, destination_id=destination, amount=amount)
        elif roll < self.transfer_share + (1 - self.transfer_share) * 0.6:
            services.account_deposit(account_id=rng.choice(self.bank.funded), amount=amount)
        else:
            services.account_withdraw(account_id=rng.choice(self.bank.funded), amount=amount)


def drain(fleet: Fleet, names: list[str], *command: str) -> None:
    """Start one more process, let it catch up with the whole log, and stop it with SIGTERM:
    it exits 0, its checkpoints are at the log head and released."""
    process = fleet.start(*command)
    store = get_event_store()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    settled = 0
    while settled < 3:  # the saga appends as it goes: the head must hold still
        assert time.monotonic() < deadline, f"{names} did not catch up in {DRAIN_TIMEOUT} s"
        fleet.expect_running(process)
        head = store.head()
        positions = {row.position for row in ProjectionCheckpoint.objects.filter(name__in=names)}
        settled = settled + 1 if positions == {head} else 0
        time.sleep(0.2)
    assert fleet.stop(process) == 0, f"{process.label} did not stop cleanly"
    head = store.head()
    for row in ProjectionCheckpoint.objects.filter(name__in=names):
        assert (row.position, row.status, row.owner) == (head, "ok", ""), row
    assert ProjectionCheckpoint.objects.filter(name__in=names).count() == len(names)


def verify_replay(names: list[str]) -> None:
    """`rebuild_projections --verify`: each read model equals a replay of the log (no drift)."""
    output = io.StringIO()
    call_command("rebuild_projections", *names, "--verify", "--no-progress", stdout=output)
    for name in names:
        assert f"{name}: matches a replay of" in output.getvalue(), output.getvalue()


def transfers_in_flight() -> int:
    """Transfers debited and not yet finished, as committed now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM events AS debit WHERE debit.event_type = %s AND NOT EXISTS "
            "(SELECT 1 FROM events AS done WHERE done.aggregate_id = debit.aggregate_id "
            "AND done.event_type = ANY(%s))",
            [DEBITED, list(FINISHED)],
        )
        return cursor.fetchone()[0]


def bank_events() -> list[dict]:
    """Every bank event in log order, amounts as Decimal."""
    events = list(
        Event.objects.filter(event_type__startswith="bank.")
        .order_by("transaction_id", "id")
        .values("id", "aggregate_id", "event_type", "version", "event_data", "created_at")
    )
    for event in events:
        if "amount" in event["event_data"]:
            event["amount"] = Decimal(event["event_data"]["amount"])
    return events


def signed(movement: dict) -> Decimal:
    return movement["amount"] if movement["event_type"] == DEPOSITED else -movement["amount"]


def check_accounts(events: list[dict]) -> Counter:
    """Each account's balance agrees three ways (read model, last ledger entry, aggregate) with
    the sum of its movements; each movement is in the ledger exactly once; and the money held
    per currency is what came in and went out other than by transfers."""
    currency = {
        e["aggregate_id"]: e["event_data"]["currency"]
        for e in events
        if e["event_type"] == "bank.AccountOpened"
    }
    movements = [e for e in events if e["event_type"] in (DEPOSITED, WITHDRAWN)]
    expected = dict.fromkeys(currency, Decimal(0))
    external = Counter()
    for movement in movements:
        expected[movement["aggregate_id"]] += signed(movement)
        if movement["event_data"]["transfer_id"] is None:
            external[movement["event_data"]["currency"]] += signed(movement)
    assert dict(AccountBalance.objects.values_list("account_id", "balance")) == expected
    ledger = list(
        LedgerEntry.objects.order_by("account_id", "version").values_list(
            "event_id", "account_id", "balance_after"
        )
    )
    assert sorted(event_id for event_id, _, _ in ledger) == sorted(m["id"] for m in movements)
    last_entry = {account: balance for _, account, balance in ledger}
    for account, balance in expected.items():
        assert services.accounts().load(account).balance == balance
        assert last_entry.get(account, Decimal(0)) == balance
    held = Counter()
    for account, balance in expected.items():
        held[currency[account]] += balance
    assert held == external, "money appeared or vanished between accounts"
    return Counter(accounts=len(currency), movements=len(movements))


def check_transfers(events: list[dict]) -> Counter:
    """Every transfer finished exactly once, with the movements its outcome calls for: a
    completed one a debit of the source and a credit of the destination; a failed one a debit
    and a refund of the source, or no movement when the debit itself was refused."""
    streams = defaultdict(list)
    for event in events:
        if event["event_type"].startswith("bank.Transfer"):
            streams[event["aggregate_id"]].append(event)
    moved = defaultdict(list)
    for event in events:
        if event["event_type"] in (DEPOSITED, WITHDRAWN) and event["event_data"]["transfer_id"]:
            moved[uuid.UUID(event["event_data"]["transfer_id"])].append(event)
    status = dict(TransferStatus.objects.values_list("transfer_id", "status"))
    outcomes = Counter()
    for transfer_id, stream in streams.items():
        kinds = [event["event_type"] for event in stream]
        finished = [kind for kind in kinds if kind in FINISHED]
        assert kinds[0] == REQUESTED, kinds
        assert len(finished) == 1, f"transfer {transfer_id} finished {len(finished)} times"
        assert kinds[-1] == finished[0], kinds
        assert kinds.count(DEBITED) <= 1, kinds
        request = stream[0]["event_data"]
        source, destination = uuid.UUID(request["source_id"]), uuid.UUID(request["destination_id"])
        movements = moved.pop(transfer_id, [])
        assert all(m["amount"] == Decimal(request["amount"]) for m in movements)
        debits = [m for m in movements if m["event_type"] == WITHDRAWN]
        credits = [m for m in movements if m["event_type"] == DEPOSITED]
        assert all(m["aggregate_id"] == source for m in debits)
        assert len(debits) == kinds.count(DEBITED), f"transfer {transfer_id}: {len(debits)} debits"
        if finished == ["bank.TransferCompleted"]:
            assert [m["aggregate_id"] for m in credits] == [destination], transfer_id
            outcomes["completed"] += 1
        else:
            refunded = stream[-1]["event_data"]["refunded"]
            assert refunded == (DEBITED in kinds), transfer_id
            assert [m["aggregate_id"] for m in credits] == [source] * refunded, transfer_id
            outcomes["refunded" if refunded else "failed"] += 1
        assert status[transfer_id] == FINISHED[finished[0]]
    assert not moved, f"movements of transfers that do not exist: {list(moved)}"
    assert len(status) == len(streams)
    return outcomes


def check_daily_totals(events: list[dict]) -> None:
    """The daily totals count each movement once (computed here, not by the projection)."""
    expected = defaultdict(lambda: [Decimal(0), Decimal(0), 0, 0])
    for event in events:
        if event["event_type"] in (DEPOSITED, WITHDRAWN):
            day = event["created_at"].date().isoformat()
            row = expected[f"{day}:{event['event_data']['currency']}"]
            column = 0 if event["event_type"] == DEPOSITED else 1
            row[column] += event["amount"]
            row[column + 2] += 1
    rows = DailyTotal.objects.values_list(
        "key", "deposits", "withdrawals", "deposit_count", "withdrawal_count"
    )
    assert {key: list(values) for key, *values in rows} == dict(expected)


class Message(NamedTuple):
    partition: int
    offset: int
    key: bytes
    headers: tuple
    value: bytes

    @property
    def envelope(self) -> dict:
        return json.loads(self.value)

    @property
    def event_id(self) -> int:
        return self.envelope["event_id"]

    @property
    def position(self) -> Position:
        transaction, event_id = self.envelope["position"].split("-")
        return Position(int(transaction), int(event_id))


class DeadRelay(NamedTuple):
    """A killed relay: what reached the broker while it lived (and just after), the checkpoint
    it had committed, and its batch size."""

    sent: list[Message]
    committed: Position
    batch: int


class Topic:
    """The relay's topic, followed from its first message by a consumer of the test.

    Read by consuming, never by end offsets: Tansu reports a high watermark below the last
    readable offset once a producer was killed in the middle of a request.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"fault-audit-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.assigned = False
        self.received: list[Message] = []

    def __enter__(self) -> Topic:
        return self

    def __exit__(self, *exc_info) -> None:
        self.consumer.close()

    def poll(self, seconds: float) -> list[Message]:
        """Return the messages that arrived since the last call (waiting up to `seconds`)."""
        if not self.assigned:  # the relay creates the topic with its first message
            found = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            if found.error is not None or not found.partitions:
                time.sleep(seconds)
                return []
            self.consumer.assign(
                [TopicPartition(self.topic, n, OFFSET_BEGINNING) for n in found.partitions]
            )
            self.assigned = True
        new = []
        for message in self.consumer.consume(1000, timeout=seconds):
            assert message.error() is None, message.error()
            key, headers = message.key(), tuple(message.headers() or ())
            new.append(
                Message(message.partition(), message.offset(), key, headers, message.value())
            )
        self.received += new
        return new

    def settle(self, quiet: float = 0.5) -> None:
        """Receive until nothing has arrived for `quiet` seconds: a killed relay's last requests
        can reach the broker after the process is gone."""
        still_since = time.monotonic()
        while time.monotonic() - still_since < quiet:
            if self.poll(0.05):
                still_since = time.monotonic()

    def until_seen(self, event_ids: set[int], seconds: float = 60) -> list[Message]:
        """Return every message, once each of `event_ids` has arrived and the topic is quiet."""
        deadline = time.monotonic() + seconds
        while not event_ids <= {m.event_id for m in self.received}:
            if time.monotonic() > deadline:
                break  # the caller's assertion names what is missing
            self.poll(0.2)
        self.settle(1.0)
        return self.received


def committed(name: str) -> Position:
    row = ProjectionCheckpoint.objects.filter(name=name).first()
    return row.position if row is not None else START


def check_order_per_key(messages: list[Message]) -> None:
    """Per aggregate (the message key), first arrivals come in version order."""
    seen = defaultdict(list)
    for message in messages:
        version = message.envelope["version"]
        if version not in seen[message.key]:
            seen[message.key].append(version)
    for key, versions in seen.items():
        assert versions == sorted(versions), f"{key!r} arrived out of order: {versions}"


def summary(kills: list[Kill], takeovers: list[float]) -> str:
    inside = sum(kill.in_transaction for kill in kills)
    left = sum(kill.leases_left for kill in kills)
    return (
        f"{len(kills)} kills ({inside} inside an open transaction, {left} leases left held), "
        f"every restart took over within {max(takeovers):.1f} s of its start "
        f"(LEASE_SECONDS={LEASE_SECONDS})"
    )


def transfers_line(outcomes: Counter) -> str:
    total = sum(outcomes.values())
    return (
        f"{total} transfers ({outcomes['completed']} completed, {outcomes['refunded']} failed "
        f"and refunded, {outcomes['failed']} refused at the debit)"
    )
