"""docs/architecture.md stays true: every path and module it names exists."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"`((?:eventsourcing_app|bankdemo|tests)/[\w/.]*)`")
MODULE = re.compile(r"\b((?:eventsourcing_app|bankdemo)(?:\.[a-z_]+)+)")


def test_every_path_the_architecture_page_names_exists():
    named = PATH.findall(DOC.read_text())
    assert len(named) > 30
    missing = [path for path in named if not (ROOT / path).exists()]
    assert missing == []


def test_every_module_the_architecture_page_names_can_be_found():
    named = set(MODULE.findall(DOC.read_text()))
    assert named
    missing = [name for name in sorted(named) if importlib.util.find_spec(name) is None]
    assert missing == []


def test_every_folder_of_the_app_is_on_the_page():
    text = DOC.read_text()
    folders = [
        path.name
        for path in (ROOT / "eventsourcing_app").iterdir()
        if path.is_dir() and (path / "__init__.py").exists() and path.name != "migrations"
    ]
    assert sorted(f for f in folders if f"`eventsourcing_app/{f}/" not in text) == []
