"""Redelivery behind a backlog: what waits in the broker is not lost. A row published a lease ago and never
started is published again only when the broker holds no backlog (it was lost, as in a Redis restart);
behind one it is most likely still queued, and publishing it again would only grow the backlog. A row never
published, or claimed by a worker whose lease lapsed, is due either way."""

from __future__ import annotations

import time
from datetime import timedelta

from kombu import Connection, Exchange, Queue
from sqlalchemy import update
from sqlalchemy.orm import Session

from syncengine import inbox, outbox
from syncengine.broker import queued
from syncengine.celery_app import app
from syncengine.db import get_engine, session_scope
from syncengine.models import InboxEvent, InboxStatus, OutboxTask, TaskState, utcnow
from tasks.push import push

LEASE, GRACE = timedelta(seconds=60), timedelta(seconds=0)
LONG_AGO = timedelta(minutes=10)


def event(**values: object) -> int:
    with get_engine().begin() as conn:
        new = inbox.NewEvent("directus", f"redeliver-{time.time_ns()}", "x.y", {})
        (inbox_id,) = inbox.store(conn, [new])
    with session_scope() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(
            available_at=utcnow() - LONG_AGO, **values))  # fmt: skip
    return inbox_id


def task(**values: object) -> int:
    with session_scope() as s:
        (item,) = outbox.stage(s, [push.s(time.time_ns() % 10**6, "directus")], None)
        row_id = item.row_id
    with session_scope() as s:
        s.execute(update(OutboxTask).where(OutboxTask.id == row_id).values(
            created_at=utcnow() - LONG_AGO, **values))  # fmt: skip
    return row_id


def due_events(queued: bool) -> list[int]:
    with Session(get_engine()) as s:  # rolled back: other rows of the store stay as they were
        return inbox.due_for_redelivery(s, LEASE, GRACE, limit=10_000, queued=queued)


def due_tasks(queued: bool) -> list[int]:
    with Session(get_engine()) as s:
        due = outbox.due_again(s, app, LEASE, GRACE, limit=10_000, queued=queued)
        return [staged.row_id for staged in due]


def test_behind_a_backlog_an_event_published_long_ago_and_never_started_waits_in_the_queue():
    waiting = event(published_at=utcnow() - LONG_AGO)
    never_published = event(published_at=None)
    long_ago = utcnow() - LONG_AGO
    lapsed = event(status=InboxStatus.PROCESSING, locked_at=long_ago, published_at=long_ago)
    behind = due_events(queued=True)
    assert never_published in behind and lapsed in behind and waiting not in behind
    assert waiting in due_events(queued=False)  # no backlog: it was lost with the broker


def test_behind_a_backlog_a_pending_task_published_long_ago_waits_in_the_queue():
    waiting = task(published_at=utcnow() - LONG_AGO)
    never_published = task(published_at=None)
    lapsed = task(state=TaskState.RUNNING, locked_at=utcnow() - LONG_AGO, published_at=utcnow() - LONG_AGO)
    behind = due_tasks(queued=True)
    assert never_published in behind and lapsed in behind and waiting not in behind
    assert waiting in due_tasks(queued=False)


def test_the_broker_says_whether_a_queue_holds_messages():
    name = f"redeliver-probe-{time.time_ns()}"
    probe = Queue(name, Exchange(name), routing_key=name)
    with Connection(app.conf.broker_url) as conn:
        bound = probe(conn.default_channel)
        bound.declare()
        try:
            assert not queued(app, [name])
            conn.Producer().publish({"x": 1}, exchange=probe.exchange, routing_key=name, declare=[probe])
            assert queued(app, [name])
            bound.purge()
            assert not queued(app, [name])
        finally:
            bound.delete()
