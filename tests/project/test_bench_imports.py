"""The benchmark modules import downward only: no cycle among them, and none imports bench.run."""

import ast
import graphlib
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
ENTRY_POINT = "bench.run"


def module_name(path: Path) -> str:
    return "bench" if path.stem == "__init__" else f"bench.{path.stem}"


def imported(tree: ast.Module, modules: set[str]) -> set[str]:
    """The bench modules that `tree` imports anywhere, inside functions too, as run.py did."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            # A relative import inside bench/ starts from the package.
            base = ".".join(filter(None, ["bench" if node.level else None, node.module]))
            for alias in node.names:
                # `from bench import report` imports a module, `from bench.x import y` a name.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found & modules


def import_graph(folder: Path) -> dict[str, set[str]]:
    """Each module of the bench package -> the bench modules it imports, read without importing."""
    paths = sorted(folder.glob("*.py"))
    modules = {module_name(path) for path in paths}
    return {
        module_name(path): imported(ast.parse(path.read_text(), str(path)), modules)
        for path in paths
    }


def test_the_graph_sees_imports_inside_functions():
    # run.py imports the suite in main(), once Django is set up; a graph without it sees nothing.
    assert "bench.suite" in import_graph(BENCH)["bench.run"]


def test_the_bench_modules_import_one_another_without_a_cycle():
    graph = import_graph(BENCH)
    try:
        # The sorter takes each module's imports as its predecessors.
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        # The cycle lists each module before one that imports it; reversed, it reads as imports.
        cycle = " -> ".join(reversed(error.args[1]))
        raise AssertionError(f"the bench modules import in a circle: {cycle}") from None


def test_no_bench_module_imports_the_entry_point():
    graph = import_graph(BENCH)
    importers = sorted(module for module, targets in graph.items() if ENTRY_POINT in targets)
    assert not importers, f"{ENTRY_POINT} is the entry point only, yet imported by {importers}"
