"""Set-up shared by the benchmark entry points: PostgreSQL only, Django as production runs it."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_POOL_MAX = 16
SETTINGS_MODULE = "bankdemo.settings"
POSTGRESQL_ENGINES = {
    "django.db.backends.postgresql",
    "django.contrib.gis.db.backends.postgis",
}
REFUSAL = (
    "bench/run.py measures PostgreSQL only: set DATABASE_URL to a scratch PostgreSQL database, "
    "e.g. DATABASE_URL=postgres://user@127.0.0.1:5432/es_bench (its events table is emptied)."
)


def require_postgresql() -> None:
    """Exit with a clear message unless DATABASE_URL names a PostgreSQL database."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SystemExit(f"DATABASE_URL is not set. {REFUSAL}")
    try:
        engine = dj_database_url.parse(url)["ENGINE"]
    except Exception as exc:  # any unparsable URL gets the same answer
        raise SystemExit(f"DATABASE_URL cannot be parsed ({exc}). {REFUSAL}") from None
    if engine not in POSTGRESQL_ENGINES:
        raise SystemExit(f"DATABASE_URL uses {engine}. {REFUSAL}")


def ensure_database() -> None:
    """Create the scratch database named by DATABASE_URL when the server does not have it yet."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(os.environ["DATABASE_URL"])
    name = params.get("dbname")
    if not name:
        return
    maintenance = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django() -> None:
    """Configure Django as production runs it: DEBUG off, so no query is logged."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    # The benchmark's own threads (8 clients of the bare service, the writers) each hold a
    # pooled connection at once; servers it starts inherit this too.
    os.environ.setdefault("DJANGO_DB_POOL_MAX", str(BENCH_POOL_MAX))
    # The bank's owners are personal data, sealed on append: a master key of the run's own,
    # in the environment so that the processes it starts share it.
    os.environ.setdefault("PERSONAL_DATA_KEY", base64.b64encode(os.urandom(32)).decode())
    import django

    django.setup()


def standalone(measure: Callable[[str], list[dict]], tidy_up: Callable[[], None]) -> int:
    """Run one workload module alone: set up the scratch database, measure, tidy, print."""
    require_postgresql()
    ensure_database()
    setup_django()
    from bench import report, scratch  # scratch needs Django set up

    info = scratch.conninfo()
    scratch.prepare(info)
    tidy_up()
    try:
        measured = measure(info)
    finally:
        tidy_up()
        scratch.tidy_up(info)
    print(report.table(measured))
    return 0
