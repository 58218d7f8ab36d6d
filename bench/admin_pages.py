"""Latency of the admin's event pages while the log grows from 10,000 to 1,000,000 events.

At each log size (bank events, `bench/filling.py`) a superuser (`ADMIN`) requests each page
with `django.test.Client`, in process and with `DEBUG` off: `WARMUP` requests, then `REQUESTS`
timed ones. The pages: the event list, the list filtered by one event type, the list searched
for one aggregate (the search box takes an aggregate id), one event's detail page, and the
aggregate's timeline. The aggregate is a bench account of `FIXED_EVENTS` events opened before
the first fill, so its pages show the same stream at every size and only the log around it
grows.

Each row's value is the median in ms; p99 and max are in the note. Baseline of a page at the
bigger size: the same page at the smaller size, so the ratio is the time ratio (target: within
2, i.e. a page does not get slower with the log).

Run alone: `DATABASE_URL=postgres://.../<scratch db> python -m bench.admin_pages [--quick]`.
Imports that need Django set up happen inside the functions that use them, so that `main()`
can set Django up first, as bench/run.py does.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass

from bench import report
from bench.environment import standalone

QUICK_SIZES = [10_000, 100_000]
FULL_SIZES = [10_000, 1_000_000]
ADMIN = "bench-admin"
WARMUP = 3
REQUESTS = 30
FIXED_EVENTS = 50
FILTERED_TYPE = "bank.MoneyWithdrawn"
HOST = "localhost"  # one of the default ALLOWED_HOSTS


@dataclass(frozen=True)
class Fixture:
    aggregate_id: uuid.UUID
    event_id: int


def open_fixed_account() -> Fixture:
    """Open a bench account with `FIXED_EVENTS` events; return it and its last event's id."""
    from bankdemo.domain import BankAccount
    from eventsourcing_app.core.repository import Repository
    from eventsourcing_app.wiring import get_event_store

    account = BankAccount.open(owner="Bench Admin Pages", currency="EUR")
    for number in range(1, FIXED_EVENTS):
        account.deposit(f"{number}.00")
    stored = Repository(BankAccount, get_event_store()).save(account)
    return Fixture(account.id, stored[-1].id)


def pages(fixture: Fixture) -> dict[str, str]:
    """Return page name -> path."""
    from django.urls import reverse

    events = reverse("admin:eventsourcing_app_event_changelist")
    return {
        "event list": events,
        "event list, one event type": f"{events}?event_type={FILTERED_TYPE}",
        "event list, one aggregate": f"{events}?q={fixture.aggregate_id}",
        "event detail": reverse("admin:eventsourcing_app_event_change", args=[fixture.event_id]),
        "aggregate timeline": reverse("admin:eventsourcing_timeline", args=[fixture.aggregate_id]),
    }


def logged_in_client():
    """A test client logged in as a fresh superuser `ADMIN` (a leftover one is replaced)."""
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.filter(username=ADMIN).delete()
    user = User.objects.create_user(ADMIN, is_staff=True, is_superuser=True)
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    return client


def latencies(client, path: str, warmup: int = WARMUP, requests: int = REQUESTS) -> list[float]:
    """Request `path` `warmup` times, then `requests` times; return the timed ones in ms."""
    samples = []
    for number in range(warmup + requests):
        began = time.perf_counter()
        response = client.get(path, secure=True)  # production settings redirect plain HTTP
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
        if number >= warmup:
            samples.append(elapsed * 1000)
    return samples


def page_row(name: str, samples: list[float], baseline: str | None) -> dict:
    row = report.summarise(name, samples, baseline, unit="ms")
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    row["note"] = f"p99 {p99:,.1f} ms, max {ordered[-1]:,.1f} ms"
    return row


def row_name(page: str, size: int) -> str:
    return f"admin {page}, log of {size:,}"


def rows(info: str, sizes: list[int]) -> list[dict]:
    """Measure every page at each size, smallest first (the log only grows)."""
    from bench import filling

    fixture = open_fixed_account()
    client = logged_in_client()
    result: list[dict] = []
    smaller = None
    try:
        for size in sorted(sizes):
            filling.fill_bank_log(size)
            filling.progress(f"admin pages at {size:,} events")
            for page, path in pages(fixture).items():
                baseline = None if smaller is None else row_name(page, smaller)
                result.append(page_row(row_name(page, size), latencies(client, path), baseline))
            smaller = size
    finally:
        client.logout()
    report.add_ratios(result)
    return result


def tidy_up() -> None:
    """Delete `ADMIN` and empty the read models (the events go with the scratch database's)."""
    from django.contrib.auth.models import User

    from bench import filling

    User.objects.filter(username=ADMIN).delete()
    filling.tidy_up()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 events")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    return standalone(lambda info: rows(info, sizes), tidy_up)


if __name__ == "__main__":
    sys.exit(main())
