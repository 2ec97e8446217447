"""Replay of a captured valid webhook (tests/webhooks/test_signatures.py has the signature matrix for every
sender: valid, wrong secret, one byte changed, header missing, Revolut's window and rotation). Here the exact
bytes and headers of a webhook that was accepted are sent again through the real receiver and worker:

- Revolut signs a timestamp: a capture replayed after the 5-minute window is 401 and stores nothing, and a
  replay inside the window is the same event (200 duplicate);
- the senders without a timestamp (Invoice Ninja, ERPNext, Mautic, Directus): the replay is a duplicate of
  the stored event id, answered 200 and processed no further."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.faults.conftest import Stack, handler_runs, statuses, unique
from tests.support import SENDERS, dumps, sample, sign, wait_until

WINDOW = 300


def rows(source: str) -> int:
    with session_scope() as s:
        return s.execute(select(func.count()).where(InboxEvent.source == source)).scalar_one()


def test_a_captured_webhook_replayed_is_a_duplicate_and_processed_once(stack: Stack):
    tag = unique()
    captured = {}
    for sender in SENDERS:
        path, payload = sample(sender, f"replay-{tag}")
        body = dumps(payload)
        headers = sign(sender, body)
        first = stack.post(path, body, headers)
        assert first.status_code == 202, (sender, first.text)
        captured[sender] = (path, body, headers, first.json()["accepted"])
    ids = [i for *_, accepted in captured.values() for i in accepted]
    wait_until(lambda: set(statuses(ids).values()) == {"done"}, timeout=60)

    for sender, (path, body, headers, _) in captured.items():
        before = rows(sender)
        again = stack.post(path, body, headers)
        assert (again.status_code, again.json()) == (200, {"duplicate": True}), sender
        assert rows(sender) == before
    stack.settle()  # a replay that slipped into the queue would have run by now
    assert set(handler_runs(ids).values()) == {1}
    assert set(statuses(ids).values()) == {"done"}


def test_a_revolut_webhook_captured_and_replayed_after_the_window_is_refused(stack: Stack):
    path, payload = sample("revolut", f"late-{unique()}")
    body = dumps(payload)
    six_minutes_ago = int((time.time() - WINDOW - 60) * 1000)
    headers = sign("revolut", body, timestamp_ms=six_minutes_ago)  # valid when it was sent
    before = rows("revolut")
    late = stack.post(path, body, headers)
    assert late.status_code == 401
    assert late.json() == {"error": "signature verification failed"}
    assert rows("revolut") == before
    fresh = stack.post(path, body, sign("revolut", body))  # the same event, signed now, still goes in
    assert fresh.status_code == 202
