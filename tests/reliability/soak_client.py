"""One load client of the soak trials: a process that drives the bank's HTTP API and keeps score.

Run by tests/reliability/test_soak.py as `python -m tests.reliability.soak_client CONFIG`, where
CONFIG is a JSON object (port, token, seconds, seed, name, report, retry_unavailable). It opens
accounts, deposits, withdraws, transfers, closes and reads as a teller for `seconds`, every command
with a fresh `Idempotency-Key`, some of them sent twice on purpose, and writes its tally as JSON to
`report`: answers by status, every command the bank accepted (the money a test can then look for
in the store) and everything that was not as expected. Plain `http.client`, no Django: it is a
client like any other.

With `retry_unavailable` (the database-restart trial) a command that gets a 503 or no answer at all
is sent again with the same key until the bank answers it, so each command ends with exactly one
known outcome: applied once, or refused.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Answers the bank does not remember under an Idempotency-Key (bankdemo/api/idempotency.py).
RETRYABLE = frozenset({401, 403, 409, 429})
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 30.0
RETRY_PAUSE = 0.2
RESOLVE_GRACE = 60.0  # seconds after the run in which a retried command must get its answer
MAX_LISTED = 50  # unexpected answers kept in the report, per kind
# Errors that mean a kept-alive connection was closed by the server while idle (its keep-alive
# timeout): sent again once on a new connection, as HTTP clients do, and counted.
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)

# What each kind of request may answer (status, error code); anything else is a finding.
VERSION_CHECKS = {(409, "version_conflict"), (412, "version_mismatch")}
EXPECTED = {
    "open": {(201, None)},
    "deposit": {(200, None), (422, "account_closed")} | VERSION_CHECKS,
    "withdraw": {(200, None), (422, "insufficient_funds"), (422, "account_closed")}
    | VERSION_CHECKS,
    "close": {(200, None), (422, "balance_not_zero"), (422, "account_closed")} | VERSION_CHECKS,
    "transfer": {(202, None)},
    "transfer-same": {(422, "same_account")},
    "transfer-unknown": {(404, "not_found")},
    "key-reuse": {(422, "idempotency_key_reused")},
    "read": {(200, None)},
}
UNAVAILABLE = (503, "database_unavailable")
# How often each action is picked.
ACTIONS = {
    "deposit": 26,
    "withdraw": 18,
    "transfer": 18,
    "read": 22,
    "open": 5,
    "open_and_close": 2,
    "close": 3,
    "retry": 5,
    "reuse_key": 1,
}


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def data(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str | None:
        data = self.data
        return data.get("code") if isinstance(data, dict) and self.status >= 400 else None

    @property
    def replayed(self) -> bool:
        return self.headers.get("idempotent-replayed") == "true"


@dataclass
class Sent:
    """A command as sent, with the answer it got: what a deliberate retry repeats."""

    kind: str
    path: str
    payload: dict | None
    key: str
    if_match: int | None
    answer: Answer


@dataclass
class Account:
    currency: str
    version: int = 1
    closed: bool = False


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by kind
    # Commands the bank accepted: [kind, account, version, amount, currency].
    accepted: list[list] = field(default_factory=list)
    opened: list[list] = field(default_factory=list)  # [account, currency]
    transfers: list[str] = field(default_factory=list)
    # Answers that were not a success: [wall time, seconds taken, status or error name].
    failures: list[list] = field(default_factory=list)
    unexpected: list[dict] = field(default_factory=list)
    malformed: list[dict] = field(default_factory=list)  # error answers that are not clean JSON
    replays_checked: int = 0
    replay_mismatches: list[dict] = field(default_factory=list)
    resolved_by_retry: int = 0
    replayed_after_failure: int = 0
    unresolved: list[dict] = field(default_factory=list)
    reconnects: Counter = field(default_factory=Counter)

    def note(self, listing: list, entry: dict) -> None:
        if len(listing) < MAX_LISTED:
            listing.append(entry)

    def report(self, name: str) -> dict:
        return {
            "name": name,
            "requests": sum(self.statuses.values()),
            "statuses": dict(self.statuses),
            "by_kind": dict(self.by_kind),
            "latency": _percentiles([s for kind in self.latencies.values() for s in kind]),
            "latency_by_kind": {k: _percentiles(v) for k, v in sorted(self.latencies.items())},
            "accepted": self.accepted,
            "opened": self.opened,
            "transfers": self.transfers,
            "failures": self.failures,
            "unexpected": self.unexpected,
            "malformed": self.malformed,
            "replays_checked": self.replays_checked,
            "replay_mismatches": self.replay_mismatches,
            "resolved_by_retry": self.resolved_by_retry,
            "replayed_after_failure": self.replayed_after_failure,
            "unresolved": self.unresolved,
            "reconnects": dict(self.reconnects),
        }


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds) or [0.0]
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[int(len(ordered) * 0.99)],
        "max": ordered[-1],
    }


class Client:
    def __init__(self, config: dict) -> None:
        self.port = config["port"]
        self.token = config["token"]
        self.name = config["name"]
        self.seconds = config["seconds"]
        self.retry_unavailable = config["retry_unavailable"]
        self.rng = random.Random(config["seed"])
        self.tally = Tally()
        self.connection: http.client.HTTPConnection | None = None
        self.accounts: dict[str, Account] = {}
        self.others: dict[str, str] = {}  # accounts other clients opened: id -> currency
        self.sent: Sent | None = None
        self.opened_count = 0

    def run(self) -> dict:
        began = time.monotonic()
        self.deadline = began + self.seconds
        self.give_up_at = self.deadline + RESOLVE_GRACE
        for _ in range(3):
            self.open()
        actions, weights = zip(*ACTIONS.items(), strict=True)
        while time.monotonic() < self.deadline:
            getattr(self, self.rng.choices(actions, weights)[0])()
        if self.connection is not None:
            self.connection.close()
        return self.tally.report(self.name)

    # Requests

    def send(
        self, kind: str, method: str, path: str, payload=None, key=None, if_match=None
    ) -> Answer | None:
        """Send one request and record its answer; None when no answer came."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {
            "Authorization": f"Token {self.token}",
            "X-Forwarded-Proto": "https",  # what the TLS-terminating proxy sends
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        for attempt in (1, 2):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    HOST, self.port, timeout=REQUEST_TIMEOUT
                )
            at, began = time.time(), time.monotonic()
            try:
                self.connection.request(method, path, body, headers)
                response = self.connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                self.connection = None
                if reused and attempt == 1 and isinstance(exc, STALE_CONNECTION):
                    self.tally.reconnects[type(exc).__name__] += 1
                    continue
                self.tally.statuses[type(exc).__name__] += 1
                self.tally.failures.append([at, time.monotonic() - began, type(exc).__name__])
                return None
            seconds = time.monotonic() - began
            answer = Answer(response.status, data, {k.lower(): v for k, v in response.getheaders()})
            if response.will_close:
                self.connection.close()
                self.connection = None
            self.record(kind, answer, at, seconds, path)
            return answer
        raise AssertionError("unreachable")

    def record(self, kind: str, answer: Answer, at: float, seconds: float, path: str) -> None:
        tally = self.tally
        tally.statuses[str(answer.status)] += 1
        tally.by_kind[f"{kind} {answer.status}"] += 1
        tally.latencies.setdefault(kind, []).append(seconds)
        if answer.status >= 400 and not (
            answer.headers.get("content-type", "").startswith("application/json")
            and isinstance(answer.data, dict)
            and b"Traceback" not in answer.body
        ):
            tally.note(tally.malformed, self.shown(kind, answer, path))
        if answer.status >= 500:
            tally.failures.append([at, seconds, answer.status])
        outcome = (answer.status, answer.code)
        allowed = EXPECTED.get(kind, set()) | ({UNAVAILABLE} if self.retry_unavailable else set())
        if kind != "retry" and outcome not in allowed:
            tally.note(tally.unexpected, self.shown(kind, answer, path))

    def shown(self, kind: str, answer: Answer, path: str) -> dict:
        return {
            "kind": kind,
            "path": path,
            "status": answer.status,
            "content_type": answer.headers.get("content-type", ""),
            "body": answer.body[:300].decode(errors="replace"),
        }

    def command(
        self, kind: str, path: str, payload=None, *, if_match=None, key=None
    ) -> Answer | None:
        """POST a command (with a fresh key unless given); while the bank is unavailable, send
        it again with the same key."""
        key = key or uuid.uuid4().hex
        failed = False
        while True:
            answer = self.send(kind, "POST", path, payload, key, if_match)
            if answer is not None and answer.status != 503:
                if failed:
                    self.tally.resolved_by_retry += 1
                    self.tally.replayed_after_failure += answer.replayed
                self.sent = Sent(kind, path, payload, key, if_match, answer)
                return answer
            failed = True
            if not self.retry_unavailable or time.monotonic() > self.give_up_at:
                self.tally.unresolved.append({"kind": kind, "path": path, "payload": payload})
                return None
            time.sleep(RETRY_PAUSE)

    def read(self) -> None:
        choice = self.rng.random()
        account = self.rng.choice(list(self.accounts))
        if choice < 0.3:
            path = f"/api/accounts/{account}/"
        elif choice < 0.5:
            path = "/api/accounts/?page_size=200&status=open"
        elif choice < 0.7:
            path = f"/api/accounts/{account}/events/"
        elif choice < 0.8 and self.tally.transfers:
            path = f"/api/transfers/{self.rng.choice(self.tally.transfers)}/"
        elif choice < 0.9:
            path = f"/api/accounts/{account}/state/?version=1"
        else:
            path = "/api/projections/"
        answer = self.send("read", "GET", path)
        if answer is not None and answer.status == 200 and "page_size" in path:
            for row in answer.data["results"]:
                if row["id"] not in self.accounts:
                    self.others[row["id"]] = row["currency"]

    # Commands

    def open(self) -> str | None:
        self.opened_count += 1
        currency = "USD" if self.rng.random() < 0.15 else "EUR"
        payload = {"owner": f"soak {self.name} {self.opened_count}", "currency": currency}
        if self.rng.random() < 0.2:
            payload["overdraft_limit"] = "100.00"
        answer = self.command("open", "/api/accounts/", payload)
        if answer is None or answer.status != 201:
            return None
        account = answer.data["id"]
        self.accounts[account] = Account(currency, answer.data["version"])
        self.tally.opened.append([account, currency])
        return account

    def open_and_close(self) -> None:
        account = self.open()
        if account is not None:
            self.account_command("close", account, None)

    def deposit(self) -> None:
        self.account_command("deposit", self.pick(), self.amount(100, 20000))

    def withdraw(self) -> None:
        self.account_command("withdraw", self.pick(), self.amount(100, 30000))

    def close(self) -> None:
        self.account_command("close", self.pick(), None)

    def account_command(self, kind: str, account: str, amount: str | None) -> None:
        known = self.accounts[account]
        if_match = known.version if self.rng.random() < 0.15 else None
        payload = {"amount": amount} if amount is not None else {"reason": "soak: closing"}
        answer = self.command(kind, f"/api/accounts/{account}/{kind}/", payload, if_match=if_match)
        if answer is None:
            return
        if answer.status == 200:
            known.version = answer.data["version"]
            known.closed = known.closed or kind == "close"
            self.tally.accepted.append([kind, account, known.version, amount, known.currency])
        elif answer.status in (409, 412) and answer.data.get("current_version"):
            known.version = answer.data["current_version"]

    def transfer(self) -> None:
        source = self.pick()
        choice = self.rng.random()
        if choice < 0.04:
            kind, destination = "transfer-same", source
        elif choice < 0.07:
            kind, destination = "transfer-unknown", str(uuid.uuid4())
        else:
            kind = "transfer"
            pool = [a for a in (*self.accounts, *self.others) if a != source]
            if self.others and self.rng.random() < 0.4:
                pool = [a for a in self.others if a != source]
            destination = self.rng.choice(pool)
        payload = {
            "source_id": source,
            "destination_id": destination,
            "amount": self.amount(100, 25000),
        }
        answer = self.command(kind, "/api/transfers/", payload)
        if answer is not None and answer.status == 202:
            self.tally.transfers.append(answer.data["id"])

    def retry(self) -> None:
        """Send the last command again, key and all: the first answer must come back, unless
        it was one a retry may change (a lost race, a throttle), which is run anew."""
        first = self.sent
        if first is None:
            return
        answer = self.command(
            "retry", first.path, first.payload, if_match=first.if_match, key=first.key
        )
        self.sent = first
        if answer is None:
            return
        self.tally.replays_checked += 1
        if first.answer.status in RETRYABLE:
            replayed_as_it_should = not answer.replayed and answer.status < 500  # run anew
        else:
            replayed_as_it_should = (
                answer.replayed
                and answer.status == first.answer.status
                and answer.data == first.answer.data
            )
        if not replayed_as_it_should:
            self.tally.note(
                self.tally.replay_mismatches,
                {"first": self.shown(first.kind, first.answer, first.path)}
                | {"again": self.shown("retry", answer, first.path)},
            )

    def reuse_key(self) -> None:
        """Send another body under the last command's key: refused, nothing applied."""
        first = self.sent
        if first is None:
            return
        self.send(
            "key-reuse", "POST", first.path, {"amount": "0.01", "note": uuid.uuid4().hex}, first.key
        )

    def pick(self) -> str:
        if len(self.accounts) < 2:
            self.open()
        return self.rng.choice(list(self.accounts))

    def amount(self, low_cents: int, high_cents: int) -> str:
        cents = self.rng.randint(low_cents, high_cents)
        return f"{cents // 100}.{cents % 100:02d}"


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    report = Client(config).run()
    Path(config["report"]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
