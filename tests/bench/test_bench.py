"""Every benchmark runs, in its short mode, so none rots (issue 19): each must exit 0 and print its figures.
A benchmark refusing a non-2xx answer, finding a duplicate or losing an object exits non-zero, and fails here.

They run on this session's Postgres server (a scratch database each) and a Redis database claimed for them
(BENCH_REDIS_DB), never the session's own: the benchmarks flush theirs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from connectors.tesseract_ocr import available as tesseract_available
from tests.conftest import ADMIN_URL, REDIS_BASE
from tests.servers import claim_redis_db
from tests.support import ROOT

# script -> a line its output must hold
SCRIPTS = {
    "backfill.py": "syncengine CPU: ",
    "convergence.py": "divergent               0",
    "connectors.py": "mautic",
    "flows.py": "burst of 10: 10 landed",
    "intake.py": "floor/hello-world",
    "reconcile.py": "req/change",
    "soak.py": "duplicated effects   0",
    "ocr.py": "seconds per page",
}
BENCH_REDIS = {"db": None}


def _env() -> dict[str, str]:
    if BENCH_REDIS["db"] is None:
        BENCH_REDIS["db"] = claim_redis_db(REDIS_BASE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCENGINE_")}
    env.update(DATABASE_URL=ADMIN_URL, REDIS_URL=REDIS_BASE, BENCH_REDIS_DB=str(BENCH_REDIS["db"]))
    return env


def test_every_bench_script_has_a_short_run():
    found = {p.name for p in (ROOT / "bench").glob("*.py")}
    modules = {
        "__init__.py",
        "checked.py",
        "cpu.py",
        "loadgen.py",
        "scratch.py",
        "naive_sync.py",
        "existing_data.py",
        "sweep_scale.py",
    }
    assert found - modules == set(SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_bench_script_runs_short(script):
    if script == "ocr.py" and not tesseract_available():
        pytest.skip("tesseract is not installed (bench/ocr.py needs it)")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--short"], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    said = f"{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, f"{script} exited {run.returncode}:\n{said}"
    assert SCRIPTS[script] in run.stdout, run.stdout
