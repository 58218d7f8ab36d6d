"""The wheel ships the reusable app alone, and it runs in a fresh project from its dependencies.

The wheel is built from a copy of the checkout's working tree (setuptools builds in the source
tree and leaves `build/` and `*.egg-info` there; files in a stale `build/lib` even get into later
wheels). It is installed with pip into a new virtualenv, with its dependencies from the package
index; a project made by `django-admin startproject` with `eventsourcing_app` added to
INSTALLED_APPS migrates, passes `check` and runs the README's first example. Nothing of the
checkout is on the path there. Needs no database of the suite's, so it runs in the SQLite pass
of `make test` only.
"""

import ctypes.util
import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import eventsourcing_app
from eventsourcing_app.ledger.digests import generate_private_key_pem

ROOT = Path(__file__).resolve().parents[2]
APP = "eventsourcing_app"
PROJECT = "mysite"  # "site", the obvious name, is refused: it is a standard library module
# Not copied from the checkout: version control, virtualenvs, caches and build artefacts.
NOT_COPIED_AT_THE_TOP = {
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "test-artifacts",
    "staticfiles",
}
NOT_COPIED_ANYWHERE = ("__pycache__", "*.pyc", "*.egg-info", "db.sqlite3*")
QUIET_PIP = ("--disable-pip-version-check", "-q")
# Reaching the package index may need these; nothing else of this process's environment is passed.
PIP_ENVIRONMENT = re.compile(r"PIP_\w+|(?i:https?_proxy|no_proxy|all_proxy)")

pytestmark = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the package is built and installed once, in the SQLite pass of make test",
)


def clean_environment(venv: Path | None = None, *, pip: bool = False) -> dict[str, str]:
    """PATH and HOME only (HOME for pip's configuration and cache): no PYTHONPATH, no settings."""
    path = "/usr/bin:/bin" if venv is None else f"{venv / 'bin'}:/usr/bin:/bin"
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/nonexistent")}
    if pip:
        env.update((k, v) for k, v in os.environ.items() if PIP_ENVIRONMENT.fullmatch(k))
    return env


