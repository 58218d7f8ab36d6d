"""Connections to PostgreSQL stay within the pool's bounds under any server.

Each process keeps a pool of at most DJANGO_DB_POOL_MAX connections. The development server
starts a thread per request; with a persistent connection per thread it once opened 86
connections for 8 clients and ran the server out of slots (503s). Here 12 clients read and
write at once through runserver and through gunicorn (2 processes) while the test counts the
database's sessions.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time

import psycopg
import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from eventsourcing_app.backends.postgresql import ANNOUNCER_NAME
from tests.helpers import raw_connection, requires_postgresql
from tests.reliability.served import (
    HOST,
    Process,
    free_port,
    production_environment,
    stop_all,
    wait_until_serving,
)

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]
POOL_MAX = 3
CLIENTS = 12
SECONDS = 4.0
SERVERS = {
    "runserver": (1, ["manage.py", "runserver", "--noreload"]),
    "gunicorn": (
        2,
        ["-m", "gunicorn", "--worker-class=gthread", "--workers=2", "--threads=8",
         "--no-control-socket", "bankdemo.wsgi:application"],
    ),
}  # fmt: skip


def teller_token() -> str:
    user = User.objects.create_user("pool-teller", password="x")
    user.groups.add(Group.objects.get_or_create(name="tellers")[0])
    return Token.objects.create(user=user).key


def sessions_counter() -> tuple[psycopg.Connection, callable]:
    watcher = raw_connection(autocommit=True)

    def count() -> tuple[int, int]:
        """Sessions from the pools, and the processes' NOTIFY senders (one each at most)."""
        return watcher.execute(
            "SELECT count(*) FILTER (WHERE application_name IS DISTINCT FROM %s), "
            "count(*) FILTER (WHERE application_name = %s) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'",
            [ANNOUNCER_NAME, ANNOUNCER_NAME],
        ).fetchone()

    return watcher, count


def client(port: int, token: str, stop: threading.Event, statuses: list[int]) -> None:
    headers = {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https",
               "Content-Type": "application/json"}  # fmt: skip
    while not stop.is_set():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)  # a new one: a new thread
        try:
            conn.request("POST", "/api/accounts/", json.dumps({"owner": "Ada", "currency": "EUR"}),
                         headers)  # fmt: skip
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            conn.request("GET", "/api/accounts/?limit=5", headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            conn.close()


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_connections_stay_within_the_pool_under_concurrent_clients(server, tmp_path):
    processes, args = SERVERS[server]
    token = teller_token()
    env = {**production_environment(), "DJANGO_DB_POOL_MAX": str(POOL_MAX)}
    port = free_port()
    address = [f"{HOST}:{port}"] if server == "runserver" else [f"--bind={HOST}:{port}"]
    watcher, count = sessions_counter()
    ours = count()  # this test's own sessions
    served = Process.start(server, [sys.executable, *args, *address], env, tmp_path)
    stop, statuses, peak, announcers = threading.Event(), [], 0, 0
    try:
        wait_until_serving(served, port, token)
        clients = [
            threading.Thread(target=client, args=(port, token, stop, statuses), daemon=True)
            for _ in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            pooled, senders = count()
            peak = max(peak, pooled - ours[0])
            announcers = max(announcers, senders - ours[1])
            time.sleep(0.02)
        stop.set()
        for thread in clients:
            thread.join(30)
    finally:
        stop_all([served])
        watcher.close()
    assert len(statuses) > CLIENTS  # the clients were served, concurrently
    assert [status for status in statuses if status >= 500] == [], served.output()[-3000:]
    assert set(statuses) <= {200, 201}
    assert 0 < peak <= processes * POOL_MAX
    assert announcers <= processes
