"""Rebuild the bank's read models from a log of 100,000 and 1,000,000 events.

At each size the log is filled with bank events (`bench/filling.py`), then
`manage.py rebuild_projections --no-progress` runs in a process of its own, as an operator runs
it, with `DEBUG` off. The child times the command (interpreter start and `django.setup()` left
out) and reports its peak resident memory (`ru_maxrss`). Its events/s is the events in the log
over that time (the command replays every projection in one pass, reading only the event types
they handle).

Baseline: a plain psycopg keyset read of the whole log (the store's columns, 1000 a query,
JSON decoded), which any rebuild has to do at least once. Targets: a rebuild at 0.25 or more of
that speed, and a peak memory at 1,000,000 events within 1.3 times the one at 100,000 (its row
has the smaller size's as baseline, so the ratio is that factor).

Run alone: `DATABASE_URL=postgres://.../<scratch db> python -m bench.rebuilding [--quick]`.
Imports that need Django set up happen inside the functions that use them, so that `main()`
can set Django up first, as bench/run.py does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench import report
from bench.environment import PROJECT_ROOT, SETTINGS_MODULE, standalone

QUICK_SIZES = [100_000]
FULL_SIZES = [100_000, 1_000_000]
REBUILDS = 2  # per size at most; a single one above REPEAT_BELOW events
REPEAT_BELOW = 500_000
READS = 3
KIB = 1024
# Run in the child: the command, timed, then one JSON line on stdout.
CHILD = """
import io, json, resource, time
import django
django.setup()
from django.core.management import call_command
output = io.StringIO()
began = time.perf_counter()
call_command("rebuild_projections", "--no-progress", stdout=output)
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "max_rss_kib": peak, "output": output.getvalue()}))
"""


def rebuild_once(events: int) -> dict:
    """Rebuild in a child process, checking it replayed `events`; return time, memory, output."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DJANGO_DEBUG": "0",
    }
    began = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"rebuild_projections failed:\n{finished.stderr.strip()}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if f"rebuilt from {events} events" not in result["output"]:
        raise RuntimeError(
            f"rebuild_projections did not replay {events} events:\n{result['output']}"
        )
    result["process_seconds"] = time.perf_counter() - began
    return result


def size_rows(info: str, size: int, smaller: int | None) -> list[dict]:
    """Fill the log to `size`, then read it plainly and rebuild from it; return three rows."""
    from bench import filling, readers
    from eventsourcing_app.wiring import get_event_store

    filling.fill_bank_log(size)
    events = get_event_store().recorder.count()
    read_name = f"plain keyset read, bank log of {size:,}"
    reads = [readers.plain_read_rate(info, events) for _ in range(READS)]
    rebuilds = []
    for number in range(REBUILDS if size < REPEAT_BELOW else 1):
        filling.progress(f"rebuild_projections over {events:,} events ({number + 1})")
        result = rebuild_once(events)
        filling.progress(f"{result['seconds']:.1f} s, peak {result['max_rss_kib'] / KIB:.0f} MiB")
        rebuilds.append(result)
    rebuild_row = report.summarise(
        f"rebuild_projections, bank log of {size:,}",
        [events / result["seconds"] for result in rebuilds],
        read_name,
    )
    rebuild_row["note"] = "seconds: " + ", ".join(
        f"{result['seconds']:.1f} ({result['process_seconds']:.1f} with start-up)"
        for result in rebuilds
    )
    return [
        report.summarise(read_name, reads, None),
        rebuild_row,
        memory_row(size, smaller, [result["max_rss_kib"] / KIB for result in rebuilds]),
    ]


def memory_row(size: int, smaller: int | None, mebibytes: list[float]) -> dict:
    """A row in MiB (lower is better); its ratio to the smaller size's is the growth factor."""
    row = report.summarise(
        memory_name(size),
        mebibytes,
        None if smaller is None else memory_name(smaller),
        unit="MiB",
    )
    row["note"] = "peak RSS of the rebuild process" + ("; target ratio <= 1.30" if smaller else "")
    return row


def memory_name(size: int) -> str:
    return f"rebuild_projections peak memory, bank log of {size:,}"


def rows(info: str, sizes: list[int]) -> list[dict]:
    """Measure each size in ascending order (the log only grows); return rows with ratios."""
    result: list[dict] = []
    smaller = None
    for size in sorted(sizes):
        result += size_rows(info, size, smaller)
        smaller = size
    report.add_ratios(result)
    return result


def tidy_up() -> None:
    """Empty the read models the rebuilds filled."""
    from bench import filling

    filling.tidy_up()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events only")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    return standalone(lambda info: rows(info, sizes), tidy_up)


if __name__ == "__main__":
    sys.exit(main())
