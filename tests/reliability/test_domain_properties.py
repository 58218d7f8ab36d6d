"""Properties of the bank over random command sequences: its money rules, replay and time
travel, upcasting of old deposits, and read models that agree with the log.

Each sequence is checked against the test's own bookkeeping of what every account must be after
every accepted command. `make test` runs the same examples every time; `make soak` (marker
`soak`) runs HYPOTHESIS_EXAMPLES fresh ones per test (a failure prints how to reproduce it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.test import override_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bankdemo import seeding, services
from bankdemo.domain import (
    MAX_BALANCE,
    MINOR_UNITS,
    BalanceLimit,
    BalanceNotZero,
    BankAccount,
    ClosedAccount,
    InsufficientFunds,
    InvalidAmount,
    MoneyDeposited,
    Refusal,
    SameAccount,
    UnknownCurrency,
    money,
    visible,
)
from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.core.records import NewEvent
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.domain import AggregateNotFound, registry, upcasters
from eventsourcing_app.models import Event, ProjectionCheckpoint, Snapshot
from eventsourcing_app.wiring import get_event_store, get_repository
from tests.helpers import on_postgresql
from tests.reliability.fingerprint import stored_rows

pytestmark = pytest.mark.soak
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES") or 0)
BANK_PROJECTIONS = ["bank.account_balances", "bank.ledger_entries", "bank.daily_totals",
                    "bank.transfers"]  # fmt: skip
# Tables emptied before each example on PostgreSQL, where the examples commit for real.
BANK_TABLES = ["events", "snapshots", "projection_checkpoints", "account_balances",
               "ledger_entries", "daily_totals", "transfers", "checkpoint_changes",
               "ledger_leaves", "ledger_nodes", "ledger_digests", "evidence_exports",
               "rebuild_runs"]  # fmt: skip


def budget(default: int) -> settings:
    """The same examples on every CI run; more, and fresh ones, under HYPOTHESIS_EXAMPLES."""
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,
        derandomize=not EXAMPLES,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@dataclasses.dataclass(frozen=True)
class Amount:
    """An amount in the minor units of the currency it meets, written with `extra` decimal
    places more than that currency has: most are accepted, some (zero, negative, too fine)
    refused."""

    units: int
    extra: int

    def text(self, currency: str) -> str:
        return str(Decimal(self.units).scaleb(-MINOR_UNITS.get(currency, 2) - self.extra))


too_fine = st.sampled_from([0] * 9 + [1])
amounts = st.builds(Amount, st.integers(-1, 20_000), too_fine)
overdrafts = st.one_of(st.none(), amounts)
# Mostly (None) the currency of the first account, so that transfers between accounts can pass.
currencies = st.sampled_from([None] * 8 + ["EUR", "USD", "JPY", "KWD", "XXX"])
owners = st.sampled_from(["Ada", "Bob", "  Cy ", "Dee", ""])
slots = st.integers(0, 5)  # an account by its position among those opened (modulo)
opening = st.tuples(st.just("open"), owners, currencies, overdrafts)
deposit = st.tuples(st.just("deposit"), slots, amounts)
withdraw = st.tuples(st.just("withdraw"), slots, amounts)
closing = st.tuples(st.sampled_from(["close", "empty_and_close"]), slots)
# To another account, or (offset 0) to the source itself, which the domain refuses.
transfer = st.tuples(
    st.just("transfer"), slots, slots, st.builds(Amount, st.integers(-1, 3_000), too_fine)
)
COMMANDS = {"open": opening, "deposit": deposit, "withdraw": withdraw, "close": closing,
            "transfer": transfer}  # fmt: skip


def weighted(**weights: int) -> st.SearchStrategy:
    """Commands drawn in these proportions."""
    kinds = [kind for kind, weight in weights.items() for _ in range(weight)]
    return st.sampled_from(kinds).flatmap(COMMANDS.__getitem__)


# Accounts should live a while: money mostly moves, and an account is now and then closed.
account_commands = weighted(open=1, deposit=3, withdraw=3, close=1)
bank_commands = weighted(open=1, deposit=3, withdraw=1, transfer=3, close=1)


def sequences(commands: st.SearchStrategy, *, min_size: int, max_size: int) -> st.SearchStrategy:
    """An account surely opened, one to three openings more, then a random mix of commands."""
    first = st.tuples(
        st.just("open"), st.just("Ada"), st.sampled_from(sorted(MINOR_UNITS)), st.none()
    )
    return st.tuples(
        first,
        st.lists(opening, min_size=1, max_size=3),
        st.lists(commands, min_size=min_size, max_size=max_size),
    ).map(lambda parts: [parts[0], *parts[1], *parts[2]])


# The test's bookkeeping, written from the rules (not from the code under test).


def valid_amount(amount: str, currency: str) -> Decimal | None:
    """The amount if the currency accepts it: positive, in its minor units, below 10^15."""
    value = Decimal(amount)
    unit = Decimal(1).scaleb(-MINOR_UNITS[currency])
    return value if 0 < value < 10**15 and value == value.quantize(unit) else None


@dataclasses.dataclass
class Expected:
    """What one account must be: its terms, and (balance, closed) after each of its versions."""

    id: uuid.UUID
    owner: str
    currency: str
    overdraft: Decimal
    states: list[tuple[Decimal, bool]] = dataclasses.field(
        default_factory=lambda: [(Decimal(0), False)]
    )

    @property
    def balance(self) -> Decimal:
        return self.states[-1][0]

    @property
    def closed(self) -> bool:
        return self.states[-1][1]

    @property
    def version(self) -> int:
        return len(self.states)

    def moved(self, signed: Decimal) -> None:
        self.states.append((self.balance + signed, self.closed))

    def accept(self, action: str, amount: str | None = None) -> Decimal:
        """Book an accepted deposit, withdrawal or closing; return the money it moved."""
        if action == "close":
            self.states.append((self.balance, True))
            return Decimal(0)
        signed = Decimal(amount) if action == "deposit" else -Decimal(amount)
        self.moved(signed)
        return signed

    def refusal(self, action: str, amount: str | None = None) -> type[Refusal] | None:
        """The refusal the domain owes this command now, or None when it must accept it."""
        if self.closed:
            return ClosedAccount
        if action == "close":
            return BalanceNotZero if self.balance != 0 else None
        value = valid_amount(amount, self.currency)
        if value is None:
            return InvalidAmount
        if action == "withdraw" and self.balance - value < -self.overdraft:
            return InsufficientFunds
        if action == "deposit" and self.balance + value > MAX_BALANCE[self.currency]:
            return BalanceLimit
        return None


def opening_refusal(owner: str, currency: str, overdraft: str) -> type[Refusal] | None:
    if not visible(owner.strip()):
        return Refusal
    if currency not in MINOR_UNITS:
        return UnknownCurrency
    if Decimal(overdraft) != 0 and valid_amount(overdraft, currency) is None:
        return InvalidAmount
    return None


def steps(command: tuple, models: list[Expected]) -> list[tuple]:
    """The steps a generated command stands for, its amounts written for the accounts' currencies:
    ("open", owner, currency, overdraft), (action, model[, amount]) or
    ("transfer", source, destination, amount)."""
    action, *args = command
    if action == "open":
        owner, currency, overdraft = args
        currency = currency or (models[0].currency if models else "EUR")
        return [("open", owner, currency, overdraft.text(currency) if overdraft else "0")]
    if not models:
        return []
    model = models[args[0] % len(models)]
    if action == "transfer":
        others = len(models) - 1
        offset = 1 + (args[1] - 1) % others if args[1] and others else 0
        destination = models[(args[0] + offset) % len(models)]
        return [("transfer", model, destination, args[2].text(model.currency))]
    if action == "close" or (action == "empty_and_close" and (model.closed or not model.balance)):
        return [("close", model)]
    if action == "empty_and_close":
        how = "withdraw" if model.balance > 0 else "deposit"
        return [(how, model, str(abs(model.balance))), ("close", model)]
    return [(action, model, args[1].text(model.currency))]


def shown(account: BankAccount) -> tuple:
    return (account.version, account.balance, account.closed, account.currency,
            account.overdraft_limit, account.owner)  # fmt: skip


def expected(model: Expected, version: int | None = None) -> tuple:
    version = version or model.version
    balance, closed = model.states[version - 1]
    return (version, balance, closed, model.currency, model.overdraft, model.owner.strip())


# 1. The domain alone: many sequences, no database.


def attempt(refusal: type[Refusal] | None, command: Callable[[], Any]) -> tuple[bool, Any]:
    """Run a command that must be refused with `refusal` (None: accepted); return (done, result)."""
    try:
        result = command()
    except Refusal as refused:
        result = refused
    if isinstance(result, Refusal):
        assert type(result) is refusal, f"refused with {result!r}, {refusal} was due"
        event(f"refused: {refusal.__name__}")  # see --hypothesis-show-statistics
        return False, None
    assert refusal is None, f"accepted, {refusal.__name__} was due"
    event("accepted")
    return True, result


@budget(300)
@given(commands=sequences(account_commands, min_size=20, max_size=60))
def test_accounts_never_pass_their_overdraft_and_refusals_record_nothing(commands):
    models: list[Expected] = []
    accounts: dict[uuid.UUID, BankAccount] = {}
    for command in commands:
        for action, *args in steps(command, models):
            if action == "open":
                owner, currency, overdraft = args
                opened, account = attempt(
                    opening_refusal(owner, currency, overdraft),
                    partial(BankAccount.open, owner=owner, currency=currency,
                            overdraft_limit=overdraft),
                )  # fmt: skip
                if opened:
                    models.append(Expected(account.id, owner, currency, Decimal(overdraft)))
                    accounts[account.id] = account
                continue
            model, *amount = args
            account = accounts[model.id]
            before = (account.snapshot_state(), account.version, len(account.pending_events))
            done, _ = attempt(
                model.refusal(action, *amount), partial(getattr(account, action), *amount)
            )
            if done:
                model.accept(action, *amount)
            else:
                after = (account.snapshot_state(), account.version, len(account.pending_events))
                assert after == before
            assert account.balance >= -account.overdraft_limit
            assert shown(account) == expected(model)
    for account in accounts.values():
        # What was recorded, encoded and decoded as the store would, replays to the same state.
        replay = BankAccount(account.id)
        for recorded in account.pending_events:
            replay.apply(registry.decode(recorded.type_name, registry.encode(recorded)))
        assert replay.snapshot_state() == account.snapshot_state()
        assert replay.version == account.version
        restored = BankAccount.from_snapshot(account.id, account.version, account.snapshot_state())
        assert shown(restored) == shown(account)


# 2. Old deposits: every stored v1 and v2 row reads as a valid v3 event, and stays as stored.

sums = st.integers(1, 10**12)  # in the currency's minor units
spellings = st.sampled_from(["quantized", "normalized", "number"])


def spelled(value: Decimal, spelling: str) -> str | int:
    """A stored amount as some older writer may have put it."""
    if spelling == "number" and value == value.to_integral_value():
        return int(value)
    return str(value.normalize() if spelling == "normalized" else value)


def deposit_row(version: int, value: Decimal, currency: str, spelling: str) -> NewEvent:
    amount = spelled(value, spelling)
    data = {
        1: {"sum": amount},
        2: {"sum": amount, "currency": currency},
        3: {"amount": str(value), "currency": currency, "transfer_id": None},
    }[version]
    return NewEvent("bank.MoneyDeposited", data, schema_version=version)


@pytest.mark.django_db
@budget(50)
@given(
    currency=st.sampled_from(sorted(MINOR_UNITS)),
    rows=st.lists(st.tuples(st.sampled_from([1, 2, 3]), sums, spellings), min_size=1, max_size=12),
)
def test_old_deposits_upcast_to_valid_v3_events_and_are_never_rewritten(currency, rows):
    store = get_event_store()
    plain = Repository(BankAccount, store)
    deposits = []
    for version, units, spelling in rows:
        version = 2 if version == 1 and currency != "EUR" else version  # v1 knew euros only
        deposits.append((version, Decimal(units).scaleb(-MINOR_UNITS[currency]), spelling))
    mixed, modern = (BankAccount.open(owner="Ada", currency=currency) for _ in range(2))
    mixed_rows = [deposit_row(v, value, currency, spelling) for v, value, spelling in deposits]
    modern_rows = [deposit_row(3, value, currency, "quantized") for _, value, _ in deposits]
    for account, new_events in ((mixed, mixed_rows), (modern, modern_rows)):
        plain.save(account)
        store.append(
            account.id, new_events, expected_version=1, aggregate_type=BankAccount.type_name
        )

    for stored, (version, value, _) in zip(
        list(store.read_stream(mixed.id))[1:], deposits, strict=True
    ):
        assert stored.schema_version == version
        event = plain.to_domain(stored)
        assert event == MoneyDeposited(value, currency, None)
        assert money(event.amount, event.currency) == event.amount  # a valid v3 amount
        lifted = upcasters.upcast("bank.MoneyDeposited", version, stored.data, 3)
        assert registry.decode("bank.MoneyDeposited", lifted) == event

    before = stored_rows(mixed.id)
    loaded = plain.load(mixed.id)
    assert stored_rows(mixed.id) == before
    assert (loaded.version, loaded.balance) == (len(deposits) + 1, sum(v for _, v, _ in deposits))
    assert shown(loaded) == shown(plain.load(modern.id))
    assert verify_chains(store.recorder, aggregate_id=mixed.id).intact


# 3. Through the services, the saga and the database: replay, time travel and read models.


@pytest.mark.django_db
@pytest.mark.xfail(
    connection.vendor == "sqlite",
    strict=True,
    reason="known gap on SQLite: decimal columns are stored as 8-byte floats, which keep 15 "
    "significant digits; the domain accepts amounts of up to 18 (below 10^15, to 3 places)",
)
@pytest.mark.parametrize(
    ("currency", "amount"),
    [("EUR", "999999999999999.99"), ("EUR", "123456789012345.67"), ("KWD", "9007199254740.993")],
)
def test_the_read_models_hold_the_largest_amounts_exactly(currency, amount):
    account, _ = services.account_open(owner="Ada", currency=currency)
    services.account_deposit(account_id=account.id, amount=amount)
    row = AccountBalance.objects.get(account_id=account.id)
    entry = LedgerEntry.objects.get(account_id=account.id)
    assert row.balance == entry.amount == entry.balance_after == Decimal(amount)


@pytest.fixture
def fresh_bank(log_db):
    """Give each example an empty log: rolled back on SQLite, emptied on PostgreSQL (where the
    saga and the rebuilds read the log, which shows committed events only)."""
    return emptied if on_postgresql() else rolled_back


@contextlib.contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@contextlib.contextmanager
def emptied():
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(BANK_TABLES)}")
        # Every command commits: not waiting for the disk makes an example twice as fast.
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def command_output(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, "--no-progress", *args, stdout=out)
    return out.getvalue()


class Bank:
    """Runs commands through the services (transfers through the saga) and keeps the books."""

    def __init__(self) -> None:
        self.accounts: list[Expected] = []
        self.transfers: dict[uuid.UUID, tuple[str, str, bool]] = {}
        self.external: Counter[str] = Counter()  # per currency: deposits - withdrawals
        self.snapshot_reads = get_repository(BankAccount)

    def run(self, command: tuple) -> None:
        for action, *args in steps(command, self.accounts):
            if action in ("open", "transfer"):
                getattr(self, action)(*args)
            else:
                self.move(action, *args)

    def open(self, owner: str, currency: str, overdraft: str) -> None:
        account = self._refused_or_done(
            opening_refusal(owner, currency, overdraft),
            partial(services.account_open, owner=owner, currency=currency,
                    overdraft_limit=overdraft),
        )  # fmt: skip
        if account is not None:
            self.accounts.append(Expected(account.id, owner, currency, Decimal(overdraft)))
            assert shown(account) == expected(self.accounts[-1])

    def move(self, action: str, model: Expected, amount: str | None = None) -> None:
        command = getattr(services, f"account_{action}")
        extra = {} if amount is None else {"amount": amount}
        if action == "close":
            extra["reason"] = "closed by the property test"
        account = self._refused_or_done(
            model.refusal(action, amount), partial(command, account_id=model.id, **extra)
        )
        if account is None:
            return
        self.external[model.currency] += model.accept(action, amount)
        assert account.balance >= -account.overdraft_limit
        assert shown(account) == expected(model)
        row = AccountBalance.objects.get(account_id=model.id)  # inline: read-your-writes
        assert (row.balance, row.version) == (model.balance, model.version)

    def transfer(self, source: Expected, destination: Expected, amount: str) -> None:
        value = valid_amount(amount, source.currency)
        refusal = SameAccount if source is destination else None if value else InvalidAmount
        transfer = self._refused_or_done(
            refusal,
            partial(services.transfer_request, source_id=source.id,
                    destination_id=destination.id, amount=amount),
        )  # fmt: skip
        if transfer is None:
            return
        services.settle_transfers()
        failure = source.refusal("withdraw", amount)
        if failure is not None:
            outcome = ("failed", failure.code, False)
        else:
            source.moved(-value)
            failure = (
                "currency_mismatch"
                if destination.currency != source.currency
                else "account_closed"
                if destination.closed
                else "balance_limit"
                if destination.balance + value > MAX_BALANCE[destination.currency]
                else None
            )
            if failure is None:
                destination.moved(value)
                outcome = ("completed", "", False)
            else:
                source.moved(value)
                outcome = ("failed", failure, True)
        self.transfers[transfer.id] = outcome
        event(f"transfer {outcome[0]} {outcome[1]}".strip())
        status = TransferStatus.objects.get(transfer_id=transfer.id)
        assert (status.status, status.failure_code, status.refunded) == outcome

    def _refused_or_done(self, refusal: type[Refusal] | None, command):
        """Run a command; a refusal must be the one due, and must record nothing."""
        events = Event.objects.count()
        done, result = attempt(refusal, command)
        appended = Event.objects.count() - events
        if not done:
            assert appended == 0, "a refused command recorded events"
            return None
        aggregate, stored = result
        assert len(stored) == appended > 0
        return aggregate

    def check(self, interval: int) -> None:
        """Everything the log, the aggregates and the read models must agree on."""
        store = get_event_store()
        plain = Repository(BankAccount, store)
        streams = Event.objects.values("aggregate_id").annotate(
            n=Count("id"), low=Min("version"), high=Max("version")
        )
        assert all(s["low"] == 1 and s["high"] == s["n"] for s in streams), "versions have gaps"
        for model in self.accounts:
            self._check_account(model, store, plain, interval)
        self._check_money()
        assert not ProjectionCheckpoint.objects.filter(status=ProjectionCheckpoint.FAILED).exists()
        for transfer_id, (status, _, refunded) in self.transfers.items():
            loaded = services.transfers().load(transfer_id)
            debited = status == "completed" or refunded  # requested, debited, completed/failed
            assert (loaded.status, loaded.version) == (status, 3 if debited else 2)
        events = sum(s["n"] for s in streams)
        intact = f"{events} events in {len(streams)} streams checked, 0 broken: the log is intact."
        assert intact in command_output("verify_events")
        replayed = command_output("rebuild_projections", "--verify", *BANK_PROJECTIONS)
        assert replayed.count(": matches a replay of ") == len(BANK_PROJECTIONS)

    def _check_account(self, model: Expected, store, plain: Repository, interval: int) -> None:
        assert shown(self.snapshot_reads.load(model.id)) == expected(model)
        assert shown(plain.load(model.id)) == expected(model)
        for version in range(1, model.version + 1):
            assert shown(self.snapshot_reads.load(model.id, version=version)) == expected(
                model, version
            )
            assert shown(plain.load(model.id, version=version)) == expected(model, version)
        stored = list(store.read_stream(model.id))
        assert [e.version for e in stored] == list(range(1, model.version + 1))
        for moment in (e.created_at for e in stored):
            last = max(e.version for e in stored if e.created_at <= moment)
            assert shown(self.snapshot_reads.load(model.id, as_of=moment)) == expected(model, last)
        with pytest.raises(AggregateNotFound):
            plain.load(model.id, as_of=stored[0].created_at.replace(year=2000))
        assert self.snapshot_reads.stale_snapshots == 0
        if model.version >= interval:
            assert Snapshot.objects.filter(aggregate_id=model.id).exists()

        row = AccountBalance.objects.get(account_id=model.id)
        assert (row.balance, row.version, row.status, row.currency, row.overdraft_limit) == (
            model.balance, model.version, "closed" if model.closed else "open", model.currency,
            model.overdraft,
        )  # fmt: skip
        entries = list(LedgerEntry.objects.filter(account_id=model.id).order_by("version"))
        moves = [e for e in stored if e.event_type != "bank.AccountOpened"
                 and e.event_type != "bank.AccountClosed"]  # fmt: skip
        assert [e.version for e in entries] == [e.version for e in moves]
        running = Decimal(0)
        for entry in entries:
            running += entry.amount if entry.kind == "deposit" else -entry.amount
            assert entry.balance_after == running
        assert running == model.balance

    def _check_money(self) -> None:
        """Money is only made by deposits and destroyed by withdrawals; none stays in flight."""
        assert not TransferStatus.objects.exclude(status__in=["completed", "failed"]).exists()
        held = totals((model.currency, model.balance) for model in self.accounts)
        assert held == totals(self.external.items())
        # Summed here, not in SQL: SQLite sums decimal columns as floating point.
        assert totals(AccountBalance.objects.values_list("currency", "balance")) == held
        seeding.catch_up_projections()
        daily = DailyTotal.objects.values_list("currency", "deposits", "withdrawals")
        assert totals((currency, d - w) for currency, d, w in daily) == held


def totals(amounts) -> dict[str, Decimal]:
    """Sum (currency, amount) pairs per currency, leaving out the currencies that sum to zero."""
    summed = defaultdict(Decimal)
    for currency, amount in amounts:
        summed[currency] += amount
    return {currency: total for currency, total in summed.items() if total}


@budget(30)
@given(
    commands=sequences(bank_commands, min_size=15, max_size=30),
    interval=st.integers(1, 6),
)
def test_services_keep_log_aggregates_and_read_models_in_agreement(fresh_bank, commands, interval):
    intervals = {"bank.Account": interval, "bank.Transfer": interval}
    with override_settings(
        EVENTSOURCING={**django_settings.EVENTSOURCING, "SNAPSHOT_INTERVALS": intervals}
    ), fresh_bank():  # fmt: skip
        bank = Bank()
        for command in commands:
            bank.run(command)
        bank.check(interval)
