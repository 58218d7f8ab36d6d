"""Run the benchmark's SQLite variants in a subprocess of their own and collect its rows.

Measured (see `bench/sqlite_variants.py`): plain `sqlite3` inserts of 1 and 100 rows a
transaction, the baseline of `EventStore.append()` through Django and of the `eventsourcing`
library's SQLite `insert_events()` at 1 and 100 events a call; a plain keyset read of the
store's first N events (10,000; 100,000 by default), the baseline of `EventStore.read_log()` and
of the library's `select_notifications()`. One writer at a time, as SQLite allows.

`bench/run.py` configures Django for PostgreSQL in its own process, so the SQLite run happens in
a child process, `python -m bench.on_sqlite --json <out> [--quick]`, which points DATABASE_URL
at a fresh file in a temporary folder and deletes the folder at the end. Django's connection
gets the pragmas of the project's own SQLite database (WAL, `synchronous=FULL`, its default);
the plain connections and the library get the same. The whole SQLite run is made twice, at
`FULL` (rows "sqlite: ...") and at `NORMAL` (rows "sqlite, synchronous=NORMAL: ..."), each
system always against the others at the same setting. Without `--json` the table is printed.
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

STORE_FILE = "store.sqlite3"
# The settings measured, each with the prefix of its rows: the project's default first.
SETTINGS = {"FULL": "sqlite: ", "NORMAL": "sqlite, synchronous=NORMAL: "}


def init_command(synchronous: str) -> str:
    """What bankdemo/settings.py runs its SQLite database with (at `SQLITE_SYNCHRONOUS`); a
    sqlite:// DATABASE_URL gets only the transaction mode from there, so the URL carries it."""
    return f"PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument(
        "--json", type=Path, help="measure in this process and write the rows to this file"
    )
    parser.add_argument(
        "--synchronous", choices=sorted(SETTINGS), default="FULL", help="with --json: the setting"
    )
    return parser.parse_args(argv)


def database_url(path: Path, synchronous: str) -> str:
    return f"sqlite:///{path}?{urlencode({'init_command': init_command(synchronous)})}"


def rows(quick: bool) -> tuple[list[dict], dict]:
    """Measure SQLite in a child process per setting; return the rows, each named with its
    setting's prefix, and each setting's environment."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    measured, environments = [], {}
    for synchronous, prefix in SETTINGS.items():
        with tempfile.TemporaryDirectory(prefix="es_bench_sqlite_out_") as folder:
            out = Path(folder) / "sqlite.json"
            command = [sys.executable, "-m", "bench.on_sqlite", "--json", str(out),
                       "--synchronous", synchronous]  # fmt: skip
            if quick:
                command.append("--quick")
            finished = subprocess.run(command, cwd=PROJECT_ROOT, env=env)
            if finished.returncode != 0:
                raise RuntimeError(f"the SQLite benchmark failed with status {finished.returncode}")
            document = json.loads(out.read_text())
        measured += [prefixed(row, prefix) for row in document["results"]]
        environments[synchronous] = document["environment"]
    return measured, environments


def prefixed(row: dict, prefix: str) -> dict:
    baseline = row["baseline"]
    return {
        **row,
        "variant": prefix + row["variant"],
        "baseline": None if baseline is None else prefix + baseline,
    }


def measure_into(out: Path, quick: bool, synchronous: str = "FULL") -> None:
    """Set Django up on a fresh SQLite file, measure, write the JSON, delete the file."""
    folder = Path(tempfile.mkdtemp(prefix="es_bench_sqlite_"))
    try:
        os.environ["DATABASE_URL"] = database_url(folder / STORE_FILE, synchronous)
        setup_django()
        from bench import sqlite_variants  # needs Django set up

        document = sqlite_variants.run(folder, quick)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.json is not None:
        measure_into(args.json, args.quick, args.synchronous)
        return 0
    results, environments = rows(args.quick)
    report.add_ratios(results)
    print(report.table(results))
    for synchronous, environment in environments.items():
        print(f"\nSQLite, synchronous={synchronous}: {environment['sqlite']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
