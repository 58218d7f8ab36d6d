"""Benchmark the event store against plain psycopg on PostgreSQL.

Run from the project root with DATABASE_URL pointing at a scratch PostgreSQL database:

    DATABASE_URL=postgres://user@host:5432/es_bench python bench/run.py [--quick | --full]

The run migrates that database, empties its `events` table (only when it holds nothing but the
benchmark's own events), creates the table `bench_plain`, and removes both contents at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

# `python bench/run.py` puts bench/ on sys.path, not the project root that holds the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.environment import ensure_database, require_postgresql, setup_django


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="fewer rounds, smaller logs (about a minute)"
    )
    size.add_argument(
        "--full", action="store_true", help="also rebuild and browse a 1,000,000-event log"
    )
    parser.add_argument(
        "--ledger-events",
        type=int,
        metavar="N",
        help="seal and prove over a log of N events (default 200,000; 20,000 quick, "
        "1,000,000 full)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_postgresql()
    ensure_database()
    setup_django()
    # The suite's modules, and the round machinery they share, need Django set up.
    from bench.rounds import CONFIGS
    from bench.suite import run_suite

    config = CONFIGS["quick" if args.quick else "full" if args.full else "default"]
    if args.ledger_events:
        config = dataclasses.replace(config, ledger_events=args.ledger_events)
    return run_suite(config)


if __name__ == "__main__":
    sys.exit(main())
