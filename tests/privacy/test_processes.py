"""Every process forgets: a worker or server process that opened a subject's personal data (and
keeps its unwrapped key) reads it as erased once `forget_subject` has returned elsewhere.

The other processes are real ones, `python -c` on the test database with the run's master
key; they answer on stdout, one JSON line per load, and wait on stdin between loads. On
PostgreSQL only: a process of its own cannot see SQLite's in-memory test database.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from bankdemo import services
from bankdemo.domain import BankAccount
from eventsourcing_app.core.personal import ERASED
from eventsourcing_app.wiring import get_repository
from tests.helpers import requires_postgresql
from tests.privacy.test_forget import database_text
from tests.reliability.fleet import database_url

pytestmark = [requires_postgresql, pytest.mark.usefixtures("log_db")]

ROOT = Path(__file__).resolve().parents[2]
OWNER = "Ottoline Brackenbury-Vesk"
ANSWER_TIMEOUT = 60.0  # Django starting in a busy machine, then one load

# A process that loads the account at start and again for each line on stdin. `worker` keeps
# one repository and one connection for its life; `server` takes a new repository for each
# load and closes the connection after it, as a request does; `slow-deposit` runs a deposit
# that waits, once it has loaded the account, for a line on stdin (a command in flight).
CHILD = """
import json, select, sys
import django
django.setup()
from django.conf import settings
from django.db import connection
from bankdemo import services
from bankdemo.domain import BankAccount
from eventsourcing_app.privacy.keyring import unwrapped_keys
from eventsourcing_app.wiring import get_repository

account_id, mode = sys.argv[1], sys.argv[2]
kept = get_repository(BankAccount)

def say(account, **extra):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    print(json.dumps({"owner": account.owner, "balance": str(account.balance),
                      "backend": backend, "cached_keys": len(unwrapped_keys()), **extra}),
          flush=True)

def load():
    repository = kept if mode == "worker" else get_repository(BankAccount)
    say(repository.load(account_id), repository=id(repository))
    if mode == "server":
        connection.close()

if mode == "slow-deposit":
    # the account is at version 2: its next event is due a snapshot
    settings.EVENTSOURCING = {**settings.EVENTSOURCING,
                              "SNAPSHOT_INTERVALS": {"bank.Account": 3}}
    deposit = BankAccount.deposit

    def waiting_deposit(account, amount, **options):
        say(account)
        if not select.select([sys.stdin], [], [], 60)[0]:
            sys.exit("nobody said go")
        sys.stdin.readline()
        deposit(account, amount, **options)

    BankAccount.deposit = waiting_deposit
    account, _ = services.account_deposit(account_id=account_id, amount="1.00")
    say(account)
else:
    load()
    for line in sys.stdin:
        load()
"""


class Child:
    """One `python -c CHILD` process; its stdout lines are read as they come."""

    def __init__(self, account_id, mode: str) -> None:
        env = {
            **os.environ,  # the run's PERSONAL_DATA_KEY and LEDGER_SIGNING_KEY among them
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONUNBUFFERED": "1",
        }
        self.popen = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(account_id), mode],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def answer(self) -> dict:
        """Return the next load's answer; fail with the child's stderr if none comes."""
        try:
            line = self.lines.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            line = None
        if line is None:
            self.stop()
            pytest.fail(f"the child gave no answer; its stderr:\n{self.stderr[-4000:]}")
        return json.loads(line)

    def load(self) -> dict:
        self.popen.stdin.write("load\n")
        self.popen.stdin.flush()
        return self.answer()

    def stop(self) -> None:
        """End the child (stdin closed, then killed if need be) and keep its stderr."""
        if self.popen.poll() is None:
            try:
                self.popen.stdin.close()
                self.popen.wait(timeout=ANSWER_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                self.popen.kill()
                self.popen.wait()
        if not self.popen.stderr.closed:
            self.stderr = self.popen.stderr.read()
            self.popen.stderr.close()


@pytest.fixture
def children():
    started: list[Child] = []

    def start(account_id, mode: str) -> Child:
        child = Child(account_id, mode)
        started.append(child)
        return child

    yield start
    for child in started:
        child.stop()


@pytest.fixture
def account():
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    services.account_deposit(account_id=account.id, amount="12.50")
    return account.id


def forget(account_id) -> None:
    call_command("forget_subject", str(account_id), "--reason", "art. 17", stdout=StringIO())


def output_after(child: Child, mark: int) -> str:
    return "".join(child.stdout[mark:]) + child.stderr


@pytest.mark.parametrize("mode", ["worker", "server"])
def test_a_process_that_read_the_owner_reads_erased_once_forget_subject_returns(
    account, children, mode
):
    child = children(account, mode)
    before = child.answer()
    assert before["owner"] == OWNER
    assert before["cached_keys"] >= 1  # it holds the unwrapped key now

    forget(account)
    mark = len(child.stdout)  # every line from here on was printed after the erasure
    after = [child.load(), child.load()]

    for answer in after:
        assert answer["owner"] == ERASED
        assert answer["balance"] == before["balance"] == "12.50"
    if mode == "worker":  # the same connection and repository all along
        assert {a["backend"] for a in after} == {before["backend"]}
        assert {a["repository"] for a in after} == {before["repository"]}
    child.stop()
    assert child.popen.returncode == 0, child.stderr
    assert OWNER not in output_after(child, mark)


def test_a_process_started_after_the_erasure_never_sees_the_owner(account, children):
    worker = children(account, "worker")
    assert worker.answer()["owner"] == OWNER
    forget(account)

    late = children(account, "worker")
    assert late.answer()["owner"] == ERASED
    assert late.load()["owner"] == ERASED
    late.stop()
    assert late.popen.returncode == 0, late.stderr
    assert OWNER not in output_after(late, 0)
    assert get_repository(BankAccount).load(account).owner == ERASED


def test_a_command_in_flight_across_the_erasure_is_retried_on_the_erased_state(account, children):
    """The erasure records itself in the stream first: a command that loaded the account
    before conflicts on its save, is retried on the erased state, and leaves no copy."""
    child = children(account, "slow-deposit")
    assert child.answer()["owner"] == OWNER  # loaded, inside the command

    forget(account)
    go(child)
    retried = child.answer()  # its save conflicted with the erasure: loaded again
    assert retried["owner"] == ERASED
    go(child)
    done = child.answer()
    assert done["balance"] == "13.50"
    assert done["owner"] == ERASED
    child.stop()
    assert child.popen.returncode == 0, child.stderr

    assert get_repository(BankAccount).load(account).owner == ERASED
    assert OWNER not in database_text()


def go(child: Child) -> None:
    child.popen.stdin.write("go\n")
    child.popen.stdin.flush()
