"""Rebuilds started from the admin, run in a background thread of the web process.

A replay of a million events takes minutes, past any server's worker timeout, so the request
only records a `RebuildRun` and starts a daemon thread; the thread runs the same `rebuild(...)`
as the `rebuild_projections` command (which records the checkpoint change, `by` the admin user)
and keeps the run's progress and heartbeat up to date, so that the projections page of any web
process can show it.

Progress and heartbeat, while the rebuild's one long transaction is open:

* PostgreSQL: after each batch, the count and the heartbeat are written in one UPDATE through a
  second connection of the thread's own (`connections.create_connection`), in autocommit, so
  other sessions see them at once; the rebuild's transaction never touches `rebuild_runs`, so
  the two never wait on each other. The runs waiting behind it in the thread beat with it.
* SQLite: the database has one writer at a time, and the rebuild holds that lock until it
  commits, so a second connection could not write; the count and the heartbeat are kept in
  this process's memory instead (shown by this process's pages). Other processes see the run's
  heartbeat of its start only, so past `REBUILD_STALE_AFTER` they show it abandoned, and a
  rebuild started there waits for the write lock and is refused. While the rebuild runs, every
  other writer (appends, logins) waits for it, for up to the connection's timeout: acceptable
  for the demo, not for production.

Each run ends with its count and `finished_at`, or with the error. A run whose process died
(a server restart) stops beating; once silent past `REBUILD_STALE_AFTER` it is abandoned, and
the next rebuild started for its projection closes it (with an error saying so) in the
transaction that records the new run.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, OperationalError, connections, transaction
from django.utils import timezone

from eventsourcing_app.core.errors import HandlerFailed
from eventsourcing_app.models import RebuildRun
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.rebuild import events_to_replay, rebuild
from eventsourcing_app.wiring import get_event_store

logger = logging.getLogger(__name__)

# The runs of this process: run id -> events read, and run id -> last heartbeat.
_progress: dict[int, int] = {}
_beats: dict[int, dt.datetime] = {}
_progress_lock = threading.Lock()
threads: list[threading.Thread] = []  # started here (tests join them)

# One statement for the count of the run and the heartbeat of it and of the runs behind it.
BEAT_SQL = (
    "UPDATE rebuild_runs SET heartbeat_at = %s, "
    "events_read = CASE WHEN id = %s THEN %s ELSE events_read END "
    "WHERE id = ANY(%s) AND finished_at IS NULL"
)


class AlreadyRunning(Exception):
    """A rebuild of that projection is running already."""


def start(names: Iterable[str], *, by: str, reason: str = "", using: str = "default"):
    """Record a run for each projection and start one thread that rebuilds them in turn (one
    after the other: on SQLite two rebuilds at once would wait on each other's write lock).
    An abandoned run of a projection is closed first, in the transaction that records the new.

    Return (runs started, names refused because a rebuild of them is running).
    """
    runs, refused = [], []
    unfinished = RebuildRun.objects.using(using).filter(finished_at__isnull=True)
    for name in names:
        # Read first: on SQLite an insert would wait for the running rebuild's write lock.
        current = unfinished.filter(projection=name).first()
        if current is not None and not brought_up_to_date(current).abandoned:
            refused.append(name)
            continue
        try:
            with transaction.atomic(using=using):
                if current is not None:
                    _close_abandoned(current, using)
                runs.append(
                    RebuildRun.objects.using(using).create(
                        projection=name, started_by=by, reason=reason
                    )
                )
        except IntegrityError:  # the one-unfinished-run-per-projection constraint
            refused.append(name)
        except OperationalError:
            if current is None:
                raise
            # SQLite, the database locked: most likely by that very run, replaying in another
            # process, whose heartbeats cannot reach the database while it holds the lock.
            logger.warning("rebuild %s of %s looks abandoned, but the database is locked",
                           current.pk, name, exc_info=True)  # fmt: skip
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


def brought_up_to_date(run: RebuildRun) -> RebuildRun:
    """Return `run` with its count and heartbeat brought up to date from this process's memory
    (where SQLite keeps them while the rebuild runs)."""
    run.events_read = progress_of(run)
    with _progress_lock:
        beat = _beats.get(run.pk)
    if beat is not None and (run.heartbeat_at is None or beat > run.heartbeat_at):
        run.heartbeat_at = beat
    return run


def latest_runs(limit: int = 20, using: str = "default") -> list[RebuildRun]:
    """The latest runs, newest first, the unfinished ones brought up to date from memory."""
    runs = list(RebuildRun.objects.using(using).order_by("-started_at", "-id")[:limit])
    return [brought_up_to_date(run) if run.finished_at is None else run for run in runs]


def _close_abandoned(run: RebuildRun, using: str) -> None:
    # The condition again in the UPDATE: a beat or a close since the read leaves the row be,
    # and the new run's insert then meets the constraint.
    closed = (
        RebuildRun.objects.using(using)
        .filter(pk=run.pk)
        .abandoned()
        .update(finished_at=timezone.now(), error=run.abandonment())
    )
    if closed:
        logger.warning("closed the abandoned rebuild %s of %s: %s", run.pk, run.projection,
                       run.abandonment())  # fmt: skip


def _run_all(run_ids: list[int], using: str) -> None:
    try:
        for index, run_id in enumerate(run_ids):
            _run(run_id, using, waiting=run_ids[index + 1 :])
    finally:
        connections[using].close()
        with _progress_lock:
            for run_id in run_ids:
                _beats.pop(run_id, None)


def _run(run_id: int, using: str, waiting: Sequence[int] = ()) -> None:
    run = RebuildRun.objects.using(using).get(pk=run_id)
    side = None
    try:
        store = get_event_store(using)
        total = events_to_replay([registry.get(run.projection)], using)
        _update_unfinished(run, using, events_total=total, heartbeat_at=_beat([run_id]))
        if connections[using].vendor == "postgresql":
            side = connections.create_connection(using)
        read = 0

        def progress(events: int) -> None:
            nonlocal read
            read += events
            with _progress_lock:
                _progress[run_id] = read
            now = _beat([run_id, *waiting])
            if side is not None:
                with side.cursor() as cursor:
                    cursor.execute(BEAT_SQL, [now, run_id, read, [run_id, *waiting]])

        report = rebuild(registry.get(run.projection), store, using=using, progress=progress,
                         by=run.started_by, reason=run.reason)  # fmt: skip
        now = timezone.now()
        _update_unfinished(run, using, events_read=report.events_read, heartbeat_at=now,
                           finished_at=now)  # fmt: skip
    except Exception as exc:
        if isinstance(exc, HandlerFailed):  # its text may quote the event: the run keeps it
            logger.error("the background rebuild %s failed: %s", run_id, exc.summary)
        else:
            logger.exception("the background rebuild %s of %s failed", run_id, run.projection)
        error = "".join(traceback.format_exception_only(exc)).strip() or type(exc).__name__
        try:
            _update_unfinished(run, using, events_read=progress_of(run), error=error,
                               finished_at=timezone.now())  # fmt: skip
        except Exception:
            logger.exception("could not record the failure of rebuild %s", run_id)
    finally:
        if side is not None:
            side.close()
        with _progress_lock:
            _progress.pop(run_id, None)
            _beats.pop(run_id, None)


def _beat(run_ids: Sequence[int]) -> dt.datetime:
    """Record a heartbeat of `run_ids` in this process's memory; return its time."""
    now = timezone.now()
    with _progress_lock:
        for run_id in run_ids:
            _beats[run_id] = now
    return now


def _update_unfinished(run: RebuildRun, using: str, **values) -> None:
    """Update `run` unless it is finished: one closed as abandoned meanwhile (silent past the
    limit, yet running on) keeps the record of its closing."""
    unfinished = RebuildRun.objects.using(using).filter(pk=run.pk, finished_at__isnull=True)
    if not unfinished.update(**values):
        logger.warning("rebuild %s of %s was closed as abandoned while it ran", run.pk,
                       run.projection)  # fmt: skip
