"""`syncengine status` reads at a glance: problems first (failed and stuck work with reasons, retrying events
with their last error and next attempt, open breakers, stale sweeps, a token about to lapse), then the
healthy summary, in 100 columns; `--watch` refreshes until the backlog is drained and says so. Each test
runs on a database of its own, so it controls every row the screen shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from syncengine import inbox
from syncengine.models import InboxEvent, InboxStatus, OAuthToken, OutboxTask, SyncCursor, TaskState, utcnow
from tests.support import ROOT
from tests.terminal import on_a_terminal


def status(database: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncengine", "status", *args], cwd=ROOT, text=True,
                          env={**os.environ, "DATABASE_URL": database, **env}, capture_output=True,
                          timeout=120)  # fmt: skip


def event(session: Session, n: int, **values: object) -> InboxEvent:
    row = InboxEvent(source="mautic", event_id=f"screen-{n}-{time.time_ns()}",
                     event_type="mautic.lead_post_save_update", payload={}, **values)  # fmt: skip
    session.add(row)
    session.flush()
    return row


def test_problems_come_first_with_their_reasons_and_fit_100_columns(own_database: str):
    now = utcnow()
    with Session(create_engine(own_database)) as s, s.begin():
        long_reason = "Permanent: 422 from Mautic: " + "the email is not valid, Mautic says at length " * 3
        failed = event(s, 1, status=InboxStatus.FAILED, attempts=8, last_error=long_reason).id
        retry_at = now + timedelta(minutes=4)
        retrying = event(s, 2, status=InboxStatus.RECEIVED, attempts=3, available_at=retry_at,
                         last_error="Retryable: mautic answered 503").id  # fmt: skip
        for n in range(3):
            event(s, 10 + n, status=InboxStatus.DONE)
        s.add(SyncCursor(system="invoiceninja", kind="contact", cursor=now.isoformat(),
                         swept_at=now - timedelta(hours=2)))  # fmt: skip
        s.add(SyncCursor(system="invoiceninja", kind="product", cursor=now.isoformat(), swept_at=now))
        expired = now - timedelta(minutes=3)
        s.add(
            OAuthToken(provider="revolut", access_token_enc=b"x", refresh_token_enc=b"y", expires_at=expired)
        )
        s.add(OAuthToken(provider="revolut:webhook", access_token_enc=b"z"))  # a signing secret: no token
    screen = status(own_database, INVOICENINJA_URL="http://127.0.0.1:9", INVOICENINJA_TOKEN="t")
    assert screen.returncode == 0, screen.stderr
    lines = screen.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), [line for line in lines if len(line) > 100]
    text = screen.stdout
    problems, summary = text.split("inbox events:")
    assert problems.startswith("PROBLEMS: 4\n")
    assert f"#{failed} mautic mautic.lead_post_save_update x8: Permanent: 422 from Mautic" in problems
    assert f"#{retrying} mautic mautic.lead_post_save_update x3, next attempt in 3 min" in problems
    assert "Retryable: mautic answered 503" in " ".join(problems.split())  # wrapped under its item
    assert "stale sweeps" in problems and "  invoiceninja contact: 2 h ago (runs every 5 min)" in problems
    assert "invoiceninja product" not in problems
    assert "revolut: access token expired 3 min" in problems and "is beat running?" in problems
    assert summary.startswith(" waiting 0 · retrying 1 · processing 0 · done 3 · failed 1 · ignored 0")
    report = json.loads(status(own_database, "--json", INVOICENINJA_URL="http://127.0.0.1:9").stdout)
    assert report["problems"] == 4 and report["retrying_count"] == 1
    assert [t["provider"] for t in report["tokens"]] == ["revolut"]
    assert [c["stale"] for c in report["cursors"]] == [True, False]


def test_a_clean_store_says_so_first(own_database: str):
    screen = status(own_database)
    assert screen.stdout.startswith("no problems: every push, effect and event is done or on its way\n")


def test_watch_refreshes_until_the_backlog_is_drained(own_database: str):
    """Not on a terminal: one line per refresh with the pace, and the end said. What retries after an error
    is a problem on the screen, not backlog, so it cannot keep the watch going."""
    engine = create_engine(own_database)
    with Session(engine) as s, s.begin():
        waiting = [event(s, n).id for n in range(40)]
        event(s, 99, status=InboxStatus.RECEIVED, attempts=1, last_error="Retryable: 503",
              available_at=utcnow() + timedelta(hours=1))  # fmt: skip
        s.add(OutboxTask(task="tasks.push.push", args={"args": [1, "erpnext"]}, state=TaskState.PENDING))
    watcher = subprocess.Popen([sys.executable, "-m", "syncengine", "status", "--watch", "--interval", "0.3"],
                               cwd=ROOT, env={**os.environ, "DATABASE_URL": own_database}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    first = watcher.stdout.readline()
    assert first.startswith("backlog: 40 events and 1 pushes/tasks waiting"), first

    def workers() -> None:  # what the workers would do: the events one by one, then the push
        with Session(engine) as s:
            for inbox_id in waiting:
                with s.begin():
                    s.execute(
                        update(InboxEvent).where(InboxEvent.id == inbox_id).values(status=InboxStatus.DONE)
                    )
                time.sleep(0.03)
            with s.begin():
                s.query(OutboxTask).delete()

    threading.Thread(target=workers, daemon=True).start()
    rest, err = watcher.communicate(timeout=120)
    assert watcher.returncode == 0, err
    lines = rest.splitlines()
    assert any("draining" in line and "/s, ETA" in line for line in lines), lines
    assert lines[-1].startswith("backlog drained after ")
    assert lines[-1].endswith(
        "every event, push and task is done or failed; 1 retrying after an error (listed above)"
    )


def test_watch_on_a_terminal_redraws_the_screen(own_database: str):
    with Session(create_engine(own_database)) as s, s.begin():
        inbox_id = event(s, 1, status=InboxStatus.FAILED, attempts=8, last_error="Permanent: gone").id
    screen = on_a_terminal(
        "status", "--watch", env={**os.environ, "DATABASE_URL": own_database}, stdout_too=True
    )
    assert screen.returncode == 0
    assert f"#{inbox_id} mautic mautic.lead_post_save_update x8: Permanent: gone" in screen.terminal
    assert "backlog drained: every event, push and task is done or failed" in screen.terminal


def test_inbox_counts_split_retrying_from_waiting(own_database: str):
    with Session(create_engine(own_database)) as s, s.begin():
        row = event(s, 1)
        inbox.fail(row, "Retryable: timeout", max_attempts=8, retry_in=60)
    report = json.loads(status(own_database, "--json").stdout)
    assert report["events"]["received"] == 1 and report["retrying_count"] == 1
    assert report["retrying"][0]["error"] == "Retryable: timeout"


def test_a_long_list_says_how_many_more_and_the_count_is_the_total(own_database: str):
    with Session(create_engine(own_database)) as s, s.begin():
        for n in range(23):
            event(s, n, status=InboxStatus.FAILED, attempts=8, last_error="Permanent: nope")
    screen = status(own_database).stdout
    assert screen.startswith("PROBLEMS: 23\n")
    assert screen.count("x8: Permanent: nope") == 20 and "  … and 3 more\n" in screen
