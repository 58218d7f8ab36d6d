"""Deposits through the bank's HTTP API under gunicorn, against the same deposits without HTTP.

API row: `CLIENTS` clients, each a thread with its own keep-alive `http.client` connection and
its own account (opened through the API), POST `/api/accounts/<id>/deposit/` as a teller
(`Authorization: Token ...`, a fresh `Idempotency-Key` per request, `X-Forwarded-Proto: https`
as the TLS proxy in front of a deployment sets it) to gunicorn started with the production
settings (`DJANGO_DEBUG=0`). Its value is 2xx answers per second; p50/p99 latency go in the note.
Baseline: `CLIENTS` threads calling `services.account_deposit()`, the service the view calls,
each on its own Django connection and account: the store's cost of the same deposits with no
HTTP, authentication, idempotency record or DRF on top.

Run alone: `DATABASE_URL=postgres://.../<scratch db> python -m bench.api [--quick] [--compare]`.
Imports that need Django set up happen inside the functions that use them, so that `main()`
can set Django up first, as bench/run.py does.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from django.db import connection

from bench import report
from bench.environment import (
    PROJECT_ROOT,
    SETTINGS_MODULE,
    ensure_database,
    require_postgresql,
    setup_django,
)

CLIENTS = 8
ROUNDS = 3
HOST = "127.0.0.1"
TELLER = "bench-teller"
CURRENCY = "EUR"
AMOUNT = "10.00"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
BARE = f"bank deposit via services, {CLIENTS} threads"
API = f"API deposit over HTTP, {CLIENTS} clients"


@dataclass(frozen=True)
class ServerConfig:
    """How gunicorn serves the app: worker class, worker processes, threads per worker."""

    worker_class: str
    workers: int
    threads: int = 1

    def args(self) -> list[str]:
        return [
            f"--worker-class={self.worker_class}",
            f"--workers={self.workers}",
            f"--threads={self.threads}",
        ]

    def __str__(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}"


CORES = os.cpu_count() or 1
# The best of `CANDIDATES` on a 2-core machine (`--compare` measures them all): gthread workers
# keep connections alive and hold one request per thread, so 8 clients are served at once
# by two processes. Sync workers (gunicorn's documented start, 2 * cores + 1) close the
# connection after every answer and serve 5 at a time; they came out slowest.
SERVER = ServerConfig("gthread", CORES, 4)
CANDIDATES = (
    SERVER,
    ServerConfig("sync", 2 * CORES + 1),
    ServerConfig("gthread", 2 * CORES + 1, 2),
)


@dataclass
class Sample:
    """One timed run of a variant."""

    rate: float
    latencies: list[float] = field(default_factory=list)  # seconds, every request
    non_2xx: int = 0
    client_cpu: float = 0.0  # this process's CPU seconds per second of the run

    def percentile_ms(self, percent: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1] * 1000


class ServiceDepositor:
    """A writer for `WriterRun`: deposits through `services.account_deposit` to its account."""

    def open(self) -> None:
        from bankdemo import services

        self.deposit = services.account_deposit
        account, _ = services.account_open(owner="bench depositor", currency=CURRENCY)
        self.aggregate_id = account.id

    def step(self) -> int:
        self.deposit(account_id=self.aggregate_id, amount=AMOUNT)
        return 1

    def close(self) -> None:
        connection.close()


class ApiDepositor:
    """A writer for `WriterRun`: POSTs deposits to its account on one HTTP connection."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.latencies: list[float] = []
        self.non_2xx = 0

    def open(self) -> None:
        self.conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        status, body = self.post("/api/accounts/", {"owner": "bench client", "currency": CURRENCY})
        if status != 201:
            raise RuntimeError(f"opening an account answered {status}: {body[:300]!r}")
        self.path = f"/api/accounts/{json.loads(body)['id']}/deposit/"

    def step(self) -> int:
        began = time.perf_counter()
        status, body = self.post(self.path, {"amount": AMOUNT})
        self.latencies.append(time.perf_counter() - began)
        if status >= 500:
            raise RuntimeError(f"the server failed a deposit with {status}: {body[:300]!r}")
        if not 200 <= status < 300:
            self.non_2xx += 1
            return 0
        return 1

    def close(self) -> None:
        self.conn.close()

    def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        headers = api_headers(self.token) | {"Idempotency-Key": uuid.uuid4().hex}
        self.conn.request("POST", path, json.dumps(payload).encode(), headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def api_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "X-Forwarded-Proto": "https",  # what the TLS-terminating proxy of a deployment sends
    }


def run_writers(writers: list, seconds: float) -> Sample:
    """Run `writers` together for `seconds`; note this process's CPU time over the run."""
    from bench.writers import WriterRun

    cpu, began = time.process_time(), time.perf_counter()
    rate = WriterRun(writers, seconds).start().join()
    cpu_per_second = (time.process_time() - cpu) / (time.perf_counter() - began)
    return Sample(rate, client_cpu=cpu_per_second)


def bare_sample(seconds: float) -> Sample:
    return run_writers([ServiceDepositor() for _ in range(CLIENTS)], seconds)


