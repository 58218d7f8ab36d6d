"""The benchmark suite: variants interleaved over rounds, medians, then the no-skip check."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import django
import psycopg

from bench import peer, readers, report, scratch, tailing
from bench.writers import PlainWriter, StoreWriter, events_per_second

BATCH = 100
WARMUP_EVENTS = 2000


@dataclass(frozen=True)
class Config:
    rounds: int
    seconds: float  # per write variant per round
    warmup_seconds: float
    read_events: int
    tail_seconds: float


FULL = Config(rounds=5, seconds=3.0, warmup_seconds=0.5, read_events=50_000, tail_seconds=2.0)
QUICK = Config(rounds=3, seconds=1.0, warmup_seconds=0.2, read_events=10_000, tail_seconds=2.0)


@dataclass(frozen=True)
class Variant:
    name: str
    run: Callable[[float, int], float]  # (seconds, events) -> events per second
    baseline: str | None = None


def writers(make: Callable[[], object], count: int) -> Callable[[float, int], float]:
    return lambda seconds, _events: events_per_second([make() for _ in range(count)], seconds)


def build_variants(info: str, library: peer.Peer) -> list[Variant]:
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


def rotated(variants: list[Variant], shift: int) -> list[Variant]:
    shift %= len(variants)
    return variants[shift:] + variants[:shift]


def measure(variants: list[Variant], config: Config) -> dict[str, list[float]]:
    """Run every variant once per round, in an order that rotates from round to round."""
    for variant in variants:
        variant.run(config.warmup_seconds, WARMUP_EVENTS)
    samples: dict[str, list[float]] = {variant.name: [] for variant in variants}
    for round_number in range(config.rounds):
        progress(f"round {round_number + 1}/{config.rounds}")
        for variant in rotated(variants, round_number):
            samples[variant.name].append(variant.run(config.seconds, config.read_events))
    return samples


def tail_rows(info: str, config: Config) -> tuple[list[dict], dict]:
    progress("no-skip check")
    naive = tailing.naive_tail_check(info, config.tail_seconds)
    store = tailing.store_tail_check(info, config.tail_seconds)
    naive_name = "naive id tail, 4 plain writers"
    rows = [
        report.tail_row(naive_name, naive, None),
        report.tail_row("store log tail, 4 store writers", store, naive_name),
    ]
    return rows, {"naive_id_tail": naive, "store_log_tail": store}


def environment(info: str, config: Config, quick: bool) -> dict:
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "config": asdict(config),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        **peer.versions(),
        "postgresql": scratch.server_facts(info),
    }


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def run_suite(quick: bool) -> int:
    config = QUICK if quick else FULL
    info = scratch.conninfo()
    began = time.perf_counter()
    scratch.prepare(info)
    library = None
    try:
        library = peer.prepare(info)
        meta = environment(info, config, quick)
        readers.fill_log(config.read_events)
        peer.fill_log(library, config.read_events)
        variants = build_variants(info, library)
        samples = measure(variants, config)
        rows = [summarise_variant(variant, samples) for variant in variants]
        more_rows, checks = tail_rows(info, config)
        rows += more_rows
        report.add_ratios(rows)
    finally:
        scratch.tidy_up(info)
        if library is not None:
            peer.tidy_up(library, info)
    meta["seconds"] = round(time.perf_counter() - began, 1)
    print(report.table(rows))
    path = report.write_json({"environment": meta, "results": rows, "no_skip": checks})
    print(f"\n{meta['seconds']} s; results written to bench/results/{path.name}")
    store = checks["store_log_tail"]
    return 0 if store["skipped"] == store["duplicates"] == store["foreign"] == 0 else 1


def summarise_variant(variant: Variant, samples: dict[str, list[float]]) -> dict:
    return report.summarise(variant.name, samples[variant.name], variant.baseline)