def run(command: list, *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run `command`, fail with its output when it fails or overruns; return its stdout."""
    shown = " ".join(str(part) for part in command)
    try:
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"{shown}\ntook more than {timeout} s\n"
            f"stdout:\n{expired.stdout or ''}\nstderr:\n{expired.stderr or ''}"
        )
    assert result.returncode == 0, (
        f"{shown}\nexited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def not_copied(folder: str, names: list[str]) -> set[str]:
    ignored = set(shutil.ignore_patterns(*NOT_COPIED_ANYWHERE)(folder, names))
    if Path(folder) == ROOT:
        ignored |= NOT_COPIED_AT_THE_TOP & set(names)
    return ignored


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("package")


@pytest.fixture(scope="module")
def wheel(workdir) -> Path:
    source = workdir / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=not_copied)
    dist = workdir / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *QUIET_PIP, "-w", dist, source],
        cwd=workdir,
        env=clean_environment(pip=True),
        timeout=300,
    )
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}, found {[w.name for w in wheels]}"
    return wheels[0]


@pytest.fixture(scope="module")
def venv(workdir, wheel) -> Path:
    venv = workdir / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=workdir, env=clean_environment(), timeout=120)
    # Plain psycopg needs the system's libpq; where there is none, the binary extra brings one.
    extra = "" if ctypes.util.find_library("pq") else "[binary]"
    run(
        [venv / "bin" / "python", "-m", "pip", "install", *QUIET_PIP, f"{wheel}{extra}"],
        cwd=workdir,
        env=clean_environment(venv, pip=True),
        timeout=300,
    )
    return venv


@pytest.fixture(scope="module")
def project(workdir, venv) -> Path:
    """A new Django project, as startproject makes it, with only the app added."""
    project = workdir / "project"
    project.mkdir()
    env = clean_environment(venv)
    run(
        [venv / "bin" / "django-admin", "startproject", PROJECT, project],
        cwd=workdir,
        env=env,
        timeout=60,
    )
    settings = project / PROJECT / "settings.py"
    text, added = re.subn(
        r"(\nINSTALLED_APPS = \[.*?)(\n\])",
        rf'\1\n    "{APP}",\2',
        settings.read_text(),
        count=1,
        flags=re.S,
    )
    assert added == 1, f"no INSTALLED_APPS list in {settings}"
    settings.write_text(text)
    run(
        [venv / "bin" / "python", "manage.py", "migrate", "--no-input"],
        cwd=project,
        env=env,
        timeout=120,
    )
    return project


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def wheel_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(metadata).decode())


def test_the_wheel_holds_the_app_with_its_data_and_nothing_else(wheel):
    version = eventsourcing_app.__version__
    assert wheel.name == f"django_event_store-{version}-py3-none-any.whl"
    names = wheel_names(wheel)
    for expected in [
        f"{APP}/__init__.py",
        f"{APP}/py.typed",
        f"{APP}/migrations/__init__.py",
        f"{APP}/migrations/0001_initial.py",
        f"{APP}/management/commands/verify_events.py",
    ]:
        assert expected in names, f"{expected} is missing from {wheel.name}"
    templates = [n for n in names if n.startswith(f"{APP}/templates/") and n.endswith(".html")]
    assert templates, f"no templates in {wheel.name}"
    dist_info = f"django_event_store-{version}.dist-info"
    strays = sorted(n for n in names if n.split("/", 1)[0] not in {APP, dist_info})
    assert strays == [], f"{wheel.name} holds more than the app: {strays}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_wheel_declares_its_dependencies_and_the_kafka_extra(wheel):
    metadata = wheel_metadata(wheel)
    assert metadata["Name"] == "django-event-store"
    assert metadata["Version"] == eventsourcing_app.__version__
    requires = metadata.get_all("Requires-Dist") or []
    unconditional = [r.split(";")[0].replace(" ", "") for r in requires if "extra ==" not in r]
    for name in ("django", "psycopg", "tqdm"):
        assert any(re.match(rf"{name}\b(?![\[-])", r, re.I) for r in unconditional), (
            f"no Requires-Dist for {name}: {requires}"
        )
    assert "kafka" in (metadata.get_all("Provides-Extra") or [])
    assert any(r.startswith("confluent-kafka") and 'extra == "kafka"' in r for r in requires)


def test_the_installed_app_is_imported_from_site_packages_not_the_checkout(venv, workdir):
    code = (
        "import sysconfig, eventsourcing_app; "
        "print(eventsourcing_app.__file__); print(sysconfig.get_path('purelib')); "
        "print(eventsourcing_app.__version__)"
    )
    where, site_packages, version = run(
        [venv / "bin" / "python", "-c", code],
        cwd=workdir,
        env=clean_environment(venv),
        timeout=60,
    ).splitlines()
    where, site_packages = Path(where).resolve(), Path(site_packages).resolve()
    assert where.is_relative_to(site_packages), f"{where} is not in {site_packages}"
    assert not where.is_relative_to(ROOT)
    assert version == eventsourcing_app.__version__ == "0.1.0"
    demo = "import importlib.util as u; print(u.find_spec('bankdemo'))"
    absent = run(
        [venv / "bin" / "python", "-c", demo],
        cwd=workdir,
        env=clean_environment(venv),
        timeout=60,
    )
    assert absent.strip() == "None", "the demo project was installed too"


def test_a_new_project_with_the_app_migrates_and_passes_its_checks(venv, project):
    manage = [venv / "bin" / "python", "manage.py"]
    env = clean_environment(venv)
    migrations = run([*manage, "showmigrations", APP], cwd=project, env=env, timeout=60)
    assert "[X] 0001_initial" in migrations
    assert "[ ]" not in migrations, migrations
    unsigned = subprocess.run([*manage, "check"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    assert unsigned.returncode == 0
    assert "eventsourcing.W001" in unsigned.stderr  # no signing key yet: said, not fatal
    env["LEDGER_SIGNING_KEY"] = generate_private_key_pem().decode()
    run([*manage, "check", "--fail-level", "WARNING"], cwd=project, env=env, timeout=60)


def test_the_readme_example_runs_in_the_new_project(venv, project):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README.md has no python example"
    manage = [venv / "bin" / "python", "manage.py"]
    env = clean_environment(venv)
    output = run([*manage, "shell", "-c", blocks[0]], cwd=project, env=env, timeout=120)
    assert "1 2" in output.splitlines(), output  # the conflict's expected and actual versions
    # The example stored events; the management commands (and tqdm) verify their hash chain.
    verified = run([*manage, "verify_events", "--no-progress"], cwd=project, env=env, timeout=60)
    assert "the log is intact" in verified, verified