def api_sample(port: int, token: str, seconds: float) -> Sample:
    clients = [ApiDepositor(port, token) for _ in range(CLIENTS)]
    sample = run_writers(clients, seconds)
    sample.latencies = [latency for client in clients for latency in client.latencies]
    sample.non_2xx = sum(client.non_2xx for client in clients)
    return sample


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_environment() -> dict[str, str]:
    """The production settings, on the benchmark's database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        # a load trial, not a flood: no throttle in the way
        "DJANGO_COMMAND_THROTTLE_RATE": "1000000/minute",
        "DJANGO_TOKEN_THROTTLE_RATE": "1000000/minute",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DATABASE_URL": os.environ["DATABASE_URL"],
    }


@contextlib.contextmanager
def gunicorn(config: ServerConfig, token: str) -> Iterator[int]:
    """Serve the app on a free port while the block runs; yield the port."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", *config.args(), f"--bind={HOST}:{port}"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*command, "bankdemo.wsgi:application"],
            cwd=PROJECT_ROOT,
            env=server_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(server, port, token, log)
            yield port
        finally:
            stop(server)


def wait_until_ready(server: subprocess.Popen, port: int, token: str, log) -> None:
    """Wait until an authenticated GET of the account list answers 200."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}:\n{tail(log)}")
        try:
            status = get_status(port, "/api/accounts/?page_size=1", token)
        except OSError:
            time.sleep(0.1)
            continue
        if status != 200:
            raise RuntimeError(f"gunicorn answered {status} to the account list:\n{tail(log)}")
        return
    raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT:.0f} s:\n{tail(log)}")


def get_status(port: int, path: str, token: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers=api_headers(token))
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def tail(log, size: int = 3000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-size:]


def stop(server: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful stop), then wait; kill only if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def create_teller() -> str:
    """Create the user `TELLER` in the tellers group (replacing a leftover); return its token."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from bankdemo.api.permissions import TELLERS

    remove_teller()
    user = User.objects.create_user(TELLER, password=secrets.token_urlsafe(16))
    user.groups.add(Group.objects.get_or_create(name=TELLERS)[0])
    return Token.objects.create(user=user).key


def remove_teller() -> None:
    """Delete `TELLER`; its token and idempotency keys go with it."""
    from django.contrib.auth.models import User

    User.objects.filter(username=TELLER).delete()


def tidy_bank(info: str) -> None:
    """Empty the inline bank read models and delete account snapshots (events go elsewhere)."""
    from bankdemo.domain import BankAccount
    from bankdemo.models import AccountBalance, LedgerEntry
    from bench.scratch import admin_connection
    from eventsourcing_app.backends.snapshots import DjangoSnapshotStore

    tables = ", ".join(model._meta.db_table for model in (AccountBalance, LedgerEntry))
    with admin_connection(info) as conn:
        conn.execute(f"TRUNCATE {tables}")
    DjangoSnapshotStore().purge(BankAccount.type_name)


def api_name(config: ServerConfig, compare: bool) -> str:
    return f"{API}, {config}" if compare else API


def measure(
    info: str, seconds: float, warmup_seconds: float, servers: Sequence[ServerConfig]
) -> dict[str, list[Sample]]:
    """Warm every variant up, then run them `ROUNDS` times, interleaved: bare, API, bare, ..."""
    tidy_bank(info)
    token = create_teller()
    try:
        with contextlib.ExitStack() as stack:
            variants: dict[str, Callable[[float], Sample]] = {BARE: bare_sample}
            for config in servers:
                port = stack.enter_context(gunicorn(config, token))
                variants[api_name(config, len(servers) > 1)] = functools.partial(
                    api_sample, port, token
                )
            for sample in variants.values():
                sample(warmup_seconds)
            samples: dict[str, list[Sample]] = {name: [] for name in variants}
            for _ in range(ROUNDS):
                for name, sample in variants.items():
                    samples[name].append(sample(seconds))
            return samples
    finally:
        remove_teller()
        tidy_bank(info)


def api_rows(name: str, config: ServerConfig, samples: list[Sample]) -> list[dict]:
    """The throughput row against the bare row, and its p50 and p99 latency rows."""
    p50 = [sample.percentile_ms(50) for sample in samples]
    p99 = [sample.percentile_ms(99) for sample in samples]
    row = report.summarise(name, [sample.rate for sample in samples], BARE)
    cpu = statistics.median(sample.client_cpu for sample in samples)
    row["note"] = (
        f"{config}; p50 {statistics.median(p50):.1f} ms, p99 {statistics.median(p99):.1f} ms; "
        f"non-2xx {sum(sample.non_2xx for sample in samples)}; client CPU {cpu:.0%} of a core"
    )
    return [
        row,
        report.summarise(f"{name}: p50 latency", p50, None, "ms"),
        report.summarise(f"{name}: p99 latency", p99, None, "ms"),
    ]


def rows(
    info: str, seconds: float, warmup_seconds: float, servers: Sequence[ServerConfig] = (SERVER,)
) -> list[dict]:
    """Measure the bare deposits and the API deposits under each of `servers`; return rows."""
    samples = measure(info, seconds, warmup_seconds, servers)
    bare = report.summarise(BARE, [sample.rate for sample in samples[BARE]], None)
    cpu = statistics.median(sample.client_cpu for sample in samples[BARE])
    bare["note"] = f"services.account_deposit; process CPU {cpu:.0%} of a core"
    result = [bare]
    for config in servers:
        name = api_name(config, len(servers) > 1)
        result += api_rows(name, config, samples[name])
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s runs instead of 3 s")
    parser.add_argument(
        "--compare", action="store_true", help="measure every candidate gunicorn configuration"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_postgresql()
    ensure_database()
    setup_django()
    from bench import scratch

    info = scratch.conninfo()
    scratch.prepare(info)
    try:
        result = rows(
            info,
            seconds=1.0 if args.quick else 3.0,
            warmup_seconds=0.2 if args.quick else 0.5,
            servers=CANDIDATES if args.compare else (SERVER,),
        )
    finally:
        scratch.tidy_up(info)
    report.add_ratios(result)
    print(report.table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
