"""The ledger (RFC 9162 Merkle tree over the log): sealing rate, proof latency, sealing memory.

The log is filled to N events fast, in SQL (`INSERT ... SELECT FROM generate_series`, 100,000
rows a transaction): streams of 1000 events, a small JSON payload and metadata, and 64-hex
hashes (two md5s), which is all the ledger reads of an event besides its position. Then, at
N / 10 and at N events, in rounds rotated as everywhere else:

- `seal_now()` seals the whole log from an empty ledger, in a child process of its own, as
  `manage.py ledger_digest` runs it: events/s over the call, and the child's peak RSS (`VmHWM`;
  its peak after `django.setup()` in the note). The baseline is the store's append rate
  (`store append 100/call, 1 writer`), so the ratio says how many times faster the ledger seals
  than the log grows. Targets: 20,000 events/s at N, and the peak at N within 1.3 times the
  one at N / 10.
- pymerkle 7.0.0 (RFC 9162, pluggable storage), the peer, appends the same leaves (each event's
  `hash` as ASCII, so its leaves and root are ours) in a child of its own, into `SqliteTree` (a
  fresh SQLite file) and into `InmemoryTree`: leaves/s of `append_entries()` (reading the
  hashes from PostgreSQL, 50,000 a chunk, is left out; its time is in the note), and peak RSS.
  Their roots must equal the digest's: a run stops otherwise.

At N the proofs, through the app's own functions (every database round trip included):
`inclusion_proof(position, N)` of random sealed events and `consistency_proof(m, n)` of random
pairs, `OURS_PROOFS` a round each, every proof checked against the tree's roots afterwards;
p50 and p99 of each round, target 20 ms. Beside them pymerkle's proofs over the same leaves:
its `SqliteTree` (the file the last append round left) with the subroot cache cleared before
each proof (what a process that just started pays; the lead's "~500 ms at 1,000,000") and
then the same proof again (its cache then holds every subroot of 128 leaves or more that the
proof needs: its best case), and pymerkle over our own `ledger_leaves` table on PostgreSQL, a
read-only backend of a dozen lines (`PostgresLeaves`: the storage the project would plug in),
cache cleared. `PEER_PROOFS` a round each (they take up to seconds at 1,000,000).

Run alone: `DATABASE_URL=postgres://.../<scratch db> python -m bench.ledger [--events N]
[--quick]`. Imports that need Django set up happen inside the functions that use
them, so that `main()` can set Django up first, as bench/run.py does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from bench import report
from bench.environment import PROJECT_ROOT, SETTINGS_MODULE, standalone

DEFAULT_EVENTS = 200_000
ROUNDS = 3
FILL_CHUNK = 100_000  # events per fill transaction
PEER_CHUNK = 50_000  # hashes per pymerkle append_entries() call
OURS_PROOFS = 200  # per round and kind
PEER_PROOFS = 5  # per round, kind and pymerkle variant
SEED = 9162
KIB = 1024
SEAL_RATE_TARGET = 20_000  # events/s, the issue's
PROOF_TARGET_MS = 20.0
MEMORY_TARGET = 1.3
PYMERKLE = "pymerkle==7.0.0"
LEDGER_TABLES = "ledger_leaves, ledger_nodes, ledger_digests"

FILL_SQL = """
INSERT INTO events (aggregate_id, aggregate_type, event_type, version, schema_version,
    event_data, metadata, created_at, hash, previous_hash)
SELECT md5('bench-ledger-' || (g / 1000))::uuid, %s, %s, g %% 1000 + 1, 1,
    jsonb_build_object('n', g, 'amount', '10.00'),
    jsonb_build_object('user_id', 'bench-ledger', 'correlation_id', md5('c' || g)::uuid::text),
    timestamptz '2025-01-01' + g * interval '1 second',
    md5(g::text) || md5(g::text || '/'),
    CASE WHEN g %% 1000 = 0 THEN repeat('0', 64) ELSE md5((g - 1)::text)
        || md5((g - 1)::text || '/') END
