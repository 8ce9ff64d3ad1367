"""Who may import whom: the benchmarks share ``coinmarket_testkit`` with the tests but never
import the test package, and the product imports neither."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def imported_packages(source: str) -> set[str]:
    """The top-level packages that ``source`` imports, wherever the import statement stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def importers(folder: str, package: str) -> list[str]:
    """The Python files below ``folder`` of the project that import ``package``."""
    return [
        str(path.relative_to(PROJECT))
        for path in sorted((PROJECT / folder).rglob("*.py"))
        if package in imported_packages(path.read_text())
    ]


def test_imports_are_found_at_module_level_and_inside_functions():
    source = (
        "import coinmarket_testkit.server\n"
        "def run():\n"
        "    from coinmarket_assets_tests.dagster_runs import read_table\n"
        "from . import sibling\n"
    )
    assert imported_packages(source) == {"coinmarket_testkit", "coinmarket_assets_tests"}


def test_no_benchmark_imports_the_test_package():
    assert importers("benchmarks", "coinmarket_testkit"), "the benchmarks use the testkit"
    assert importers("benchmarks", "coinmarket_assets_tests") == []


@pytest.mark.parametrize("package", ["coinmarket_testkit", "coinmarket_assets_tests"])
def test_the_product_imports_no_test_code(package: str):
    assert importers("coinmarket_assets", package) == []


def test_the_testkit_is_installed_with_the_project(tmp_path: Path):
    """Importable from any folder, as ``pip install -e .`` makes it, not only from the
    checkout (where pytest and ``python -m`` put the project folder on the path)."""
    done = subprocess.run(
        [sys.executable, "-c", "import coinmarket_testkit.synthetic as m; print(m.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(PROJECT / "coinmarket_testkit")
