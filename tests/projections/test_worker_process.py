"""`manage.py run_projections` as operators run it: polling, logging, stopping on SIGTERM."""

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_process_applies_new_events_and_stops_on_sigterm(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen(
        [*manage, "run_projections", "sample.movements", "--poll-interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        append = (
            "from decimal import Decimal; from tests.projections.helpers import open_account; "
            "open_account('Ada', '1.00', '2.00')"
        )
        subprocess.run([*manage, "shell", "-c", append], cwd=ROOT, env=env, check=True, timeout=60)
        deadline = time.monotonic() + 20
        while "applied 3 events" not in _read(log) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "projection sample.movements applied 3 events" in _read(log)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        worker.kill()
        worker.wait()
    output = _read(log)
    assert "stopped" in output
    assert "Traceback" not in output


def _read(log) -> str:
    log.seek(0)
    return log.read()