FROM generate_series(%s::bigint, %s::bigint) AS g
"""

# Every child gets `peak_kib()`, its own peak RSS in KiB: VmHWM, which starts afresh with the
# exec'd program, where ru_maxrss would start at the parent's RSS (Linux carries it over fork
# and exec).
PEAK = """
import resource
def peak_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
# Run in a child: seal the whole log as `manage.py ledger_digest` does, then one JSON line.
SEAL_CHILD = """
import json, time
import django
django.setup()
from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.wiring import get_event_store
before = peak_kib()
began = time.perf_counter()
digest = seal_now(get_event_store())
seconds = time.perf_counter() - began
peak = peak_kib()
print(json.dumps({"seconds": seconds, "leaves": digest.tree_size, "root": digest.root_hash,
                  "before_kib": before, "max_rss_kib": peak}))
"""
# Run in a child: pymerkle appends the log's hashes (argv: kind, conninfo, SQLite file, chunk).
PEER_CHILD = """
import json, sys, time
import psycopg
from pymerkle import InmemoryTree, SqliteTree
kind, info, path, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tree = SqliteTree(path) if kind == "SqliteTree" else InmemoryTree()
before = peak_kib()
appending = reading = 0.0
with psycopg.connect(info) as conn, conn.cursor(name="bench_ledger_hashes") as cursor:
    cursor.itersize = chunk
    began = time.perf_counter()
    cursor.execute("SELECT hash FROM events ORDER BY transaction_id, id")
    while rows := cursor.fetchmany(chunk):
        entries = [row[0].encode("ascii") for row in rows]
        read = time.perf_counter()
        tree.append_entries(entries)
        appended = time.perf_counter()
        reading += read - began
        appending += appended - read
        began = appended
peak = peak_kib()
print(json.dumps({"seconds": appending, "reading": reading, "leaves": tree.get_size(),
                  "root": tree.get_root().hex(), "before_kib": before, "max_rss_kib": peak}))
"""
IMPORTS_CHILD = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
drivers = {"sqlite3", "_sqlite3", "psycopg", "psycopg2", "django"}
print(json.dumps(sorted(drivers & {name.split(".")[0] for name in sys.modules})))
"""


def pymerkle_version() -> str | None:
    """Return the installed pymerkle's version, or None."""
    try:
        import pymerkle
    except ImportError:
        return None
    return pymerkle.__version__


def pymerkle_missing() -> str | None:
    """Return why pymerkle cannot be measured, or None when it can."""
    try:
        import pymerkle
    except ImportError as exc:
        return f"pymerkle not installed ({exc}): pip install {PYMERKLE} (bench/requirements.txt)"
    if pymerkle.__version__ != PYMERKLE.split("==")[1]:
        return f"pymerkle {pymerkle.__version__} installed, the bench pins {PYMERKLE}"
    return None


# --- the log and the ledger tables ---------------------------------------------------------


def fill_log(info: str, total: int) -> None:
    """Add generated events until the log holds `total` (it holds only these, or nothing)."""
    from bench.rounds import progress
    from bench.scratch import AGGREGATE_TYPE, EVENT_TYPE, admin_connection

    with admin_connection(info) as conn:
        have = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if have >= total:
            return
        began = time.perf_counter()
        progress(f"ledger: filling the log {have:,} -> {total:,} events in SQL")
        for start in range(have, total, FILL_CHUNK):
            stop = min(start + FILL_CHUNK, total) - 1
            conn.execute(FILL_SQL, [AGGREGATE_TYPE, EVENT_TYPE, start, stop])
        conn.execute("VACUUM (ANALYZE) events")
        progress(f"ledger: {total:,} events in {time.perf_counter() - began:.0f} s")


def empty_ledger(info: str) -> None:
    """Empty the ledger's tables and forget its checkpoint (the bench's database only)."""
    from bench.scratch import admin_connection

    with admin_connection(info) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL eventsourcing.allow_truncate = 'on'")
            conn.execute(f"TRUNCATE {LEDGER_TABLES}")
        conn.execute("DELETE FROM projection_checkpoints WHERE name = 'ledger'")


def tidy_up(info: str) -> None:
    """Leave no ledger rows behind (the suite empties the events table itself)."""
    empty_ledger(info)


