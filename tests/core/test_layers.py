"""The core is the ground floor (docs/architecture.md, Layers): nothing in syncengine/ imports a package
above it, not even inside a function, except `python -m syncengine` calling the command line; and the
benchmarks import nothing from the tests."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

ABOVE_THE_CORE = {"tasks", "webhooks", "connectors", "simulators", "commands", "bench", "tests"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def upward(package: str, forbidden: set[str], allowed: tuple[str, ...] = ()) -> dict[str, set[str]]:
    files = [p for p in (ROOT / package).rglob("*.py") if str(p.relative_to(ROOT)) not in allowed]
    assert len(files) > 3, f"no {package}/ files found under {ROOT}"
    found = {str(p.relative_to(ROOT)): imported_packages(p) & forbidden for p in files}
    return {name: packages for name, packages in found.items() if packages}


def test_the_core_imports_nothing_above_it():
    assert upward("syncengine", ABOVE_THE_CORE, allowed=("syncengine/__main__.py",)) == {}


def test_python_m_syncengine_is_the_one_exception_and_it_runs_the_command_line():
    assert imported_packages(ROOT / "syncengine" / "__main__.py") & ABOVE_THE_CORE == {"commands"}


def test_the_benchmarks_import_nothing_from_the_tests():
    assert upward("bench", {"tests"}) == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tasks.dispatch import process\n    import connectors.adapters\n")
    assert imported_packages(module) == {"tasks", "connectors"}
