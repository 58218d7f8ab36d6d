"""Browser tests of the audit UI: headless Chromium against pytest-django's live server.

Chromium is the system one (env CHROMIUM, default /usr/bin/chromium); `playwright install` is
never needed. Without it the tests are skipped, unless CI=true: then they fail, CI must run them.

The browser is launched once for this package and a fresh context (cookies, storage) is made for
each test. Playwright's sync API keeps an asyncio loop running in the main thread while it is
started, and Django refuses synchronous database calls then (SynchronousOnlyOperation): so the
browser lives only as long as this package's tests, and DJANGO_ALLOW_ASYNC_UNSAFE is set for
exactly that time. The tests after this package run without either.

These fixtures replace pytest-playwright's `browser` and `page` (its session-scoped Playwright
would keep that loop running for the rest of the suite); its command-line options (--headed,
--tracing, ...) do not apply here.
"""

from __future__ import annotations

import importlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count
from playwright.sync_api import Browser, Page, sync_playwright

from bankdemo.seeding import catch_up_projections, seed_history, seed_transfers, seed_users
from eventsourcing_app.models import Event

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
TRIGGERS = importlib.import_module("eventsourcing_app.migrations.0002_append_only_triggers")
LEDGER = importlib.import_module("eventsourcing_app.migrations.0005_ledger")
CHANGES = importlib.import_module("eventsourcing_app.migrations.0004_checkpoint_changes")
EXPORTS = importlib.import_module("eventsourcing_app.migrations.0006_evidence_exports")
# The SQLite triggers that refuse DELETE, by name: the events table's, the ledger's and the
# records of checkpoint changes and evidence exports.
NO_DELETE = {
    "events_no_delete": next(sql for sql in TRIGGERS.SQLITE_INSTALL if "events_no_delete" in sql),
    **{
        f"{table}_no_delete": LEDGER.SQLITE_TRIGGERS[1].format(table=table)
        for table in LEDGER.TABLES
    },
    "checkpoint_changes_no_delete": next(
        sql for sql in CHANGES.SQLITE_INSTALL if "checkpoint_changes_no_delete" in sql
    ),
    f"{EXPORTS.TABLE}_no_delete": next(
        sql for sql in EXPORTS.SQLITE_TRIGGERS if f"{EXPORTS.TABLE}_no_delete" in sql
    ),
}
FAILED_KEY = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The Chromium to drive; skip (or fail on CI) when it is not there."""
    path = os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    reason = (
        f"no Chromium at {path}: install it (e.g. apt-get install chromium) "
        "or point the CHROMIUM environment variable at one"
    )
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"browser tests must run on CI, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser(chromium_executable: str, browser_name: str):
    """Headless Chromium, launched once for the browser tests."""
    if browser_name != "chromium":
        pytest.skip(f"the audit UI tests drive Chromium only, not {browser_name}")
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED_KEY] = True
    return report


@pytest.fixture
def page(request, browser: Browser, live_server, shots: Path) -> Page:
    """A page in a fresh browser context, its relative URLs on the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    # A failed test leaves a screenshot of where it stopped, next to the others.
    if request.node.stash.get(FAILED_KEY, False):
        page.screenshot(path=shots / f"{request.node.name}-failed.png", full_page=True)
    context.close()


@pytest.fixture(scope="session")
def shots(pytestconfig) -> Path:
    """test-artifacts/screenshots under the project root (git-ignored)."""
    folder = pytestconfig.rootpath / "test-artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(page: Page, shots: Path):
    """Save a full-page screenshot of the page as it is now, under a name."""

    def take(name: str) -> Path:
        path = shots / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


def _sqlite_refuses_delete(refuse: bool) -> None:
    """Drop or restore the SQLite triggers that refuse DELETE (`NO_DELETE`)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name, create in NO_DELETE.items():
            cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = %s", [name]
            )
            present = cursor.fetchone() is not None
            if refuse and not present:
                cursor.execute(create)
            elif present and not refuse:
                cursor.execute(f"DROP TRIGGER {name}")


@pytest.fixture(scope="package")
def _append_only_restored(django_db_blocker):
    """After the last browser test, the events and ledger tables refuse DELETE again (SQLite)."""
    yield
    with django_db_blocker.unblock():
        _sqlite_refuses_delete(True)


@pytest.fixture
def flushable_events(transactional_db, _append_only_restored):
    """Let the live server's transactional test empty the events and ledger tables afterwards.

    Django empties the tables after a transactional test. On PostgreSQL the suite opts in to
    TRUNCATE per connection (tests/conftest.py); on SQLite the append-only triggers refuse the
    DELETE, so they are dropped between the test and the flush, and put back before the next
    test and after the last one. During a test the tables stay append-only.
    """
    _sqlite_refuses_delete(True)
    yield
    _sqlite_refuses_delete(False)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hash the test users' passwords cheaply: the default costs ~0.4 s a password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class History:
    """What the seeded history holds, for the tests to look for in the pages."""

    passwords: dict[str, str]
    account_id: uuid.UUID  # an account with many events, some deposits stored at an old schema
    transfer_correlation: str  # a transfer whose events span the transfer and its accounts


@pytest.fixture
def history(live_server, flushable_events) -> History:
    """A small bank history: staff users, 4 accounts with ~60 movements, 2 settled transfers."""
    passwords = seed_users(True)
    seed_history(accounts=4, events=60, progress=lambda n: None)
    seed_transfers(2)
    catch_up_projections()
    with_upcasts = Event.objects.filter(
        event_type="bank.MoneyDeposited", schema_version__lt=3
    ).values_list("aggregate_id", flat=True)
    busiest = (
        Event.objects.filter(aggregate_id__in=list(with_upcasts.distinct()))
        .values("aggregate_id")
        .annotate(events=Count("id"))
        .order_by("-events", "aggregate_id")
        .first()
    )
    assert busiest is not None, "the seed stored no deposit at an old schema version"
    assert busiest["events"] >= 6, "the busiest account is too short to compare v2 with v5"
    # The saga touched the accounts of a transfer unless its debit was refused.
    moved_money = [
        correlation
        for correlation in (f"seed-transfer-{n}" for n in range(2))
        if Event.objects.for_correlation(correlation)
        .filter(event_type="bank.MoneyDeposited")
        .exists()
    ]
    assert moved_money, "no seeded transfer reached an account"
    return History(
        passwords=passwords, account_id=busiest["aggregate_id"], transfer_correlation=moved_money[0]
    )


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def auditor_page(page: Page, history: History) -> Page:
    """The page, logged in to the admin as the seeded auditor."""
    log_in(page, "auditor", history.passwords["auditor"])
    page.wait_for_url("**/admin/")
    return page
