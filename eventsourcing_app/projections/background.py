"""Rebuilds started from the admin, run in a background thread of the web process.

A replay of a million events takes minutes, past any server's worker timeout, so the request
only records a `RebuildRun` and starts a daemon thread; the thread runs the same `rebuild(...)`
as the `rebuild_projections` command (which records the checkpoint change, `by` the admin user)
and keeps the run's progress up to date, so that the projections page of any web process can
show it.

Progress, while the rebuild's one long transaction is open:

* PostgreSQL: each batch's count is written through a second connection of the thread's own
  (`connections.create_connection`), in autocommit, so other sessions see it at once; the
  rebuild's transaction never touches `rebuild_runs`, so the two never wait on each other.
* SQLite: the database has one writer at a time, and the rebuild holds that lock until it
  commits, so a second connection could not write; the count is kept in this process's memory
  instead (shown by this process's pages; other processes show the run as running, 0 read, until
  it ends). While the rebuild runs, every other writer (appends, logins) waits for it, for up to
  the connection's timeout: acceptable for the demo, not for production.

Each run ends with its count and `finished_at`, or with the error. A run whose process died
(a server restart) stays unfinished and blocks further admin rebuilds of that projection until
its row is finished by hand; the `rebuild_projections` command is not affected.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from eventsourcing_app.core.records import START
from eventsourcing_app.models import RebuildRun
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.rebuild import rebuild
from eventsourcing_app.wiring import get_event_store

logger = logging.getLogger(__name__)

_progress: dict[int, int] = {}  # run id -> events read, for the runs of this process
_progress_lock = threading.Lock()
threads: list[threading.Thread] = []  # started here (tests join them)


class AlreadyRunning(Exception):
    """A rebuild of that projection is running already."""


def start(names: Iterable[str], *, by: str, reason: str = "", using: str = "default"):
    """Record a run for each projection and start one thread that rebuilds them in turn (one
    after the other: on SQLite two rebuilds at once would wait on each other's write lock).

    Return (runs started, names refused because a rebuild of them is running).
    """
    runs, refused = [], []
    running = RebuildRun.objects.using(using).filter(finished_at__isnull=True)
    for name in names:
        # Read first: on SQLite an insert would wait for the running rebuild's write lock.
        if running.filter(projection=name).exists():
            refused.append(name)
            continue
        try:
            with transaction.atomic(using=using):
                runs.append(
                    RebuildRun.objects.using(using).create(
                        projection=name, started_by=by, reason=reason
                    )
                )
        except IntegrityError:  # the one-unfinished-run-per-projection constraint
            refused.append(name)
    if runs:
        thread = threading.Thread(
            target=_run_all, args=([r.pk for r in runs], using), daemon=True,
            name=f"rebuild {', '.join(r.projection for r in runs)}",
        )  # fmt: skip
        threads.append(thread)
        thread.start()
    return runs, refused


def progress_of(run: RebuildRun) -> int:
    """Events read so far: the database's count, or this process's if it is further on."""
    with _progress_lock:
        return max(run.events_read, _progress.get(run.pk, 0))


def latest_runs(limit: int = 20, using: str = "default") -> list[RebuildRun]:
    """The latest runs, newest first, with `events_read` brought up to date from memory."""
    runs = list(RebuildRun.objects.using(using).order_by("-started_at", "-id")[:limit])
    for run in runs:
        if run.finished_at is None:
            run.events_read = progress_of(run)
    return runs


def _run_all(run_ids: list[int], using: str) -> None:
    try:
        for run_id in run_ids:
            _run(run_id, using)
    finally:
        connections[using].close()


def _run(run_id: int, using: str) -> None:
    run = RebuildRun.objects.using(using).get(pk=run_id)
    side = None
    try:
        store = get_event_store(using)
        head = store.head()
        total = store.count_between(START, head, 10**12) if head > START else 0
        RebuildRun.objects.using(using).filter(pk=run_id).update(events_total=total)
        if connections[using].vendor == "postgresql":
            side = connections.create_connection(using)
        read = 0

        def progress(events: int) -> None:
            nonlocal read
            read += events
            with _progress_lock:
                _progress[run_id] = read
            if side is not None:
                with side.cursor() as cursor:
                    cursor.execute(
                        "UPDATE rebuild_runs SET events_read = %s WHERE id = %s", [read, run_id]
                    )

        report = rebuild(registry.get(run.projection), store, using=using, progress=progress,
                         by=run.started_by, reason=run.reason)  # fmt: skip
        RebuildRun.objects.using(using).filter(pk=run_id).update(
            events_read=report.events_read, finished_at=timezone.now()
        )
    except Exception as exc:
        logger.exception("the background rebuild %s of %s failed", run_id, run.projection)
        error = "".join(traceback.format_exception_only(exc)).strip() or type(exc).__name__
        try:
            RebuildRun.objects.using(using).filter(pk=run_id).update(
                events_read=progress_of(run), error=error, finished_at=timezone.now()
            )
        except Exception:
            logger.exception("could not record the failure of rebuild %s", run_id)
    finally:
        if side is not None:
            side.close()
        with _progress_lock:
            _progress.pop(run_id, None)
