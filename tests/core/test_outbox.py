"""The outbox row's life on the real store: staged with the handler's writes, claimed by one worker at a
time, taken over when its lease lapsed or its process is gone, closed as done (and earlier failures of the
same push with it) or failed, and reopened by replay."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import Retry
from sqlalchemy import select, update

from syncengine import outbox
from syncengine.db import session_scope
from syncengine.models import OutboxTask, utcnow
from tasks.push import push


def staged(*args: object, inbox_id: int | None = None) -> int:
    with session_scope() as s:
        (item,) = outbox.stage(s, [push.s(*args)], inbox_id)
        return item.row_id


def state(row_id: int) -> tuple | None:
    with session_scope() as s:
        row = s.get(OutboxTask, row_id)
        return None if row is None else (row.state, row.attempts, row.claimed_by is not None, row.last_error)


def run_as_worker(task: Any, row_id: int, *, is_eager: bool) -> Any:
    """The task run as a worker runs the message of outbox row `row_id` (eager: a retry is raised here
    instead of sent to the broker)."""
    task.push_request(id=f"outbox-{row_id}", called_directly=False, is_eager=is_eager)
    try:
        return task()
    finally:
        task.pop_request()


def lock_holder_without_redis(monkeypatch: Any, name: str) -> tuple[Any, int]:
    """An outbox task that takes a lock, staged, with our Redis not there: (the task, its row)."""
    from syncengine import locks
    from syncengine.celery_app import app
    from tests.core.test_locks import redis_away

    monkeypatch.setattr(locks, "get_redis", redis_away)

    @app.task(name=f"tests.core.{name}", bind=True)
    def lock_holder(self: Any) -> str:
        with locks.lock(f"tests-core-{name}"):
            return "done"

    with session_scope() as s:
        (item,) = outbox.stage(s, [lock_holder.s()], None)
    return lock_holder, item.row_id


def set_row(row_id: int, **values: object) -> None:
    with session_scope() as s:
        s.execute(update(OutboxTask).where(OutboxTask.id == row_id).values(**values))


def test_a_staged_task_is_one_pending_row_naming_what_it_is_about():
    record = uuid.uuid4().int % 10**6
    row_id = staged(record, "directus", inbox_id=77)
    with session_scope() as s:
        row = s.get(OutboxTask, row_id)
        assert (row.task, row.state, row.attempts, row.inbox_id) == ("tasks.push.push", "pending", 0, 77)
        assert row.subject == f'[{record},"directus"]' and row.published_at is not None
    assert outbox.row_of(outbox.task_id(row_id)) == row_id and outbox.row_of("3f2a-uuid") is None


def test_one_claim_at_a_time_until_its_lease_lapses():
    row_id = staged(1, "directus")
    first = outbox.claim(row_id)
    assert first is not None and first.attempts == 1
    assert outbox.claim(row_id) is None  # held: a second message for it does nothing
    assert first.renew()
    set_row(row_id, locked_at=utcnow() - outbox.LEASE - timedelta(seconds=1), claimed_by="elsewhere:1:x")
    second = outbox.claim(row_id)
    assert second is not None and second.attempts == 2
    assert not first.renew()  # no longer ours


def test_a_claim_of_a_process_of_this_host_that_is_gone_is_taken_over_at_once():
    row_id = staged(2, "directus")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    set_row(
        row_id, state="running", locked_at=utcnow(), claimed_by=f"{outbox.HOST}:{gone.stdout.strip()}:old"
    )
    assert outbox.claim(row_id) is not None
    other_host = staged(3, "directus")
    set_row(other_host, state="running", locked_at=utcnow(), claimed_by=f"not-{outbox.HOST}:1:old")
    assert outbox.claim(other_host) is None  # another machine's live lease is left alone


def test_done_deletes_the_row_and_earlier_failures_of_the_same_push_only():
    record = uuid.uuid4().int % 10**6
    old_failure = staged(record, "erpnext")
    other = staged(record, "mautic")
    for row_id in (old_failure, other):
        claim = outbox.claim(row_id)
        claim.fail("erpnext kept email='old@x'")
    assert state(old_failure) == ("failed", 1, False, "erpnext kept email='old@x'")
    again = staged(record, "erpnext")
    outbox.claim(again).done()
    assert state(again) is None and state(old_failure) is None
    assert state(other)[0] == "failed"


def test_a_retry_puts_the_row_back_and_replay_reopens_a_failed_one_under_a_new_round():
    row_id = staged(4, "directus")
    claim = outbox.claim(row_id)
    claim.wait(30, "Retryable: 503")
    with session_scope() as s:
        row = s.get(OutboxTask, row_id)
        assert (row.state, row.last_error, row.claimed_by) == ("pending", "Retryable: 503", None)
        assert row.available_at > utcnow() + timedelta(seconds=25)
    outbox.claim(row_id).fail("push of record 4 to directus: 417")
    with session_scope() as s:
        assert row_id in outbox.failed_ids(s)
        (item,) = outbox.reopen(s, [row_id])
        assert item.row_id == row_id and item.signature.args == (4, "directus")
    with session_scope() as s:
        row = s.execute(select(OutboxTask).where(OutboxTask.id == row_id)).scalar_one()
        assert (row.state, row.attempts, row.replays, row.last_error) == ("pending", 0, 1, None)
    assert outbox.claim(row_id).replays == 1


def test_outside_an_outbox_task_a_failure_is_only_its_outcome():
    assert outbox.current() is None and outbox.replay_round() == 0
    assert outbox.failed("reason") == "failed" and outbox.failed("reason", "gave up") == "gave up"


def test_a_killed_workers_push_is_redriven_within_2_minutes_with_the_production_timings():
    """The lease lapses at most LEASE after the last renewal, and the beat's redelivery runs every minute."""
    from beat_schedule import BEAT_SCHEDULE

    redelivery = BEAT_SCHEDULE["inbox-redelivery"]
    assert redelivery["task"] == "tasks.dispatch.redeliver"
    assert outbox.LEASE.total_seconds() + redelivery["schedule"] <= 90