@contextlib.contextmanager
def signing(folder: Path) -> Iterator[None]:
    """A fresh signing key and a digest folder of the run's own, in this process and children."""
    from eventsourcing_app.ledger import digests

    values = {
        "LEDGER_SIGNING_KEY": digests.generate_private_key_pem().decode(),
        "LEDGER_DIGEST_DIR": str(folder / "digests"),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- sealing and appending, in child processes ---------------------------------------------


def child(code: str, *args: str) -> dict:
    """Run `code` in a child with the bench's settings; return the JSON of its last line."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE, "DJANGO_DEBUG": "0"}
    finished = subprocess.run(
        [sys.executable, "-c", PEAK + code, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"a ledger bench child failed:\n{finished.stderr.strip()}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def seal_once(info: str, events: int) -> dict:
    empty_ledger(info)
    result = child(SEAL_CHILD)
    if result["leaves"] != events:
        raise RuntimeError(f"seal_now sealed {result['leaves']} events, not {events}")
    return result


def peer_once(info: str, kind: str, folder: Path, events: int) -> dict:
    """Let pymerkle append the log's hashes; a SqliteTree's file stays for the proofs."""
    path = sqlite_file(folder)
    if kind == "SqliteTree":
        path.unlink(missing_ok=True)
    result = child(PEER_CHILD, kind, info, str(path), str(PEER_CHUNK))
    if result["leaves"] != events:
        raise RuntimeError(f"pymerkle {kind} appended {result['leaves']} leaves, not {events}")
    return result


def sqlite_file(folder: Path) -> Path:
    return folder / "pymerkle.sqlite3"


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], dict]


def run_rounds(jobs: list[Job], rounds: int, label: str) -> dict[str, list[dict]]:
    """Run every job once a round, in an order that rotates from round to round."""
    from bench.rounds import progress

    results: dict[str, list[dict]] = {job.name: [] for job in jobs}
    for number in range(rounds):
        progress(f"{label} {number + 1}/{rounds}")
        shift = number % len(jobs)
        for job in jobs[shift:] + jobs[:shift]:
            results[job.name].append(job.run())
    return results


def seal_name(size: int) -> str:
    return f"ledger seal_now, log of {size:,}"


def seal_memory_name(size: int) -> str:
    return f"ledger seal_now peak memory, log of {size:,}"


def peer_name(kind: str, size: int) -> str:
    return f"pymerkle {kind} append_entries, {size:,} leaves"


def peer_memory_name(kind: str, size: int) -> str:
    return f"pymerkle {kind} peak memory, {size:,} leaves"


def size_rows(
    info: str, size: int, smaller: int | None, rounds: int, folder: Path, peer: bool
) -> list[dict]:
    """Fill the log to `size`; seal it (and let pymerkle append it) over rounds; rows."""
    fill_log(info, size)
    jobs = [Job("ours", lambda: seal_once(info, size))]
    kinds = ("SqliteTree", "InmemoryTree") if peer else ()
    jobs += [Job(kind, lambda kind=kind: peer_once(info, kind, folder, size)) for kind in kinds]
    results = run_rounds(jobs, rounds, f"ledger: sealing {size:,} events, round")
    roots = {name: {result["root"] for result in done} for name, done in results.items()}
    if len(set().union(*roots.values())) != 1:
        raise RuntimeError(f"the roots of {size:,} leaves differ: {roots}")
    ours = results["ours"]
    rates = [size / r["seconds"] for r in ours]
    seal = report.summarise(seal_name(size), rates, append_name())
    seal["note"] = "seconds: " + ", ".join(f"{r['seconds']:.1f}" for r in ours)
    rows = [seal, memory_row(seal_memory_name(size), ours, smaller and seal_memory_name(smaller))]
    for kind in kinds:
        done = results[kind]
        row = report.summarise(
            peer_name(kind, size), [size / r["seconds"] for r in done], seal_name(size)
        )
        reading = statistics.median(r["reading"] for r in done)
        row["note"] = f"leaves/s; reading the hashes from PostgreSQL, not counted: {reading:.1f} s"
        rows.append(row)
        baseline = smaller and peer_memory_name(kind, smaller)
        rows.append(memory_row(peer_memory_name(kind, size), done, baseline))
    return rows


def memory_row(name: str, results: list[dict], baseline: str | None) -> dict:
    row = report.summarise(name, [r["max_rss_kib"] / KIB for r in results], baseline, unit="MiB")
    before = statistics.median(r["before_kib"] for r in results) / KIB
    row["note"] = f"the child's peak RSS (VmHWM); {before:.0f} MiB before the work"
    return row


# --- proofs ----------------------------------------------------------------------------------


class Sample(NamedTuple):
    milliseconds: list[float]
    proofs: list  # what to check afterwards


def timed(calls: list[Callable[[], object]]) -> Sample:
    times, answers = [], []
    for call in calls:
        began = time.perf_counter()
        answers.append(call())
        times.append((time.perf_counter() - began) * 1000)
    return Sample(times, answers)


def random_leaves(size: int, count: int, rng: random.Random) -> list[tuple[int, object]]:
    """Return `count` random (leaf index, position) of the sealed tree."""
    from eventsourcing_app.core.records import Position
    from eventsourcing_app.ledger.tree import LedgerTree

    tree = LedgerTree()
    indexes = [rng.randrange(size) for _ in range(count)]
    found = {}
    for index in set(indexes):
        leaf = tree.leaves(index - 1, 1)[0]
        found[index] = Position(leaf.position.transaction, leaf.position.id)
    return [(index, found[index]) for index in indexes]


def random_pairs(size: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    return [tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(count)]


def check_ours(size: int, inclusions: Sample, consistencies: Sample) -> None:
    """Check every proof the app gave against the stored tree's roots, as a verifier would."""
    from eventsourcing_app.ledger import merkle
    from eventsourcing_app.ledger.tree import LedgerTree

    tree = LedgerTree()
    root = tree.root(size)
    for proof in inclusions.proofs:
        path = [bytes.fromhex(value) for value in proof["audit_path"]]
        leaf = bytes.fromhex(proof["leaf_hash"])
        if not merkle.verify_inclusion(proof["leaf_index"], size, leaf, path, root):
            raise RuntimeError(f"inclusion proof of leaf {proof['leaf_index']} does not verify")
    for proof in consistencies.proofs:
        first, second = proof["first"], proof["second"]
        path = [bytes.fromhex(value) for value in proof["path"]]
        if not merkle.verify_consistency(first, second, path, tree.root(first), tree.root(second)):
            raise RuntimeError(f"consistency proof {first} -> {second} does not verify")


def postgres_leaves(info: str):
    """pymerkle over our `ledger_leaves` on PostgreSQL: the storage the project would plug in."""
    import psycopg
    from pymerkle import BaseMerkleTree

    class PostgresLeaves(BaseMerkleTree):
        """Read-only: the leaves are the ones the ledger sealed (the same leaf hashes)."""

        def __init__(self) -> None:
            self.conn = psycopg.connect(info, autocommit=True)
            super().__init__("sha256")

        def _encode_entry(self, data: bytes) -> bytes:
            return data

        def _store_leaf(self, data: bytes, digest: bytes) -> int:
            raise NotImplementedError("the ledger's sealer writes ledger_leaves")

        def _get_leaf(self, index: int) -> bytes:
            sql = "SELECT hash FROM ledger_leaves WHERE leaf_index = %s"
            return self.conn.execute(sql, [index - 1], binary=True).fetchone()[0]

        def _get_leaves(self, offset: int, width: int) -> list[bytes]:
            sql = (
                "SELECT hash FROM ledger_leaves WHERE leaf_index >= %s AND leaf_index < %s "
                "ORDER BY leaf_index"
            )
            rows = self.conn.execute(sql, [offset, offset + width], binary=True).fetchall()
            return [row[0] for row in rows]

        def _get_size(self) -> int:
            sql = "SELECT coalesce(max(leaf_index) + 1, 0) FROM ledger_leaves"
            return self.conn.execute(sql).fetchone()[0]

        def close(self) -> None:
            self.conn.close()

    return PostgresLeaves()


def cold(tree, prove: Callable[[], object]) -> Callable[[], object]:
    def call():
        tree.cache_clear()
        return prove()

    return call


def proof_rows(info: str, size: int, rounds: int, folder: Path, peer: bool) -> list[dict]:
    """Time the app's proofs at `size` (and pymerkle's over the same leaves) over rounds."""
    from bench.rounds import progress
    from eventsourcing_app.ledger.proofs import consistency_proof, inclusion_proof

    rng = random.Random(SEED)
    sqlite = pg = None
    if peer:
        from pymerkle import SqliteTree

        sqlite, pg = SqliteTree(str(sqlite_file(folder))), postgres_leaves(info)
    samples: dict[str, list[Sample]] = {}

    def ours_inclusion() -> None:
        leaves = random_leaves(size, OURS_PROOFS, rng)
        calls = [lambda p=position: inclusion_proof(p, size) for _, position in leaves]
        samples.setdefault("ours inclusion", []).append(timed(calls))

    def ours_consistency() -> None:
        pairs = random_pairs(size, OURS_PROOFS, rng)
        calls = [lambda p=pair: consistency_proof(*p) for pair in pairs]
        samples.setdefault("ours consistency", []).append(timed(calls))

    def sqlite_proofs(kind: str) -> None:
        first, again = [], []
        for _ in range(PEER_PROOFS):
            if kind == "inclusion":
                index = rng.randrange(size) + 1
                prove = lambda index=index: sqlite.prove_inclusion(index, size)  # noqa: E731
            else:
                pair = random_pairs(size, 1, rng)[0]
                prove = lambda pair=pair: sqlite.prove_consistency(*pair)  # noqa: E731
            first += timed([cold(sqlite, prove)]).milliseconds
            again += timed([prove]).milliseconds
        samples.setdefault(f"sqlite {kind} cold", []).append(Sample(first, []))
        samples.setdefault(f"sqlite {kind} again", []).append(Sample(again, []))

    def pg_proofs(kind: str) -> None:
        if kind == "inclusion":
            indexes = [rng.randrange(size) + 1 for _ in range(PEER_PROOFS)]
            calls = [cold(pg, lambda i=i: pg.prove_inclusion(i, size)) for i in indexes]
        else:
            pairs = random_pairs(size, PEER_PROOFS, rng)
            calls = [cold(pg, lambda p=p: pg.prove_consistency(*p)) for p in pairs]
        samples.setdefault(f"pg {kind} cold", []).append(Sample(timed(calls).milliseconds, []))

    jobs = [ours_inclusion, ours_consistency]
    if peer:
        jobs += [
            lambda: sqlite_proofs("inclusion"),
            lambda: sqlite_proofs("consistency"),
            lambda: pg_proofs("inclusion"),
            lambda: pg_proofs("consistency"),
        ]
    try:
        for job in jobs:  # warm-up: connections, prepared statements, the OS's page cache
            job()
        samples.clear()
        for number in range(rounds):
            progress(f"ledger: proofs over {size:,} leaves, round {number + 1}/{rounds}")
            shift = number % len(jobs)
            for job in jobs[shift:] + jobs[:shift]:
                job()
    finally:
        if peer:
            sqlite.close()
            pg.close()
    for inclusions, consistencies in zip(
        samples["ours inclusion"], samples["ours consistency"], strict=True
    ):
        check_ours(size, inclusions, consistencies)
    return latency_rows(size, samples, peer)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def latency_rows(size: int, samples: dict[str, list[Sample]], peer: bool) -> list[dict]:
    rows = []
    for kind, function in (("inclusion", "inclusion_proof"), ("consistency", "consistency_proof")):
        ours = samples[f"ours {kind}"]
        name = f"ledger {function}, tree of {size:,}"
        count = sum(len(sample.milliseconds) for sample in ours)
        for label, share in (("p50", 0.5), ("p99", 0.99)):
            row = report.summarise(
                f"{name}: {label}",
                [percentile(sample.milliseconds, share) for sample in ours],
                None,
                unit="ms",
            )
            row["note"] = f"{label} of each round's {OURS_PROOFS}; {count} proofs, all verified"
            rows.append(row)
        if not peer:
            continue
        method = "prove_inclusion" if kind == "inclusion" else "prove_consistency"
        for key, label in (
            (f"sqlite {kind} cold", f"pymerkle SqliteTree {method}, cache cleared"),
            (f"sqlite {kind} again", f"pymerkle SqliteTree {method}, the same proof again"),
            (f"pg {kind} cold", f"pymerkle on ledger_leaves (PostgreSQL) {method}, cache cleared"),
        ):
            done = samples[key]
            every = [value for sample in done for value in sample.milliseconds]
            row = report.summarise(
                f"{label}, {size:,} leaves: p50",
                [statistics.median(sample.milliseconds) for sample in done],
                f"{name}: p50",
                unit="ms",
            )
            row["note"] = f"max of all {len(every)}: {max(every):.1f} ms; time ratio"
            rows.append(row)
    return rows


def import_row() -> dict:
    """Which database drivers a verifier's import loads: pymerkle's, and the offline verifier."""
    loaded = {
        module: child(IMPORTS_CHILD, module)
        for module in ("pymerkle.proof", "eventsourcing_app.ledger.offline")
    }
    note = "; ".join(
        f"import {module} loads {', '.join(found) or 'no database driver'}"
        for module, found in loaded.items()
    )
    return report.check_row("verifier imports", note)


# --- the whole measurement -------------------------------------------------------------------


def append_name() -> str:
    """The suite's row of the store's append rate, `BATCH` events a call: the seal's baseline."""
    from bench.rounds import BATCH

    return f"store append {BATCH}/call, 1 writer"


def append_rows(rounds: int) -> list[dict]:
    """The store's append rate as the suite measures it, for a run of this module alone."""
    from bench.rounds import BATCH, DEFAULT, Variant, measure, summarise_variant, writers
    from bench.writers import StoreWriter

    variants = [Variant(append_name(), writers(lambda: StoreWriter(BATCH), 1))]
    config = dataclasses.replace(DEFAULT, name="ledger", rounds=rounds)
    samples = measure(variants, config, "ledger: append round")
    return [summarise_variant(variant, samples) for variant in variants]


def rows(info: str, events: int, rounds: int = ROUNDS) -> list[dict]:
    """Seal a log of events / 10 and of `events`, time proofs at `events`; rows, no ratios.

    The seal rows' baseline is the suite's append row (`append_name()`); `append_rows`
    measures it for a run of this module alone.
    """
    from bench.rounds import progress
    from bench.scratch import admin_connection, empty

    missing = pymerkle_missing()
    if missing:
        progress(f"ledger: {missing}; the pymerkle rows are left out")
    folder = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    with admin_connection(info) as conn:
        empty(conn)
    try:
        with signing(folder):
            small = max(events // 10, 1)
            result = size_rows(info, small, None, rounds, folder, missing is None)
            result += size_rows(info, events, small, rounds, folder, missing is None)
            result += proof_rows(info, events, rounds, folder, missing is None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        empty_ledger(info)
        with admin_connection(info) as conn:
            empty(conn)
    if missing:
        result.append(report.check_row("pymerkle rows", f"not measured: {missing}"))
    else:
        result.append(import_row())
    return result


def add_targets(rows: list[dict]) -> None:
    """The issue's targets: sealing rate and proof times in absolute terms, memory by ratio."""
    for row in rows:
        name = row["variant"]
        if name.startswith("ledger seal_now, log of") and row["baseline"] == append_name():
            row["target"] = f">= {SEAL_RATE_TARGET:,} events/s"
            row["met"] = row["value"] >= SEAL_RATE_TARGET
            if row["ratio"] is not None:
                row["note"] += f"; {row['ratio']:.1f} times the append rate"
        elif name.startswith(("ledger inclusion_proof", "ledger consistency_proof")):
            row["target"] = f"<= {PROOF_TARGET_MS:g} ms"
            row["met"] = row["value"] <= PROOF_TARGET_MS
        elif name.startswith("ledger seal_now peak memory") and row["ratio"] is not None:
            row["target"] = f"<= {MEMORY_TARGET:g}"
            row["met"] = row["ratio"] <= MEMORY_TARGET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=None, help=f"log size N (default {DEFAULT_EVENTS:,})"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    parser.add_argument("--quick", action="store_true", help="N = 20,000 unless --events")
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.quick else DEFAULT_EVENTS)

    def measure(info: str) -> list[dict]:
        result = append_rows(args.rounds) + rows(info, events, args.rounds)
        report.add_ratios(result)
        add_targets(result)
        return result

    def tidy() -> None:
        from bench.scratch import conninfo

        tidy_up(conninfo())

    return standalone(measure, tidy)


if __name__ == "__main__":
    sys.exit(main())
