"""Receiver → broker → a real worker → handler, counted from what the worker really ran."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from sqlalchemy import select

from syncengine import inbox
from syncengine.db import get_engine, session_scope
from syncengine.models import InboxEvent
from tasks import dispatch
from tests.conftest import record_lines
from tests.support import dumps, sample, sign, wait_until


def event_row(inbox_id: int) -> InboxEvent:
    with session_scope() as s:
        return s.get(InboxEvent, inbox_id)


def wait_status(inbox_id: int, status: str, timeout: float = 30) -> InboxEvent:
    wait_until(lambda: event_row(inbox_id).status == status, timeout=timeout)
    return event_row(inbox_id)


def deliver(receiver: str, sender: str, n: str, test: dict | None = None) -> requests.Response:
    path, payload = sample(sender, n, test)
    body = dumps(payload)
    return requests.post(receiver + path, data=body, headers=sign(sender, body), timeout=10)


def test_webhook_is_processed_once_by_the_worker(receiver, worker):
    response = deliver(receiver, "invoiceninja", f"e2e-{time.time_ns()}")
    assert response.status_code == 202
    (inbox_id,) = response.json()["accepted"]
    row = wait_status(inbox_id, "done")
    assert row.attempts == 1 and row.processed_at is not None
    assert len(record_lines("handler", inbox_id)) == 1
    assert len(record_lines("task", inbox_id)) == 1


def test_same_event_eight_times_five_concurrently(receiver, worker):
    n = f"dup8-{time.time_ns()}"
    with ThreadPoolExecutor(max_workers=5) as pool:
        concurrent = list(pool.map(lambda _: deliver(receiver, "revolut", n), range(5)))
    sequential = [deliver(receiver, "revolut", n) for _ in range(3)]
    codes = sorted(r.status_code for r in concurrent + sequential)
    assert codes == [200] * 7 + [202]
    (inbox_id,) = next(r for r in concurrent + sequential if r.status_code == 202).json()["accepted"]
    with session_scope() as s:
        rows = s.execute(
            select(InboxEvent).where(InboxEvent.event_id == f"PayoutLinkCreated:pl-{n}:created")
        ).all()
    assert len(rows) == 1
    wait_status(inbox_id, "done")
    time.sleep(1)  # room for any stray duplicate task to show up before counting
    assert len(record_lines("task", inbox_id)) == 1
    assert len(record_lines("handler", inbox_id)) == 1


def test_unknown_event_type_is_stored_and_ignored(receiver, worker):
    body = dumps(
        {"event": "ghosts.items.update", "payload": {"status": "paid"}, "keys": [f"{time.time_ns()}"]}
    )
    response = requests.post(
        receiver + "/webhooks/directus", data=body, headers=sign("directus", body), timeout=10
    )
    assert response.status_code == 202
    (inbox_id,) = response.json()["accepted"]
    assert wait_status(inbox_id, "ignored").attempts == 1
    assert record_lines("handler", inbox_id) == []


def test_failing_handler_is_retried_then_done(receiver, worker):
    response = deliver(receiver, "mautic", str(time.time_ns()), test={"fail_times": 2})
    (inbox_id,) = response.json()["accepted"]
    row = wait_status(inbox_id, "done", timeout=60)
    assert row.attempts == 3
    assert len(record_lines("handler", inbox_id)) == 3


def test_failing_for_good_is_failed_with_a_redacted_reason(monkeypatch):
    """In-process and never published, to skip the backoff: after the last allowed attempt the event is
    failed for good."""
    import tests.plugins.recording  # noqa: F401 - registers the handlers in this process

    monkeypatch.setattr(dispatch, "backoff", lambda attempt: 0.0)
    _, payload = sample("erpnext", "poison", test={"fail_times": 99})
    with get_engine().begin() as conn:
        (inbox_id,) = inbox.store(
            conn, [inbox.NewEvent("erpnext", f"poison-{time.time_ns()}", "ToDo:on_update", payload)]
        )
    outcomes = [dispatch.run(inbox_id)[0] for _ in range(8)]
    assert outcomes == ["retry"] * 7 + ["failed"]
    row = event_row(inbox_id)
    assert row.status == "failed" and row.attempts == 8
    assert "planned failure 8" in row.last_error and "sk-should-not-leak" not in row.last_error
    assert dispatch.run(inbox_id)[0] == "skipped"


def test_worker_killed_mid_handler_is_redelivered_after_the_lease(receiver, worker):
    response = deliver(receiver, "erpnext", f"kill-{time.time_ns()}", test={"sleep_first": 30})
    (inbox_id,) = response.json()["accepted"]
    line = wait_until(lambda: record_lines("handler", inbox_id), timeout=20)[0]
    pid = int(line.rsplit("pid=", 1)[1])
    os.kill(pid, signal.SIGKILL)
    row = event_row(inbox_id)
    assert row.status == "processing" and row.attempts == 1
    # The requeued message finds a live claim and skips; once the lease (6 s here) is over, the
    # redelivery sweep publishes it again and a healthy pool process finishes it.
    time.sleep(6.5)
    assert inbox_id in _redeliver_now()
    row = wait_status(inbox_id, "done")
    assert row.attempts == 2
    handler_runs = record_lines("handler", inbox_id)
    assert [r.split()[4] for r in handler_runs] == ["attempt=1", "attempt=2"]


def _redeliver_now() -> list[int]:
    with session_scope() as s:
        ids = inbox.due_for_redelivery(s, lease=timedelta(seconds=6), grace=timedelta(0))
    for inbox_id in ids:
        dispatch.process.apply_async((inbox_id,))
    return ids


def test_chunked_body_over_the_limit_is_413(receiver):
    """No Content-Length: gunicorn streams the body and the limit still holds while reading."""
    host, port = receiver.removeprefix("http://").split(":")
    body = b'{"event": "x", "pad": "' + b"y" * (1024 * 1024 - 24) + b'"}'
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = sign("directus", body)
    conn.putrequest("POST", "/webhooks/directus")
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for i in range(0, len(body), 65536):
        chunk = body[i : i + 65536]
        try:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            break
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        conn.send(b"0\r\n\r\n")
    assert conn.getresponse().status == 413