def test_our_redis_away_under_an_outbox_task_retries_it_and_does_not_fail_it_for_good(monkeypatch):
    """redis-py's ConnectionError is not the builtin one: a task meeting a Redis restart (a lock, a breaker)
    went failed for good on its first try, and its push was lost until a person replayed it."""
    lock_holder, row_id = lock_holder_without_redis(monkeypatch, "lock_holder")
    # As the worker runs it, except that the retry is raised here instead of sent to the broker.
    with pytest.raises(Retry):
        run_as_worker(lock_holder, row_id, is_eager=True)
    row_state, attempts, claimed, reason = state(row_id)
    assert (row_state, attempts, claimed) == ("pending", 1, False)  # back, for the retry to claim
    assert reason.startswith("ConnectionError: Error 111 connecting to 127.0.0.1")


def test_a_retry_the_broker_does_not_take_waits_for_the_redelivery_sweep_in_one_line(monkeypatch, caplog):
    """Redis away as a task sends its retry: Celery's answer (Reject) logged a warning with a traceback, and
    the row, marked published, waited a lease, or the whole backlog, before the sweep sent it again. Now one
    line says what happens, and the row is the sweep's next to send."""
    import logging

    from celery.exceptions import Ignore
    from kombu.exceptions import OperationalError as BrokerAway

    from syncengine.celery_app import app

    def broker_away(*_args: object, **_kwargs: object) -> None:
        raise BrokerAway("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    retry_unsent, row_id = lock_holder_without_redis(monkeypatch, "retry_unsent")
    monkeypatch.setattr("celery.canvas.Signature.apply_async", broker_away)
    with caplog.at_level(logging.INFO), pytest.raises(Ignore):
        run_as_worker(retry_unsent, row_id, is_eager=False)
    assert state(row_id)[:3] == ("pending", 1, False)
    with session_scope() as s:
        assert s.get(OutboxTask, row_id).published_at is None
        due = outbox.due_again(s, app, outbox.LEASE, timedelta(seconds=-60), queued=True)
    assert row_id in [staged.row_id for staged in due]  # sent on the sweep's next pass, backlog or not
    lines = [r for r in caplog.records if r.name == "syncengine.outbox_task"]
    assert [r.levelname for r in lines] == ["WARNING"] and lines[0].exc_info is None
    assert "retry was not sent (the broker: OperationalError)" in lines[0].getMessage()
    assert "failed for good" not in caplog.text
