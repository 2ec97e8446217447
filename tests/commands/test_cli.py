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
    assert f"replaying 1 event(s): {inbox_id}" in result.stdout
    # It waited for the outcome and says it.
    assert f"event #{inbox_id} directus test_events.items.create: done" in result.stdout
    assert "1 done, 0 failed, 0 retrying" in result.stdout
    with session_scope() as s:
        assert s.get(InboxEvent, inbox_id).status == "done"

    unknown = syncengine("replay", "999999999")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip() == (
        "no event '999999999' in the inbox: give its inbox id (#123 in `syncengine status`) "
        "or its event_id as a log line prints it"
    )


def give_up(inbox_id: int) -> None:
    with session_scope() as s:
        row = s.get(InboxEvent, inbox_id)
        row.attempts = 8
        inbox.fail(row, "gave up", max_attempts=8, retry_in=0)


def test_replay_takes_the_event_id_as_the_log_line_prints_it(worker):
    """The log line says `"sender": "invoiceninja", "event_id": "invoiceninja:client:…"`: pasting that id
    is enough, as is `#id` as status shows it."""
    event_id = f"invoiceninja:client:{time.time_ns()}:1732000000"
    with get_engine().begin() as conn:
        (inbox_id,) = inbox.store(
            conn, [inbox.NewEvent("directus", event_id, "test_events.items.create", {})]
        )
    give_up(inbox_id)
    pasted = syncengine("replay", event_id)
    assert pasted.returncode == 0, pasted.stderr
    assert f"replaying 1 event(s): {inbox_id}" in pasted.stdout
    assert f"event #{inbox_id} directus test_events.items.create: done" in pasted.stdout
    again = syncengine("replay", f"#{inbox_id}", "--no-wait")
    assert again.returncode == 0 and f"replaying 1 event(s): {inbox_id}" in again.stdout
    assert "status --watch" in again.stdout


def test_replay_says_when_the_event_fails_again(worker):
    """The recording plugin fails an event whose payload asks it to: the outcome is the failed attempt, its
    reason and the next attempt, and the exit code says it."""
    with get_engine().begin() as conn:
        (inbox_id,) = inbox.store(conn, [inbox.NewEvent(
            "directus", f"again-{time.time_ns()}", "test_events.items.create", {"test": {"fail_times": 99}},
        )])  # fmt: skip
    give_up(inbox_id)
    result = syncengine("replay", str(inbox_id))
    assert result.returncode == 1, result.stdout + result.stderr
    line = f"event #{inbox_id} directus test_events.items.create: retrying (next attempt "
    assert line in result.stdout and "RuntimeError: planned failure 1" in result.stdout
    assert (
        "0 done, 0 failed, 1 retrying" in result.stdout
        and "fix the cause, then replay again" in result.stdout
    )


def test_status_shows_an_open_breaker_among_the_problems():
    from syncengine.breaker import breaker_for

    breaker = breaker_for("mautic")
    for _ in range(breaker.policy.threshold):
        breaker.record_failure()
    try:
        screen = syncengine("status").stdout
        problems, summary = screen.split("inbox events:")
        assert "open circuit breakers" in problems and "  mautic open" in problems
        assert "mautic open" in summary
    finally:
        breaker.store.close("mautic")


def test_simulate_serves_a_vendor_simulator_and_says_how_to_point_the_engine_at_it():
    import requests

    from tests.support import free_port, wait_until

    port = free_port()
    command = [sys.executable, "-m", "syncengine", "simulate", "mautic", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(6)]
        assert lines[0].startswith(f"mautic simulator on http://127.0.0.1:{port}")
        assert (
            lines[1].strip()
            == "credentials it accepts: MAUTIC_USERNAME=admin MAUTIC_PASSWORD=sim-mautic-pass"
        )
        export = lines[3].strip()
        assert export.startswith(f"export MAUTIC_URL=http://127.0.0.1:{port} MAUTIC_USERNAME=admin ")
        assert "MAUTIC_WEBHOOK_SECRET=" in export
        # The credentials printed are the ones it accepts.
        answer = wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/api/contacts",
                                                 auth=("admin", "sim-mautic-pass"), timeout=5))  # fmt: skip
        assert answer.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
