"""The embedded default: no Postgres, no Redis. `syncengine up` runs web + worker + beat on one SQLite
file and a SQLite broker, carries a webhook end to end, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import requests

from tests.conftest import WORK
from tests.support import ROOT, dumps, free_port, sample, sign, wait_for_port, wait_until


def embedded_env(home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SYNCENGINE_HOME=str(home), SYNCENGINE_TEST_RECORD=str(home / "record.log"))
    return env


def test_up_runs_a_webhook_end_to_end_without_postgres_or_redis(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    log = open(WORK / "embedded-up.log", "wb")  # noqa: SIM115 - closed below
    up = subprocess.Popen(
        [sys.executable, "-m", "syncengine", "up", "--port", str(port)],
        env=embedded_env(home), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        path, payload = sample("invoiceninja", f"embedded-{time.time_ns()}")
        body = dumps(payload)
        response = requests.post(
            f"http://127.0.0.1:{port}{path}", data=body, headers=sign("invoiceninja", body), timeout=10
        )
        assert response.status_code == 202
        (inbox_id,) = response.json()["accepted"]

        def status() -> str:
            with sqlite3.connect(home / "syncengine.sqlite3") as db:
                return db.execute("SELECT status FROM inbox_events WHERE id = ?", (inbox_id,)).fetchone()[0]

        wait_until(lambda: status() == "done", timeout=60, interval=0.3)
        assert (home / "record.log").read_text().count(f"handler {inbox_id} ") == 1

        report = subprocess.run(
            [sys.executable, "-m", "syncengine", "status", "--json"],
            env=embedded_env(home), cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert json.loads(report.stdout)["events"]["done"] == 1
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            returncode = up.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    assert returncode == 0, (WORK / "embedded-up.log").read_text()[-3000:]
