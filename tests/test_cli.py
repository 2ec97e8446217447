"""The CLI as an operator uses it: status, replay, db upgrade."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from syncengine import inbox
from syncengine.db import get_engine, session_scope
from syncengine.models import InboxEvent
from tests.support import ROOT


def syncengine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "syncengine", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_db_upgrade_is_idempotent():
    result = syncengine("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "upgraded to head" in result.stdout


def test_status_json_counts_failed_events_with_reasons():
    with get_engine().begin() as conn:
        (inbox_id,) = inbox.store(conn, [inbox.NewEvent("directus", f"cli-{time.time_ns()}", "x.y", {})])
    with session_scope() as s:
        row = s.get(InboxEvent, inbox_id)
        row.attempts = 8
        inbox.fail(row, "Permanent: 422 from Invoice Ninja", max_attempts=8, retry_in=0)
    result = syncengine("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"]["failed"] >= 1
    assert any(f["id"] == inbox_id and "422" in f["error"] for f in report["failed"])
    assert set(report["queues"]) == {"intake", "sync", "ocr", "sweeps"}
    assert all(isinstance(v, int) for v in report["queues"].values())
    assert report["breakers"] == dict.fromkeys(
        ["invoiceninja", "revolut", "erpnext", "mautic", "directus", "openai"], "closed"
    )
    human = syncengine("status")
    assert f"#{inbox_id} directus x.y x8" in human.stdout


def test_replay_reopens_and_publishes(worker):
    with get_engine().begin() as conn:
        (inbox_id,) = inbox.store(
            conn, [inbox.NewEvent("directus", f"replay-{time.time_ns()}", "test_events.items.create", {})]
        )
    with session_scope() as s:
        row = s.get(InboxEvent, inbox_id)
        row.attempts = 8
        inbox.fail(row, "gave up", max_attempts=8, retry_in=0)
    result = syncengine("replay", str(inbox_id))
    assert result.returncode == 0, result.stderr
    assert f"replayed 1 event(s): {inbox_id}" in result.stdout

    from tests.support import wait_until

    def done() -> bool:
        with session_scope() as s:
            return s.get(InboxEvent, inbox_id).status == "done"

    wait_until(done, timeout=30)
    assert syncengine("replay", "999999999").returncode == 1


def test_status_shows_an_open_breaker():
    from syncengine.breaker import breaker_for

    breaker = breaker_for("mautic")
    for _ in range(breaker.policy.threshold):
        breaker.record_failure()
    try:
        result = syncengine("status")
        assert "mautic        open" in result.stdout
    finally:
        breaker.store.close("mautic")


def test_simulate_serves_a_vendor_simulator():
    import requests

    from tests.support import free_port, wait_for_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "syncengine", "simulate", "directus", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port)
        response = requests.get(f"http://127.0.0.1:{port}/items/contacts", timeout=5)
        assert response.status_code in (401, 403)
        assert "errors" in response.json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
