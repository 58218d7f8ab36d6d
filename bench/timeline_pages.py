"""Latency of an aggregate's timeline page in the admin when the stream itself is long.

One bank account of `EVENTS` events (100,000 by default), sealed into the ledger, requested by a
superuser with `django.test.Client` in process and `DEBUG` off, as bench/admin_pages.py does.
The pages: the first, one in the middle and the last, each `WARMUP` times then `REQUESTS` timed
(warm: the state before a page continues from a page boundary this process replayed before);
and a deep page cold, with the process's boundary cache emptied before each request (what the
first auditor to open it after a restart waits for).

The target is absolute: a warm page within `TARGET_MS` at the median.

Run alone: `DATABASE_URL=postgres://.../<scratch db> python -m bench.timeline_pages [--events N]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

from bench import admin_pages, ledger
from bench.environment import standalone

EVENTS = 100_000
SAVE_BATCH = 1_000
COLD_REQUESTS = 5
TARGET_MS = 300.0


def long_account(events: int) -> uuid.UUID:
    """Open an account and give it `events` events in all, saved `SAVE_BATCH` at a time."""
    from bankdemo.domain import BankAccount
    from eventsourcing_app.core.repository import Repository
    from eventsourcing_app.wiring import get_event_store

    repository = Repository(BankAccount, get_event_store())
    account = BankAccount.open(owner="Bench Long Timeline", currency="EUR")
    for number in range(1, events):
        account.deposit("1.00") if number % 3 else account.withdraw("0.50")
        if account.version - account.original_version >= SAVE_BATCH:
            repository.save(account)
    repository.save(account)
    return account.id


def row_name(page: str, events: int) -> str:
    return f"admin timeline {page}, stream of {events:,}"


def rows(info: str, events: int) -> list[dict]:
    from django.urls import reverse

    from bench import filling
    from eventsourcing_app.audit import paging
    from eventsourcing_app.ledger.sealer import seal_now
    from eventsourcing_app.wiring import get_event_store

    filling.progress(f"admin timeline of one {events:,}-event stream")
    aggregate_id = long_account(events)
    with tempfile.TemporaryDirectory() as folder, ledger.signing(Path(folder)):
        seal_now(get_event_store())
    client = admin_pages.logged_in_client()
    url = reverse("admin:eventsourcing_timeline", args=[aggregate_id])
    middle = paging.page_of_version(events // 2)
    result = []
    try:
        for page, query in (("first page", ""), (f"page {middle}", f"?page={middle}"),
                            ("last page", "?page=last")):  # fmt: skip
            samples = admin_pages.latencies(client, url + query)
            result.append(admin_pages.page_row(row_name(f"{page}, warm", events), samples, None))
        cold = []
        for _ in range(COLD_REQUESTS):
            paging.CACHE.clear()
            cold += admin_pages.latencies(client, f"{url}?page={middle}", warmup=0, requests=1)
        result.append(admin_pages.page_row(row_name(f"page {middle}, cold", events), cold, None))
    finally:
        client.logout()
        paging.CACHE.clear()
        ledger.empty_ledger(info)
    for row in result:
        if ", warm" in row["variant"]:
            row["target"] = f"<= {TARGET_MS:g} ms"
            row["met"] = row["value"] <= TARGET_MS
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS, help=f"default {EVENTS:,}")
    args = parser.parse_args(argv)
    return standalone(lambda info: rows(info, args.events), admin_pages.tidy_up)


if __name__ == "__main__":
    sys.exit(main())
