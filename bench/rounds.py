"""Rounds of variants: the run sizes, and every variant run once a round in a rotating order."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench import report
from bench.writers import events_per_second

BATCH = 100
WARMUP_EVENTS = 2000


@dataclass(frozen=True)
class Config:
    name: str
    rounds: int
    seconds: float  # per write variant per round
    warmup_seconds: float
    read_events: int
    tail_seconds: float
    big_load_events: int  # the snapshotted counter whose load is compared with 100 events'
    log_sizes: tuple[int, ...]  # rebuild and admin pages at these log sizes
    ledger_events: int  # the ledger's sealing and proofs at this log size (and a tenth of it)
    timeline_events: int  # the admin timeline's pages over one stream this long
    personal_events: int  # read_log of this many events with a sealed field, and without


QUICK = Config(
    name="quick",
    rounds=3,
    seconds=1.0,
    warmup_seconds=0.2,
    read_events=10_000,
    tail_seconds=2.0,
    big_load_events=0,
    log_sizes=(10_000, 100_000),
    ledger_events=20_000,
    timeline_events=10_000,
    personal_events=10_000,
)
DEFAULT = Config(
    name="default",
    rounds=3,
    seconds=1.5,
    warmup_seconds=0.5,
    read_events=100_000,
    tail_seconds=2.0,
    big_load_events=100_000,
    log_sizes=(10_000, 100_000),
    ledger_events=200_000,
    timeline_events=100_000,
    personal_events=100_000,
)
FULL = Config(
    name="full",
    rounds=5,
    seconds=3.0,
    warmup_seconds=0.5,
    read_events=100_000,
    tail_seconds=3.0,
    big_load_events=100_000,
    log_sizes=(10_000, 100_000, 1_000_000),
    ledger_events=1_000_000,
    timeline_events=100_000,
    personal_events=100_000,
)
CONFIGS = {config.name: config for config in (QUICK, DEFAULT, FULL)}


@dataclass(frozen=True)
class Variant:
    name: str
    run: Callable[[float, int], float]  # (seconds, events) -> events per second (or ms)
    baseline: str | None = None
    unit: str = "events/s"


def writers(make: Callable[[], object], count: int) -> Callable[[float, int], float]:
    return lambda seconds, _events: events_per_second([make() for _ in range(count)], seconds)


def rotated(variants: list[Variant], shift: int) -> list[Variant]:
    shift %= len(variants)
    return variants[shift:] + variants[:shift]


def measure(
    variants: list[Variant], config: Config, label: str = "round"
) -> dict[str, list[float]]:
    """Run every variant once per round, in an order that rotates from round to round."""
    for variant in variants:
        variant.run(config.warmup_seconds, WARMUP_EVENTS)
    samples: dict[str, list[float]] = {variant.name: [] for variant in variants}
    for round_number in range(config.rounds):
        progress(f"{label} {round_number + 1}/{config.rounds}")
        for variant in rotated(variants, round_number):
            samples[variant.name].append(variant.run(config.seconds, config.read_events))
    return samples


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def summarise_variant(variant: Variant, samples: dict[str, list[float]]) -> dict:
    return report.summarise(variant.name, samples[variant.name], variant.baseline, variant.unit)
