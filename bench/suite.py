"""The benchmark suite: variants interleaved over rounds, medians, then the no-skip check."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from dataclasses import asdict

import django
import psycopg

from bench import (
    admin_pages,
    api,
    ledger,
    loading,
    on_sqlite,
    peer,
    peer_load,
    personal,
    processes,
    readers,
    rebuilding,
    report,
    scratch,
    tailing,
    timeline_pages,
)
from bench.rounds import BATCH, Config, Variant, measure, progress, summarise_variant, writers
from bench.writers import PlainWriter, StoreWriter

RACE_ROUNDS = 50
REBUILD_SIZE = 100_000  # the smallest log rebuilt; peak memory at larger ones is against it
# What each workload should reach: its ratio to its baseline, at least (">=") or, for times, at
# most ("<="). Rows named by a prefix; the numbers are the targets.
TARGETS = {
    "store append 1/call, 1 writer": (">=", 0.75),
    "store append 1/call, 4 processes": (">=", 0.8),
    f"store append {BATCH}/call, 1 writer": (">=", 0.8),
    "store read_log": (">=", 0.8),
    "load 10,000 events, no snapshot": (">=", 0.5),
    "load 100,000 events, snapshot at": ("<=", 1.5),
    "rebuild_projections, bank log of": (">=", 0.25),
    "rebuild_projections peak memory, bank log of 1,000,000": ("<=", 1.3),
    "admin event list, log of 1,000,000": ("<=", 2.0),
}


def build_variants(info: str, library: peer.Peer, pool: processes.WriterPool) -> list[Variant]:
    plain_1, plain_4 = "plain insert, 1 writer", "plain insert, 4 writers"
    plain_batch, plain_read = f"plain insert {BATCH}/txn, 1 writer", "plain keyset read"
    return [
        Variant(plain_1, writers(lambda: PlainWriter(info), 1)),
        Variant(
            "eventsourcing insert_events 1/call, 1 writer",
            writers(lambda: peer.PeerWriter(library), 1),
            plain_1,
        ),
        Variant(plain_4, writers(lambda: PlainWriter(info), 4)),
        Variant("store append 1/call, 1 writer", writers(StoreWriter, 1), plain_1),
        Variant("store append 1/call, 4 writers", writers(StoreWriter, 4), plain_4),
        Variant(
            f"store append 1/call, {pool.size} processes",
            lambda seconds, _events: processes.events_per_second(pool, seconds),
            plain_4,
        ),
        Variant(plain_batch, writers(lambda: PlainWriter(info, BATCH), 1)),
        Variant(
            f"store append {BATCH}/call, 1 writer",
            writers(lambda: StoreWriter(BATCH), 1),
            plain_batch,
        ),
        Variant(
            f"eventsourcing insert_events {BATCH}/call, 1 writer",
            writers(lambda: peer.PeerWriter(library, BATCH), 1),
            plain_batch,
        ),
        Variant(plain_read, lambda _seconds, events: readers.plain_read_rate(info, events)),
        Variant(
            "store read_log", lambda _seconds, events: readers.store_read_rate(events), plain_read
        ),
        Variant(
            "eventsourcing select_notifications",
            lambda _seconds, events: peer.read_rate(library, events),
            plain_read,
        ),
    ]


def build_load_variants(info: str, fixture: loading.LoadFixture) -> list[Variant]:
    total, small, tail = loading.LOAD_EVENTS, loading.SMALL_EVENTS, loading.TAIL
    plain = f"plain keyset read, 1 stream of {total:,}"
    small_load = f"load {small:,} events, snapshot at {small - tail:,}"
    big = []
    if fixture.big is not None and fixture.big_events != total:
        big_id, big_events = fixture.big, fixture.big_events
        big.append(
            Variant(
                f"load {big_events:,} events, snapshot at {big_events - tail:,}",
                lambda _s, _e: loading.snapshot_load_ms(big_id, big_events),
                small_load,
                unit="ms",
            )
        )
    variants = [
        Variant(plain, lambda _s, _e: loading.plain_stream_rate(info, fixture)),
        Variant(
            f"store read_stream, {total:,} events",
            lambda _s, _e: loading.store_stream_rate(fixture),
            plain,
        ),
        Variant(
            f"load {total:,} events, no snapshot",
            lambda _s, _e: loading.replay_rate(fixture),
            plain,
        ),
        Variant(
            small_load,
            lambda _s, _e: loading.snapshot_load_ms(fixture.small, small),
            unit="ms",
        ),
        Variant(
            f"load {total:,} events, snapshot at {total - tail:,}",
            lambda _s, _e: loading.snapshot_load_ms(fixture.snapshotted, total),
            small_load,
            unit="ms",
        ),
    ]
    return variants + big


def load_rows(info: str, config: Config) -> list[dict]:
    """Build the load fixture, then time the loads over rounds of their own."""
    progress(f"load: building counters of {loading.LOAD_EVENTS:,} events and more")
    variants = build_load_variants(info, loading.prepare(config.big_load_events))
    samples = measure(variants, config, "load round")
    rows = [summarise_variant(variant, samples) for variant in variants]
    for row in rows:
        if row["unit"] == "events/s" and row["variant"].startswith("load "):
            row["note"] = f"{loading.LOAD_EVENTS / row['value'] * 1000:,.0f} ms a load"
        elif row["unit"] == "ms" and row["baseline"]:
            row["note"] = "time ratio, lower is flatter"
    return rows


def log_rows(info: str, config: Config) -> list[dict]:
    """Admin pages and rebuilds over a bank log grown from empty: 10,000, 100,000 (1,000,000)."""
    progress("admin pages and rebuilds: emptying the log, then growing a bank log")
    with scratch.admin_connection(info) as conn:
        scratch.empty(conn)
    small, big = config.log_sizes[0], config.log_sizes[-1]
    try:
        rows = admin_pages.rows(info, [small, REBUILD_SIZE])
        rows += rebuilding.rows(info, [size for size in config.log_sizes if size >= REBUILD_SIZE])
        if big > REBUILD_SIZE:  # the log is at `big` now: the pages again, against `small`
            for row in admin_pages.rows(info, [big]):
                row["baseline"] = row["variant"].replace(f"{big:,}", f"{small:,}")
                rows.append(row)
        rows += timeline_pages.rows(info, config.timeline_events)
    finally:
        admin_pages.tidy_up()
    return rows


def tail_rows(info: str, config: Config, pool: processes.WriterPool) -> tuple[list[dict], dict]:
    progress("no-skip check")
    naive = tailing.naive_tail_check(info, config.tail_seconds)
    store = tailing.store_tail_check(info, config.tail_seconds)
    in_processes = tailing.process_tail_check(info, config.tail_seconds, pool)
    naive_name = "naive id tail, 4 plain writers"
    rows = [
        report.tail_row(naive_name, naive, None),
        report.tail_row("store log tail, 4 store writers", store, naive_name),
        report.tail_row(f"store log tail, {pool.size} store processes", in_processes, naive_name),
    ]
    checks = {
        "naive_id_tail": naive,
        "store_log_tail": store,
        "store_log_tail_processes": in_processes,
    }
    return rows, checks


def race_row(pool: processes.WriterPool) -> tuple[dict, dict]:
    progress(f"same-version race, {RACE_ROUNDS} rounds")
    check = processes.race_check(pool, RACE_ROUNDS)
    note = (
        f"{check['one_winner']}/{check['rounds']} rounds with exactly 1 accepted append, "
        f"lost updates={check['lost_updates']}, no winner={check['no_winner']}, "
        f"stream {check['stream_events']} events"
        + ("" if check["contiguous"] else " NOT CONTIGUOUS")
    )
    return report.check_row(f"same-version race, {check['processes']} processes", note), check


def environment(info: str, config: Config) -> dict:
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run": config.name,
        "config": asdict(config),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        **peer.versions(),
        "pymerkle": ledger.pymerkle_version(),
        "postgresql": scratch.server_facts(info),
    }


def run_suite(config: Config) -> int:
    info = scratch.conninfo()
    began = time.perf_counter()
    scratch.prepare(info)
    loading.tidy_up()
    library = pool = None
    try:
        library = peer.prepare(info)
        meta = environment(info, config)
        progress(f"starting {processes.PROCESSES} writer processes")
        pool = processes.WriterPool()
        readers.fill_log(config.read_events)
        peer.fill_log(library, config.read_events)
        variants = build_variants(info, library, pool)
        samples = measure(variants, config)
        rows = [summarise_variant(variant, samples) for variant in variants]
        rows += load_rows(info, config)
        progress("loads beside the peer's Application.repository.get")
        rows += peer_load.rows(config.rounds)
        progress(f"api: gunicorn and {api.CLIENTS} clients")
        rows += api.rows(info, config.seconds, config.warmup_seconds)
        more_rows, checks = tail_rows(info, config, pool)
        rows += more_rows
        row, race = race_row(pool)
        rows.append(row)
        rows += log_rows(info, config)
        progress(f"ledger: sealing, proofs and memory at {config.ledger_events:,} events")
        rows += ledger.rows(info, config.ledger_events, min(config.rounds, ledger.ROUNDS))
        progress(f"personal data: sealed and plain notes, read_log of {config.personal_events:,}")
        rows += personal.rows(info, config)
        progress("sqlite: the same appends and reads on SQLite, in a process of its own")
        sqlite_rows, meta["sqlite"] = on_sqlite.rows(quick=config.name != "full")
        rows += sqlite_rows
        report.add_ratios(rows)
        report.add_targets(rows, TARGETS)
        ledger.add_targets(rows)
        personal.add_targets(rows)
        peer_load.add_targets(rows)
    finally:
        if pool is not None:
            pool.close()
        loading.tidy_up()
        ledger.tidy_up(info)
        personal.tidy_up(info)
        scratch.tidy_up(info)
        if library is not None:
            peer.tidy_up(library, info)
    meta["seconds"] = round(time.perf_counter() - began, 1)
    print(report.table(rows))
    document = {"environment": meta, "results": rows, "no_skip": checks, "race": race}
    json_path, markdown_path = report.write(document)
    print(
        f"\n{meta['seconds']} s; results written to bench/results/{json_path.name} "
        f"and bench/results/{markdown_path.name}"
    )
    tails = (checks["store_log_tail"], checks["store_log_tail_processes"])
    clean = all(tail["skipped"] == tail["duplicates"] == tail["foreign"] == 0 for tail in tails)
    return 0 if clean and processes.race_ok(race) else 1
