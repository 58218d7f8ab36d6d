"""Management commands run as processes on the test database, to be SIGKILLed at any moment.

Each process connects under an application name of its own, so a trial can tell what its
connections were doing when it died: the process is frozen (SIGSTOP), its backends are read from
`pg_stat_activity`, then it is SIGKILLed, and the trial waits until PostgreSQL has ended those
backends (rolling back whatever they had open) before it looks at the database again.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from eventsourcing_app.models import ProjectionCheckpoint
from tests.reliability import fault_settings

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = fault_settings.EVENTSOURCING["LEASE_SECONDS"]
TAKEOVER_TIMEOUT = 30.0  # Django starting, then the dead process's lease lapsing
STOP_TIMEOUT = 30.0
SHOWN_OUTPUT = 4000


def database_url() -> str:
    """Return the test database as a DATABASE_URL for the processes."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    at = f"{credentials}@" if credentials else ""
    return f"postgres://{at}{db['HOST'] or '127.0.0.1'}{port}/{quote(db['NAME'], safe='')}"


@dataclass
class Process:
    """One `manage.py` process, its output file and the application name of its connections."""

    label: str
    popen: subprocess.Popen
    log: Path
    app_name: str
    started_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def owns(self, owner: str) -> bool:
        """Whether a checkpoint's owner is this process (workers and relays put the pid in)."""
        return re.search(rf":{self.pid}(:|$)", owner) is not None


@dataclass(frozen=True)
class Kill:
    """What a process was doing when it was killed."""

    label: str
    in_transaction: bool  # it had a write transaction open, which PostgreSQL rolled back
    leases_left: int  # leases it held when it died, for the next process to take over


class Fleet:
    """The processes of one trial: every one is killed on the way out, and on failure the
    output of each is printed."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.directory = directory
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "tests.reliability.fault_settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "PYTHONUNBUFFERED": "1",
            # The test run's master key (tests/settings.py): the children open what it sealed.
            "PERSONAL_DATA_KEY": os.environ["PERSONAL_DATA_KEY"],
            **env,
        }
        self.processes: list[Process] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait(STOP_TIMEOUT)
        if exc_type is not None:
            for process in self.processes:
                print(f"\n--- {process.label} (exit {process.popen.returncode}), output tail ---")
                print(process.output()[-SHOWN_OUTPUT:])

    def start(self, command: str, *args: str) -> Process:
        number = len(self.processes) + 1
        app_name = f"fault-{os.getpid()}-{number}"
        log = self.directory / f"{number:03d}-{command}.log"
        with log.open("w") as sink:
            popen = subprocess.Popen(
                [sys.executable, "manage.py", command, *args],
                cwd=ROOT,
                env={**self.env, "PGAPPNAME": app_name},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        process = Process(f"{command}#{number}", popen, log, app_name, time.monotonic())
        self.processes.append(process)
        return process

    def wait_for_lease(self, process: Process, names: list[str]) -> float:
        """Wait until `process` holds the lease of one of `names` (taken over from the process
        killed before it); return how long after its start."""
        deadline = process.started_at + TAKEOVER_TIMEOUT
        while time.monotonic() < deadline:
            owners = ProjectionCheckpoint.objects.filter(name__in=names).values_list("owner")
            if any(process.owns(owner) for (owner,) in owners):
                return time.monotonic() - process.started_at
            self.expect_running(process)
            time.sleep(0.02)
        raise AssertionError(f"{process.label} took over none of {names} in {TAKEOVER_TIMEOUT} s")

    def leases_left(self, process: Process, names: list[str]) -> int:
        """How many of `names` (dead) `process` still holds: a SIGKILL releases nothing."""
        owners = ProjectionCheckpoint.objects.filter(name__in=names).values_list("owner")
        return sum(process.owns(owner) for (owner,) in owners)

    def expect_running(self, process: Process) -> None:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.label} exited with {process.popen.returncode}")

    def freeze(self, process: Process) -> None:
        self.expect_running(process)
        os.kill(process.pid, signal.SIGSTOP)

    def thaw(self, process: Process) -> None:
        os.kill(process.pid, signal.SIGCONT)

    def kill(self, process: Process, names: list[str]) -> Kill:
        """SIGKILL `process` where it stands (or was frozen); return whether it died inside a
        transaction and how many leases on `names` it left behind."""
        self.freeze(process)
        try:
            time.sleep(0.02)  # let a statement already sent finish: its transaction stays open
            in_transaction = any(xid for (xid,) in self._backends(process, "backend_xid"))
        finally:
            process.popen.kill()
            process.popen.wait(STOP_TIMEOUT)
        self._wait_for_backends_to_end(process)
        return Kill(process.label, in_transaction, self.leases_left(process, names))

    def stop(self, process: Process) -> int:
        """Stop `process` as an operator would (SIGTERM); return its exit status."""
        process.popen.send_signal(signal.SIGTERM)
        status = process.popen.wait(STOP_TIMEOUT)
        self._wait_for_backends_to_end(process)
        return status

    def problems(self) -> list[str]:
        """Lines of any process's output that report an error."""
        return [
            f"{process.label}: {line}"
            for process in self.processes
            for line in process.output().splitlines()
            if " ERROR " in line or "Traceback" in line
        ]

    def _backends(self, process: Process, column: str) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {column} IS NOT NULL FROM pg_stat_activity WHERE application_name = %s",
                [process.app_name],
            )
            return cursor.fetchall()

    def _wait_for_backends_to_end(self, process: Process) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._backends(process, "pid"):
            if time.monotonic() > deadline:
                raise AssertionError(f"the connections of the dead {process.label} linger")
            time.sleep(0.02)
