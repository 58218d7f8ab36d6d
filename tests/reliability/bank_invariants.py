"""The bank's invariants, checked in its database against what its clients were told.

The clients (tests/reliability/soak_client.py) report every command the bank accepted; `combined`
adds their reports up and `check_store` checks that the store holds exactly that: the events of
every accepted command and of no other, each stream's versions 1..n and in log order, intact hash
chains, balances that agree three ways (read model, ledger, aggregate), money conserved, every
transfer finished with its money moved once, and read models equal to a replay of the log.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from bankdemo import services
from bankdemo.models import AccountBalance, LedgerEntry, TransferStatus
from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_recorder

EVENT_OF_COMMAND = {
    "deposit": "bank.MoneyDeposited",
    "withdraw": "bank.MoneyWithdrawn",
    "close": "bank.AccountClosed",
}
LEDGER_KIND = {"deposit": "deposit", "withdraw": "withdrawal"}
FINISHED = {"bank.TransferCompleted": "completed", "bank.TransferFailed": "failed"}


# What the clients were told


@dataclass
class Tally:
    """The clients' reports, added up."""

    statuses: Counter = field(default_factory=Counter)
    accepted: list[list] = field(default_factory=list)
    opened: dict[str, str] = field(default_factory=dict)
    transfers: set[str] = field(default_factory=set)
    failures: list[list] = field(default_factory=list)
    unexpected: list[dict] = field(default_factory=list)
    malformed: list[dict] = field(default_factory=list)
    replay_mismatches: list[dict] = field(default_factory=list)
    unresolved: list[dict] = field(default_factory=list)
    replays_checked: int = 0
    resolved_by_retry: int = 0
    replayed_after_failure: int = 0
    reconnects: Counter = field(default_factory=Counter)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> dict[str, int]:
        return {s: n for s, n in self.statuses.items() if s.isdigit() and int(s) >= 500}

    @property
    def connection_errors(self) -> dict[str, int]:
        return {s: n for s, n in self.statuses.items() if not s.isdigit()}

    @property
    def listed(self) -> str:
        return json.dumps(
            {
                "unexpected": self.unexpected[:10],
                "malformed": self.malformed[:10],
                "replay_mismatches": self.replay_mismatches[:5],
                "unresolved": self.unresolved[:10],
                "failures": self.failures[:10],
            },
            indent=1,
        )


def combined(reports: list[dict]) -> Tally:
    tally = Tally()
    for report in reports:
        tally.statuses.update(report["statuses"])
        tally.accepted += report["accepted"]
        tally.opened.update(dict(report["opened"]))
        tally.transfers.update(report["transfers"])
        for name in ("failures", "unexpected", "malformed", "replay_mismatches", "unresolved"):
            getattr(tally, name).extend(report[name])
        tally.replays_checked += report["replays_checked"]
        tally.resolved_by_retry += report["resolved_by_retry"]
        tally.replayed_after_failure += report["replayed_after_failure"]
        tally.reconnects.update(report["reconnects"])
        tally.p50.append(report["latency"]["p50"])
        tally.p99.append(report["latency"]["p99"])
    return tally


# What the store holds


def check_store(tally: Tally) -> dict[str, int]:
    """Check every invariant against what the clients were told; return the store's counts."""
    check_streams()
    check_commands(tally)
    accounts = check_balances(tally)
    transfers = check_transfers(tally)
    check_read_models_replay()
    return {"events": Event.objects.count(), **accounts, **transfers}


def check_streams() -> None:
    """Versions run 1..n in every stream and every hash chain verifies."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT aggregate_id, count(*), min(version), max(version) FROM events "
            "GROUP BY aggregate_id HAVING count(*) <> max(version) OR min(version) <> 1"
        )
        gaps = cursor.fetchall()
    assert gaps == [], f"streams whose versions are not 1..n: {gaps[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.aggregate_type, b.aggregate_id, b.version, b.event_type, "
            "a.transaction_id::text, a.id, b.transaction_id::text, b.id "
            "FROM events a JOIN events b "
            "ON b.aggregate_id = a.aggregate_id AND b.version = a.version + 1 "
            "WHERE (b.transaction_id, b.id) < (a.transaction_id, a.id)"
        )
        behind = cursor.fetchall()
    assert behind == [], (
        f"{len(behind)} events come before their predecessor in the log's (transaction, id) "
        f"order, so projections and replays fold them out of order: {behind[:5]}"
    )
    report = verify_chains(get_recorder())
    assert report.intact, [str(chain_break) for chain_break in report.breaks[:10]]
    assert report.events_checked == Event.objects.count()


def check_commands(tally: Tally) -> None:
    """The accounts' own events (not a transfer's) are exactly the commands clients saw accepted,
    with their amounts in the ledger; the streams are exactly the ones they opened."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT aggregate_id, version, event_type FROM events "
            "WHERE aggregate_type = 'bank.Account' AND version > 1 "
            "AND event_data->>'transfer_id' IS NULL"
        )
        recorded = {(str(account), version): kind for account, version, kind in cursor.fetchall()}
    told = {
        (account, version): EVENT_OF_COMMAND[kind] for kind, account, version, *_ in tally.accepted
    }
    assert len(told) == len(tally.accepted), "two accepted commands claim one version"
    assert_same("account events", recorded, told)
    ledger = LedgerEntry.objects.values_list("account_id", "version", "kind", "amount")
    entries = {(str(a), v): (kind, amount) for a, v, kind, amount in ledger}
    for kind, account, version, amount, _ in tally.accepted:
        if kind in LEDGER_KIND:
            assert entries.get((account, version)) == (LEDGER_KIND[kind], Decimal(amount)), (
                f"{kind} {amount} accepted as {account} v{version}, ledger has "
                f"{entries.get((account, version))}"
            )
    streams = Event.objects.filter(version=1).values_list("aggregate_type", "aggregate_id")
    by_type = defaultdict(set)
    for aggregate_type, aggregate_id in streams:
        by_type[aggregate_type].add(str(aggregate_id))
    assert_same("accounts", by_type["bank.Account"], set(tally.opened))
    assert_same("transfers", by_type["bank.Transfer"], tally.transfers)


