"""requirements.lock: what Heroku and Dokku install (requirements.txt points at it), hash-pinned, and made
from pyproject.toml's dependencies as they are; .ci/lock.py --check (run by .ci/run) says when it is not."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from packaging.requirements import Requirement

from tests.support import ROOT

spec = importlib.util.spec_from_file_location("lock_tool", ROOT / ".ci" / "lock.py")
assert spec is not None and spec.loader is not None
lock_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock_tool)


def test_the_lock_matches_pyproject_and_ci_checks_it():
    assert lock_tool.problems(lock_tool.LOCK.read_text(), lock_tool.dependencies()) == []
    run = subprocess.run([sys.executable, ".ci/lock.py", "--check"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 0 and run.stderr == ""
    assert ".ci/lock.py --check" in (ROOT / ".ci" / "run").read_text()


def test_the_check_finds_a_lock_that_no_longer_matches():
    text = lock_tool.LOCK.read_text()
    deps = lock_tool.dependencies()
    added = [*deps, Requirement("left-pad>=1")]
    assert any("changed since" in p for p in lock_tool.problems(text, added))
    assert any("left-pad is not pinned" in p for p in lock_tool.problems(text, added))
    raised = [Requirement("gunicorn>=99") if r.name == "gunicorn" else r for r in deps]
    assert any("gunicorn==" in p and "outside" in p for p in lock_tool.problems(text, raised))
    unhashed = re.sub(r"(pillow==[^\s]+) \\\n(\s+--hash=sha256:\w+ \\\n)*\s+--hash=sha256:\w+", r"\1", text)
    assert "pillow has no hash" in lock_tool.problems(unhashed, deps)
    assert lock_tool.problems("", deps)[0].startswith("requirements.lock has no dependencies-sha256")


def test_deploys_install_the_lock_and_run_from_the_source_tree():
    lines = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x and not x.startswith("#")]
    assert lines == ["-r requirements.lock"]
    for line in (ROOT / "Procfile").read_text().splitlines():
        assert line.split(":", 1)[1].strip().startswith("python -m syncengine "), line


def test_floors_stay_above_releases_with_advisories():
    floors = {r.name: r.specifier for r in lock_tool.dependencies()}
    for name, first_safe, last_unsafe in (("gunicorn", "23.0.0", "22.0.0"), ("pillow", "12.2.0", "12.1.1"),
                                          ("requests", "2.33.0", "2.32.5")):  # fmt: skip
        assert floors[name].contains(first_safe) and not floors[name].contains(last_unsafe), name
