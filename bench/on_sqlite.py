"""Run the benchmark's SQLite variants in a subprocess of their own and collect its rows.

Measured (see `bench/sqlite_variants.py`): plain `sqlite3` inserts of 1 and 100 rows a
transaction, the baseline of `EventStore.append()` through Django and of the `eventsourcing`
library's SQLite `insert_events()` at 1 and 100 events a call; a plain keyset read of the
store's first N events (10,000; 100,000 by default), the baseline of `EventStore.read_log()` and
of the library's `select_notifications()`. One writer at a time, as SQLite allows.

`bench/run.py` configures Django for PostgreSQL in its own process, so the SQLite run happens in
a child process, `python -m bench.on_sqlite --json <out> [--quick]`, which points DATABASE_URL
at a fresh file in a temporary folder and deletes the folder at the end. Django's connection
gets the pragmas of the project's own SQLite database (WAL, synchronous=NORMAL); the plain
connections and the library get the same. Without `--json` the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from bench import report
from bench.environment import PROJECT_ROOT, setup_django

PREFIX = "sqlite: "
STORE_FILE = "store.sqlite3"
# What bankdemo/settings.py runs its SQLite database with when DATABASE_URL is unset; a
# sqlite:// DATABASE_URL gets only the transaction mode from there, so the URL carries these.
INIT_COMMAND = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument(
        "--json", type=Path, help="measure in this process and write the rows to this file"
    )
    return parser.parse_args(argv)


def database_url(path: Path) -> str:
    return f"sqlite:///{path}?{urlencode({'init_command': INIT_COMMAND})}"


def rows(quick: bool) -> tuple[list[dict], dict]:
    """Measure SQLite in a child process; return its rows, named "sqlite: ...", and its setting."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    with tempfile.TemporaryDirectory(prefix="es_bench_sqlite_out_") as folder:
        out = Path(folder) / "sqlite.json"
        command = [sys.executable, "-m", "bench.on_sqlite", "--json", str(out)]
        if quick:
            command.append("--quick")
        finished = subprocess.run(command, cwd=PROJECT_ROOT, env=env)
        if finished.returncode != 0:
            raise RuntimeError(f"the SQLite benchmark failed with status {finished.returncode}")
        document = json.loads(out.read_text())
    return [prefixed(row) for row in document["results"]], document["environment"]


def prefixed(row: dict) -> dict:
    baseline = row["baseline"]
    return {
        **row,
        "variant": PREFIX + row["variant"],
        "baseline": None if baseline is None else PREFIX + baseline,
    }


def measure_into(out: Path, quick: bool) -> None:
    """Set Django up on a fresh SQLite file, measure, write the JSON, delete the file."""
    folder = Path(tempfile.mkdtemp(prefix="es_bench_sqlite_"))
    try:
        os.environ["DATABASE_URL"] = database_url(folder / STORE_FILE)
        setup_django()
        from bench import sqlite_variants  # needs Django set up

        document = sqlite_variants.run(folder, quick)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.json is not None:
        measure_into(args.json, args.quick)
        return 0
    results, environment = rows(args.quick)
    report.add_ratios(results)
    print(report.table(results))
    print(f"\nSQLite: {environment['sqlite']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
