"""Soak trials: the bank under load through gunicorn, then with its PostgreSQL restarted under load.

Each trial serves the production settings (`DJANGO_DEBUG=0`) with gunicorn on the test database,
runs `manage.py run_projections` workers (the transfer saga and the async read models) and drives
the HTTP API from `CLIENTS` processes (tests/reliability/soak_client.py) for `SOAK_SECONDS` (15
unless set; `make soak` sets 300). When the workers have caught up and every process is stopped,
the store must hold what the clients were told and nothing else (tests/reliability/
bank_invariants.py).

What "fail fast" means in the restart trial: gunicorn stays up while PostgreSQL restarts, so every
request still gets an HTTP answer: a 503 JSON body (`database_unavailable`, Retry-After) within
`FAIL_FAST_SECONDS`. A client sees no connection error at all. A 503 does not always mean "not
applied": a COMMIT cut by the restart may have landed before its acknowledgement was lost, so the
clients send a command that got a 503 again with its Idempotency-Key, and each gets exactly one
outcome (the summary counts those that turn out applied). Requests fail only from the restart on,
until at most `RECOVERY_SECONDS` after the database is back, and the same gunicorn workers serve
again: nothing is restarted but PostgreSQL.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from rest_framework.authtoken.models import Token

from bankdemo.api.permissions import TELLERS
from eventsourcing_app.projections.status import projection_statuses
from eventsourcing_app.wiring import get_event_store
from tests.helpers import requires_postgresql
from tests.reliability.bank_invariants import Tally, check_store, combined
from tests.reliability.served import (
    Clients,
    Probe,
    bank_service,
    check_logs,
    logs_shown_on_failure,
)

pytestmark = [pytest.mark.soak, requires_postgresql, pytest.mark.django_db(transaction=True)]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS") or 15)
CLIENTS = 4
DRAIN_TIMEOUT = 120.0
RESTART_TIMEOUT = 120.0
FAIL_FAST_SECONDS = 5.0
RECOVERY_SECONDS = 15.0
BANK = "bank."


def test_the_bank_under_load_keeps_every_invariant(tmp_path):
    """Clients open, deposit, withdraw, transfer, close and read for SOAK_SECONDS: no 5xx, and
    the store holds exactly what they were told, consistent every way it can be checked."""
    with logs_shown_on_failure(tmp_path):
        tokens = [teller(f"soak-teller-{number}") for number in range(CLIENTS)]
        with (
            bank_service(tmp_path, tokens[0]) as service,
            Clients(
                service.port, tokens, tmp_path, seconds=SOAK_SECONDS, retry_unavailable=False
            ) as clients,
        ):
            reports = clients.join()
            wait_for_projections()
            assert service.running(), "gunicorn or a worker died under load"
        tally = combined(reports)
        print(f"\nSOAK load, {SOAK_SECONDS:g} s: {requests_seen(tally)}")
        assert tally.server_errors == {}, f"5xx answers: {tally.server_errors}"
        assert tally.connection_errors == {}, f"requests without an answer: {tally.listed}"
        assert tally.unexpected == [], tally.listed
        assert tally.malformed == [], tally.listed
        assert tally.replay_mismatches == [], tally.listed
        assert tally.replays_checked > 0
        counts = check_store(tally)
        check_logs(tmp_path)
        print(f"SOAK load, {SOAK_SECONDS:g} s: {stored(counts)}")


def test_a_postgresql_restart_under_load_fails_fast_and_recovers(tmp_path):
    """PostgreSQL restarts while clients work: requests fail fast with 503 JSON only while it is
    away, nothing partial is written, and the same gunicorn serves again once it is back."""
    command = os.environ.get("POSTGRESQL_RESTART")
    if not command:
        reason = (
            "set POSTGRESQL_RESTART to a shell command that restarts the PostgreSQL server, e.g. "
            "'pg_ctlcluster --skip-systemctl-redirect 15 main restart' (it cuts every connection "
            "on that server, other people's too)"
        )
        print(f"\nskipped: {reason}")
        pytest.skip(reason)
    with logs_shown_on_failure(tmp_path):
        tokens = [teller(f"soak-teller-{number}") for number in range(CLIENTS)]
        with (
            bank_service(tmp_path, tokens[0]) as service,
            Clients(
                service.port, tokens, tmp_path, seconds=SOAK_SECONDS, retry_unavailable=True
            ) as clients,
        ):
            with Probe(service.port, tokens[0]) as probe:
                time.sleep(max(SOAK_SECONDS / 3, 3.0))
                started_before = postmaster_started()
                connection.close()  # this process's connection is about to be cut
                restart = restart_postgresql(command)
                reports = clients.join()
            connection.close()
            wait_for_projections()
            assert service.running(), "gunicorn or a worker died during the restart"
            boots = service.server.output().count("Booting worker")
        tally = combined(reports)
        outage = Outage.seen(restart, probe.answers, tally)
        print(f"\nSOAK restart, {SOAK_SECONDS:g} s: {outage}")
        print(f"SOAK restart, {SOAK_SECONDS:g} s: {requests_seen(tally)}")
        # Requests wait up to DJANGO_DB_POOL_TIMEOUT for a connection, so a short restart may
        # pass without a failure: the server's start time tells that it happened.
        assert postmaster_started() > started_before, "PostgreSQL was not restarted"
        assert boots == 2, f"gunicorn booted {boots} workers, not its first 2: it was restarted"
        assert tally.unresolved == [], tally.listed
        assert tally.malformed == [], tally.listed
        assert tally.unexpected == [], tally.listed
        assert tally.replay_mismatches == [], tally.listed
        assert set(tally.server_errors) <= {"503"}, f"5xx answers: {tally.server_errors}"
        assert tally.connection_errors == {}, f"requests without an answer: {tally.listed}"
        assert all(failure[2] == 503 for failure in probe.failures), probe.failures
        assert outage.slowest < FAIL_FAST_SECONDS, f"a failure took {outage.slowest:.1f} s"
        assert outage.recovery < RECOVERY_SECONDS, (
            f"requests failed until {outage.recovery:.1f} s after the database was back"
        )
        assert outage.early == [], f"failures before the restart: {outage.early}"
        counts = check_store(tally)
        check_logs(tmp_path)
        print(f"SOAK restart, {SOAK_SECONDS:g} s: {stored(counts)}")


def teller(username: str) -> str:
    """Create a teller (who signs in by token only, so no password to hash); return the token."""
    user = User.objects.create_user(username)
    user.groups.add(Group.objects.get_or_create(name=TELLERS)[0])
    return Token.objects.create(user=user).key


def postmaster_started():
    """Return when the PostgreSQL server started (it changes with every restart)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        return cursor.fetchone()[0]


