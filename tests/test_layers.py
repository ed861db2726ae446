"""The layers point one way: the domain package ``market_intel`` loads no Dagster and imports
nothing of the Dagster layer (``assets``, ``data_checks``, ``pipelines``); no module reaches
into Dagster's or dagster-dbt's private names."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import market_intel
from market_intel.report_sections import numbered

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ROOT / "market_intel"
DAGSTER_LAYER = ("assets", "data_checks", "pipelines")
PRIVATE_NAME = re.compile(r"\b(dagster|dagster_dbt)\._")
# Modules allowed to use a private Dagster name, each with its reason documented in the module.
PRIVATE_SEAMS = {"pipelines/event_log.py"}


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_importing_every_domain_module_loads_no_dagster() -> None:
    script = (
        "import importlib, pkgutil, sys, market_intel\n"
        "for module in pkgutil.walk_packages(market_intel.__path__, 'market_intel.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('dagster', 'dagster_dbt')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]", f"importing market_intel loaded Dagster modules: {loaded}"


def test_the_domain_imports_nothing_of_the_dagster_layer() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] in DAGSTER_LAYER
        )
        for path in python_files("market_intel")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
    assert Path(market_intel.__file__).parent == DOMAIN


def test_no_module_uses_a_private_dagster_name() -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in python_files(*DAGSTER_LAYER, "market_intel", "bench", "tests")
        if PRIVATE_NAME.search(path.read_text(encoding="utf-8"))
        and path != Path(__file__).resolve()
    }
    assert users <= PRIVATE_SEAMS, f"private Dagster names outside the documented seam: {users}"


def test_sections_are_numbered_from_their_order() -> None:
    body = [
        {"id": "first", "title": "First"},
        {"id": "commentary", "title": "Commentary"},
        {"id": "second", "title": "Second"},
        {"id": "data_quality", "title": "Appendix: Data Quality"},
    ]
    titles = [entry["title"] for entry in numbered(body)]
    assert titles == ["1. First", "Commentary", "2. Second", "Appendix: Data Quality"]
