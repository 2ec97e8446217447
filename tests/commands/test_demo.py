"""`syncengine demo` runs a day on the embedded default and every system ends up holding the same."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.slow  # 90 s: `pytest -m slow` (CI's second step) or naming this file runs it
def test_demo_runs_every_step_and_ends_with_matching_systems(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["TMPDIR"] = str(tmp_path)
    command = [sys.executable, "-m", "syncengine", "demo"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.count("✓ done") == out.count("\n● ") >= 6, out
    assert "✗" not in out
    table = out.split("What each system holds now:")[1].splitlines()
    assert [line.split() for line in table if line.split()[:1] and line.split()[0] != "mautic"] == [
        ["contacts", "1", "1", "1", "1"],
        ["products", "-", "1", "1", "1"],
        ["invoices", "-", "1", "1", "1"],
        ["payments", "-", "1", "1", "1"],
        ["emails", "2", "-", "-", "-"],  # the invoice email and the receipt, once each
    ]
    assert list(tmp_path.glob("syncengine-demo-*")) == []  # its folder is gone (kept only with --keep)
    assert "kept " not in out
