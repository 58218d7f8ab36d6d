"""System checks fail start-up on broken upcaster chains and on unreadable stored events."""

import subprocess
import sys
from pathlib import Path

import pytest

from eventsourcing_app.checks import stored_version_problems, stored_versions
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.wiring import get_event_store
from tests.helpers import new_id

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, tmp_path: Path, chain: str = "gap") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args, "--settings", "tests.checkapp.settings"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}",
            "CHECKAPP_CHAIN": chain,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_gap_in_an_upcaster_chain_fails_manage_py_check(tmp_path):
    result = manage("check", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "checkapp.OrderPlaced: no upcaster from v2 to v3" in result.stderr
    assert "eventsourcing.E001" in result.stderr


def test_stored_events_newer_than_the_code_fail_manage_py_check(tmp_path):
    assert manage("migrate", "-v0", tmp_path=tmp_path, chain="complete").returncode == 0
    assert manage("check", tmp_path=tmp_path, chain="complete").returncode == 0
    append = (
        "import uuid; from eventsourcing_app.wiring import get_event_store; "
        "from eventsourcing_app.core.records import NewEvent, NO_STREAM; "
        "get_event_store().append(uuid.uuid4(), [NewEvent('checkapp.OrderPlaced', {}, 5)], "
        "expected_version=NO_STREAM, aggregate_type='checkapp.Order')"
    )
    shell = manage("shell", "-c", append, tmp_path=tmp_path, chain="complete")
    assert shell.returncode == 0, shell.stderr
    result = manage("check", tmp_path=tmp_path, chain="complete")
    assert result.returncode == 1
    assert "stored checkapp.OrderPlaced events are at schema v5, newer than the v4" in result.stderr


@pytest.mark.django_db
def test_stored_versions_are_read_per_type_on_this_database():
    store = get_event_store()
    for event_type, versions in {"shop.Paid": [1, 3, 2], "shop.Placed": [2]}.items():
        store.append(
            new_id(),
            [NewEvent(event_type, {}, version) for version in versions],
            expected_version=NO_STREAM,
            aggregate_type="shop.Order",
        )
    assert stored_versions("default") == [("shop.Paid", 1, 3), ("shop.Placed", 2, 2)]


def test_stored_versions_without_an_upcaster_path_are_named():
    from eventsourcing_app.domain.events import EventRegistry
    from eventsourcing_app.domain.upcasting import Upcasters
    from tests.domain.sample import MoneyDeposited

    events = EventRegistry()
    events.register(MoneyDeposited, "sample.MoneyDeposited", 3)
    steps = Upcasters()
    steps.register("sample.MoneyDeposited", 2, dict)
    problems = stored_version_problems(
        [("sample.MoneyDeposited", 1, 3), ("other.App", 1, 9)], events, steps
    )
    assert problems == [
        "stored sample.MoneyDeposited events at v1 cannot be upcast to v3: no upcaster from v1"
    ]