def restart_postgresql(command: str) -> tuple[float, float]:
    """Run the restart command; return the wall times it began and ended."""
    began = time.time()
    done = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=RESTART_TIMEOUT
    )
    ended = time.time()
    assert done.returncode == 0, f"{command!r} exited {done.returncode}: {done.stderr[-2000:]}"
    return began, ended


def wait_for_projections() -> None:
    """Wait until every async bank projection has applied the whole log."""
    store = get_event_store()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        statuses = [s for s in projection_statuses(store) if s.name.startswith(BANK)]
        failed = [f"{s.name}: {s.last_error}" for s in statuses if s.status == "failed"]
        assert failed == [], f"projections stopped: {failed}"
        behind = [f"{s.name} {s.events_behind}" for s in statuses if not s.up_to_date]
        if not behind:
            return
        assert time.monotonic() < deadline, f"not caught up in {DRAIN_TIMEOUT:.0f} s: {behind}"
        time.sleep(0.5)


def requests_seen(tally: Tally) -> str:
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    return (
        f"{CLIENTS} clients, {tally.requests} requests ({statuses}); "
        f"{tally.replays_checked} deliberate retries replayed; "
        f"p50 {statistics.median(tally.p50) * 1000:.0f} ms, "
        f"p99 {max(tally.p99) * 1000:.0f} ms (worst client)"
    )


def stored(counts: dict[str, int]) -> str:
    return (
        f"{counts['events']} events; {counts['accounts']} accounts ({counts['closed']} closed); "
        f"{counts['transfers']} transfers ({counts['completed']} completed, "
        f"{counts['failed']} failed, {counts['refunded']} of them refunded)"
    )


@dataclass
class Outage:
    """What clients and the probe saw of a database restart."""

    restart: tuple[float, float]  # wall times the restart command began and ended
    first_failure: float
    last_failure: float
    # Seconds from the restart command's end to the first answer after the last failure
    # (negative when the server took requests again before the command returned).
    recovery: float
    slowest: float  # seconds the slowest failed request took
    failures: Counter  # by status or error
    early: list[list]  # failures before the restart began
    tally: Tally

    @classmethod
    def seen(cls, restart: tuple[float, float], probed: list[list], tally: Tally) -> Outage:
        failures = [answer for answer in probed if answer[2] != 200] + tally.failures
        began, ended = restart
        if not failures:
            return cls(restart, began, began, 0.0, 0.0, Counter(), [], tally)
        last = max(at for at, *_ in failures)
        answered = [at + seconds for at, seconds, status in probed if status == 200 and at > last]
        back = min(answered, default=time.time())
        return cls(
            restart=restart,
            first_failure=min(at for at, *_ in failures),
            last_failure=last,
            recovery=back - ended,
            slowest=max(seconds for _, seconds, _ in failures),
            failures=Counter(str(status) for *_, status in failures),
            early=[failure for failure in failures if failure[0] < began - 1.0][:10],
            tally=tally,
        )

    def __str__(self) -> str:
        began, ended = self.restart
        return (
            f"restart command {ended - began:.1f} s; requests failed from "
            f"{self.first_failure - began:+.1f} s to {self.last_failure - began:+.1f} s of it "
            f"({dict(self.failures)}), the slowest failure took {self.slowest * 1000:.0f} ms; "
            f"answered again at {self.recovery + ended - began:+.1f} s; "
            f"{self.tally.resolved_by_retry} commands retried through it "
            f"({self.tally.replayed_after_failure} of them had been applied and were replayed), "
            f"{sum(self.tally.reconnects.values())} keep-alive reconnects"
        )
