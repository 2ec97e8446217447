"""On the embedded default (no REDIS_URL) the shared counters live in the store of shared state, as the
breakers do, so /metrics still sums every process: here two processes count and a third scrapes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

COUNT = """
from syncengine import counters
counters.add("webhooks_received", {("mautic", "202"): 2, ("erpnext", "401"): 1})
"""
SCRAPE = """
from syncengine import metrics
print(metrics.render().decode())
"""


def run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counters_without_redis_are_shared_across_processes(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_TLS_URL")}
    env["SYNCENGINE_HOME"] = str(tmp_path)
    run("from syncengine import migrate; migrate.upgrade()", env)
    run(COUNT, env)
    run(COUNT, env)
    text = run(SCRAPE, env)
    assert 'syncengine_webhooks_received_total{code="202",sender="mautic"} 4.0' in text
    assert 'syncengine_webhooks_received_total{code="401",sender="erpnext"} 2.0' in text
    assert 'syncengine_inbox_events{status="received"} 0.0' in text