def check_balances(tally: Tally) -> dict[str, int]:
    """Each balance is the same in the read model, the ledger and the aggregate; the money in
    the bank is what clients deposited less what they withdrew, per currency."""
    ledger_sum: dict[str, Decimal] = defaultdict(Decimal)
    last_after: dict[str, Decimal] = {}
    entries = LedgerEntry.objects.values_list(
        "account_id", "version", "kind", "amount", "balance_after", "event_id"
    )
    for account, version, kind, amount, after, event_id in entries.order_by(
        "account_id", "version"
    ):
        ledger_sum[str(account)] += amount if kind == "deposit" else -amount
        assert after == ledger_sum[str(account)], (
            f"ledger entry {account} v{version} (event {event_id}): balance after {after}, "
            f"the entries up to it add up to {ledger_sum[str(account)]}"
        )
        last_after[str(account)] = after
    rows = {str(row.account_id): row for row in AccountBalance.objects.all()}
    assert_same("balance rows", set(rows), set(tally.opened))
    repository = services.accounts()
    held: dict[str, Decimal] = defaultdict(Decimal)
    for account, row in rows.items():
        aggregate = repository.load(account)
        last = last_after.get(account, Decimal(0))
        assert row.balance == ledger_sum[account] == last == aggregate.balance, (
            f"account {account}: read model {row.balance}, ledger sum {ledger_sum[account]}, "
            f"last balance_after {last}, aggregate {aggregate.balance}"
        )
        assert row.version == aggregate.version, f"account {account} read model version"
        assert (row.status == "closed") == aggregate.closed, f"account {account} status"
        held[row.currency] += row.balance
    brought: dict[str, Decimal] = defaultdict(Decimal)
    for kind, _, _, amount, currency in tally.accepted:
        if kind in LEDGER_KIND:
            brought[currency] += Decimal(amount) if kind == "deposit" else -Decimal(amount)
    assert {c: v for c, v in held.items() if v} == {c: v for c, v in brought.items() if v}, (
        f"money held {dict(held)}, deposited less withdrawn {dict(brought)}"
    )
    return {
        "accounts": len(rows),
        "closed": sum(row.status == "closed" for row in rows.values()),
    }


def check_transfers(tally: Tally) -> dict[str, int]:
    """Every transfer finished, its stream and read model agree, and its money moved once:
    out of the source and into the destination, or back to the source, or not at all."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type FROM events "
            "WHERE aggregate_type = 'bank.Transfer' ORDER BY aggregate_id, version DESC"
        )
        last_events = {str(transfer): kind for transfer, kind in cursor.fetchall()}
    moves = defaultdict(list)
    for transfer, account, kind, amount in LedgerEntry.objects.filter(
        transfer_id__isnull=False
    ).values_list("transfer_id", "account_id", "kind", "amount"):
        moves[str(transfer)].append((str(account), kind, amount))
    rows = {str(row.transfer_id): row for row in TransferStatus.objects.all()}
    assert_same("transfer rows", set(rows), tally.transfers)
    unfinished = {t: kind for t, kind in last_events.items() if kind not in FINISHED}
    assert unfinished == {}, f"transfers in flight: {list(unfinished.items())[:10]}"
    for transfer, row in rows.items():
        assert row.status == FINISHED[last_events[transfer]], f"transfer {transfer} read model"
        source, destination = str(row.source_id), str(row.destination_id)
        if row.status == "completed":
            expected = [(source, "withdrawal"), (destination, "deposit")]
        elif row.refunded:
            expected = [(source, "withdrawal"), (source, "deposit")]
        else:
            expected = []
        moved = moves.pop(transfer, [])
        assert sorted((a, k) for a, k, _ in moved) == sorted(expected), (
            f"transfer {transfer} ({row.status}, refunded {row.refunded}) moved {moved}"
        )
        assert all(amount == row.amount for *_, amount in moved), f"transfer {transfer} amounts"
    assert moves == {}, f"ledger entries of unknown transfers: {list(moves)[:10]}"
    statuses = Counter(row.status for row in rows.values())
    return {
        "transfers": len(rows),
        "completed": statuses["completed"],
        "failed": statuses["failed"],
        "refunded": sum(row.refunded for row in rows.values()),
    }


def check_read_models_replay() -> None:
    """`rebuild_projections --verify`: every read model equals a replay of the log."""
    output = io.StringIO()
    try:
        call_command("rebuild_projections", "--verify", "--no-progress", stdout=output)
    except CommandError as exc:
        pytest.fail(f"{exc}\n{output.getvalue()}")


def assert_same(what: str, found, expected) -> None:
    """Compare two sets (or dicts), naming a few differences rather than printing them all."""
    if found == expected:
        return
    found_keys, expected_keys = set(found), set(expected)
    differ = (
        sorted(k for k in found_keys & expected_keys if found[k] != expected[k])
        if isinstance(found, dict)
        else []
    )
    raise AssertionError(
        f"{what}: {len(found_keys - expected_keys)} in the store that clients were not told of "
        f"{sorted(found_keys - expected_keys)[:5]}, {len(expected_keys - found_keys)} accepted "
        f"but missing {sorted(expected_keys - found_keys)[:5]}, different: {differ[:5]}"
    )
