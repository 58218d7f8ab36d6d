"""The bank served as in production, on the test database: gunicorn, projection workers, clients.

Every process is a child in a process group of its own, writes its output to a log file in the
test's directory and is stopped (SIGTERM, then SIGKILL of its group) on the way out; on failure
`logs_shown_on_failure` prints the end of every log.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# The control socket would be one path (~/.gunicorn) shared with every other gunicorn here.
GUNICORN = ["--worker-class=gthread", "--workers=2", "--threads=4", "--no-control-socket"]
WORKERS = 2  # run_projections processes: one holds the leases, the other stands by
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
CLIENT_GRACE = 120.0  # beyond the clients' seconds: commands retried through an outage, reports
PROBE_INTERVAL = 0.1
SHOWN_OUTPUT = 4000


@dataclass
class Process:
    """A child process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], logs: Path) -> Process:
        log = logs / f"{name}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: gunicorn's workers go with it
            )
        return cls(name, popen, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stop_all(processes: list[Process]) -> None:
    """SIGTERM every process at once (a graceful stop for gunicorn and the workers), wait, then
    SIGKILL whatever is left of each one's group."""
    for process in processes:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait(STOP_TIMEOUT)


@dataclass
class Service:
    port: int
    server: Process
    workers: list[Process]

    def running(self) -> bool:
        return all(process.popen.poll() is None for process in (self.server, *self.workers))


@contextlib.contextmanager
def bank_service(logs: Path, token: str) -> Iterator[Service]:
    """Serve the bank with gunicorn and run the projection workers while the block runs.

    `token` is a teller's, for the readiness check.
    """
    env = production_environment()
    started: list[Process] = []
    try:
        port = free_port()
        address = [f"--bind={HOST}:{port}", "--graceful-timeout=10"]
        wsgi = "bankdemo.wsgi:application"
        server = Process.start(
            "gunicorn", [sys.executable, "-m", "gunicorn", *GUNICORN, *address, wsgi], env, logs
        )
        started.append(server)
        manage = [sys.executable, "manage.py", "run_projections", "--poll-interval", "1"]
        for number in range(WORKERS):
            started.append(Process.start(f"worker-{number}", manage, env, logs))
        wait_until_serving(server, port, token)
        yield Service(port, server, started[1:])
    finally:
        stop_all(started)


def production_environment() -> dict[str, str]:
    """The production settings on the test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bankdemo.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        # a load trial, not a flood: no throttle in the way
        "DJANGO_COMMAND_THROTTLE_RATE": "1000000/minute",
        "DJANGO_TOKEN_THROTTLE_RATE": "1000000/minute",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
    }


def database_url() -> str:
    """The URL of the database the tests run on (pytest-django's test database)."""
    settings = connection.settings_dict
    credentials = quote(settings["USER"] or "", safe="")
    if settings.get("PASSWORD"):
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host, port = settings["HOST"] or HOST, settings["PORT"] or "5432"
    return f"postgres://{credentials}@{host}:{port}/{quote(settings['NAME'], safe='')}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until_serving(server: Process, port: int, token: str) -> None:
    """Wait until an authenticated read answers 200."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.popen.returncode}")
        with contextlib.suppress(OSError):
            status, body = get(port, token, "/api/projections/")
            if status != 200:
                raise RuntimeError(f"gunicorn answered {status}: {body[:300]!r}")
            return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT:.0f} s")


def get(port: int, token: str, path: str) -> tuple[int, bytes]:
    """GET `path` as the token's user, through the TLS proxy a deployment has in front."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request(
            "GET", path, headers={"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Clients:
    """`soak_client` processes, one per token, started at once; stopped on the way out."""

    def __init__(
        self, port: int, tokens: list[str], logs: Path, *, seconds: float, retry_unavailable: bool
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
        self.processes: list[Process] = []
        self.reports: list[Path] = []
        try:
            for number, token in enumerate(tokens):
                report = logs / f"client-{number}.json"
                config = {
                    "port": port,
                    "token": token,
                    "seconds": seconds,
                    "seed": number,
                    "name": f"c{number}",
                    "report": str(report),
                    "retry_unavailable": retry_unavailable,
                }
                args = [sys.executable, "-m", "tests.reliability.soak_client", json.dumps(config)]
                self.processes.append(Process.start(f"client-{number}", args, env, logs))
                self.reports.append(report)
        except BaseException:
            self.stop()
            raise
        self.deadline = time.monotonic() + seconds + CLIENT_GRACE

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def join(self) -> list[dict]:
        """Wait for every client to finish; return their reports."""
        try:
            for process in self.processes:
                code = process.popen.wait(max(1.0, self.deadline - time.monotonic()))
                assert code == 0, f"{process.name} exited with {code}:\n{process.output()[-3000:]}"
            return [json.loads(report.read_text()) for report in self.reports]
        finally:
            self.stop()

    def stop(self) -> None:
        stop_all(self.processes)


class Probe:
    """Read the account list every PROBE_INTERVAL on a thread, noting each answer's time."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.answers: list[list] = []  # [wall time, seconds taken, status or error name]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT * 2)

    @property
    def failures(self) -> list[list]:
        return [answer for answer in self.answers if answer[2] != 200]

    def _run(self) -> None:
        while not self._stop.is_set():
            at, began = time.time(), time.monotonic()
            try:
                status, _ = get(self.port, self.token, "/api/accounts/?page_size=1")
            except OSError as exc:
                status = type(exc).__name__
            self.answers.append([at, time.monotonic() - began, status])
            self._stop.wait(PROBE_INTERVAL)


@contextlib.contextmanager
def logs_shown_on_failure(logs: Path) -> Iterator[None]:
    """Print the end of every process's output when the block fails."""
    try:
        yield
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            print(f"\n----- {log.name} (last {SHOWN_OUTPUT} characters) -----")
            print(log.read_text(errors="replace")[-SHOWN_OUTPUT:])
        raise


def check_logs(logs: Path) -> None:
    """No tracebacks, worker timeouts or gunicorn errors in any process's output."""
    for log in sorted(logs.glob("*.log")):
        text = log.read_text(errors="replace")
        for sign in ("Traceback", "WORKER TIMEOUT", "[ERROR]"):
            assert sign not in text, f"{log.name} shows {sign!r}:\n{text[-3000:]}"
