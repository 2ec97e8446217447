"""Pushes that cannot be lost (issue 15): a push lives in the outbox until it is done, so neither a time
limit nor a worker killed mid-push (SIGTERM, then SIGKILL 2 s later, as Heroku stops a dyno) loses it or
makes it twice.

A lane of its own: a database, a Directus simulator, a Redis and a worker (sync and sweeps queues) whose
task lease is 6 s and effect lease 3 s, without a default soft time limit; the push is staged in the outbox
as a handler would, and published. Faults are the simulator's latency (the push is slow exactly where the
test needs it) and real signals."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import select

from simulators import REGISTRY
from simulators.wiring import engine_env
from syncengine import outbox
from syncengine.db import session_scope
from syncengine.models import Link, OutboxTask, Record
from syncengine.records import record_pushed
from tests.conftest import WORK
from tests.faults.conftest import own_database
from tests.servers import PrivateRedis
from tests.support import Proc, celery_worker_cmd, wait_until

TASK_LEASE = 6


@dataclass
class Lane:
    directus: Any
    env: dict[str, str]
    broker: PrivateRedis
    workers: list[Proc] = field(default_factory=list)

    @property
    def worker(self) -> Proc:
        return self.workers[-1]

    def start_worker(self) -> Proc:
        cmd = [*celery_worker_cmd(concurrency=2, queues="sync,sweeps"), "-n", f"lost{len(self.workers)}@%h"]
        proc = Proc(cmd, self.env, WORK / f"faults-lost-{len(self.workers)}.log")
        self.workers.append(proc)
        wait_until(lambda: "ready." in proc.output(), timeout=90)
        return proc

    def send(self, name: str, args: list, **options: Any) -> None:
        with Celery(broker=self.env["REDIS_URL"], set_as_current=False) as app:
            app.send_task(name, args=args, queue=options.pop("queue", "sync"), **options)

    def redeliver(self) -> None:
        """What the beat's redelivery entry does every minute, without its grace."""
        self.send("tasks.dispatch.redeliver", [], queue="sweeps", kwargs={"grace_seconds": 0})

    def contacts(self, email: str) -> list[dict]:
        return [i for i in self.directus.db.get("contacts", {}).values() if i.get("email") == email]

    def creates(self, email: str) -> int:
        return sum(1 for r in self.directus.requests_log("POST", path="/items/contacts")
                   if (r.get("json") or {}).get("email") == email)  # fmt: skip


@pytest.fixture(scope="module")
def lane(faults_db: str) -> Iterator[Lane]:
    with own_database("syncengine_lost_pushes"):  # its Directus ids must not meet the stack's links
        yield from _lane()


def _lane() -> Iterator[Lane]:
    broker = PrivateRedis()
    directus = REGISTRY["directus"]()
    server = directus.serve()
    # No soft time limit by default, so a hard limit sent with a message is reached (Celery arms the hard
    # timer only once the soft one has fired); the soft test sends its own.
    env = dict(os.environ, REDIS_URL=broker.url, **engine_env({"directus": server.url}),
               SYNCENGINE_TASK_LEASE=str(TASK_LEASE), SYNCENGINE_EFFECT_LEASE="3",
               SYNCENGINE_TASK_SOFT_TIME_LIMIT="0")  # fmt: skip
    built = Lane(directus, env, broker)
    try:
        built.start_worker()
        yield built
    finally:
        for proc in built.workers:
            proc.stop()
        server.stop()
        broker.kill()


def stage_push(lane: Lane, *, linked_item: bool = False, **limits: float) -> tuple[int, int, str]:
    """A contact record and its push to Directus, staged in the outbox as a handler stages it, and sent: a
    create, or with `linked_item` an update of the Directus item it is linked to (the city changed)."""
    from connectors.adapters import adapter_for
    from tasks.push import push

    email = f"lost-{uuid.uuid4().hex[:8]}@example.test"
    data = {"email": email, "name": "Lost Lee"}
    with session_scope() as s:
        record = Record(kind="contact", match_key=email, data=data, field_meta={}, version=1)
        s.add(record)
        s.flush()
        if linked_item:
            (item_id,) = lane.directus.seed({"items": {"contacts": [dict(data)]}})["contacts"]
            carried = adapter_for("directus", "contact").carried(data)
            record_pushed(s, record.id, "directus", "contact", str(item_id), carried)
            record.data, record.version = {**data, "city": "Lyon"}, 2
        (staged,) = outbox.stage(s, [push.s(record.id, "directus")])
        record_id = record.id
    lane.send("tasks.push.push", [record_id, "directus"], task_id=outbox.task_id(staged.row_id), **limits)
    return staged.row_id, record_id, email


def row(row_id: int) -> OutboxTask | None:
    with session_scope() as s:
        found = s.get(OutboxTask, row_id)
        if found is not None:
            s.expunge(found)
        return found


def linked(record_id: int) -> str | None:
    with session_scope() as s:
        return s.execute(
            select(Link.external_id).where(Link.record_id == record_id, Link.system == "directus")
        ).scalar_one_or_none()


def started(lane: Lane, seen: int, method: str, path: str) -> bool:
    """A request of that method under that path since the log had `seen` entries."""
    return any(
        e["method"] == method and e["path"].startswith(path) for e in lane.directus.requests_log()[seen:]
    )


@pytest.mark.parametrize("limit", ["time_limit", "soft_time_limit"])
def test_a_push_past_its_time_limit_is_retried_and_done_once(lane: Lane, limit: str):
    seen = len(lane.directus.requests_log())
    # The look-up before the create hangs past the limit (nothing is in flight to land later).
    lane.directus.set_faults(latency_ms=6000, match_method="GET", match_path="/items/contacts")
    row_id, record_id, email = stage_push(lane, **{limit: 2})
    try:
        wait_until(lambda: started(lane, seen, "GET", "/items/contacts"), timeout=30)
    finally:
        lane.directus.clear_faults()
    wait_until(lambda: row(row_id) is None, timeout=60)  # done, with no redelivery sweep
    expected = "Hard time limit (2s) exceeded" if limit == "time_limit" else "SoftTimeLimitExceeded"
    log = lane.worker.output()
    assert expected in log and f"outbox-{row_id}" in log
    assert len(lane.contacts(email)) == 1 and lane.creates(email) == 1
    assert linked(record_id) == str(lane.contacts(email)[0]["id"])


def kill_mid_push(
    lane: Lane, method: str, path: str, heroku: bool, **staging: bool
) -> tuple[int, int, str, float]:
    """Stage a push, and kill the whole worker while the push's `method` request is at Directus (which
    answers it 1.5 s later, to nobody: before a new worker could look for the object, as any request in
    flight must land before the look-up that follows it, or be made twice)."""
    seen = len(lane.directus.requests_log())
    lane.directus.set_faults(latency_ms=1500, match_method=method, match_path=path)
    row_id, record_id, email = stage_push(lane, **staging)
    try:
        wait_until(lambda: started(lane, seen, method, path), timeout=30)
        if heroku:
            lane.worker.signal(signal.SIGTERM)
            time.sleep(2)
        lane.worker.signal(signal.SIGKILL)
        lane.worker.popen.wait(timeout=10)
        return row_id, record_id, email, time.monotonic()
    finally:
        lane.directus.clear_faults()


def redriven(lane: Lane, row_id: int, killed: float) -> None:
    """A new worker; the redelivery sweep runs (the beat's minute, compressed) until the push is done."""
    assert row(row_id).state == "running"  # the dead worker's claim
    lane.start_worker()

    def done() -> bool:
        if row(row_id) is None:
            return True
        lane.redeliver()
        return False

    wait_until(done, timeout=120 - (time.monotonic() - killed), interval=2)
    assert time.monotonic() - killed < 120


def test_a_worker_stopped_as_heroku_does_mid_create_is_done_within_2_minutes_once(lane: Lane):
    """SIGTERM to every process of the worker, SIGKILL 2 s later: the pool processes die at once (the
    create's request still on its way to Directus), and the push is done again, once."""
    row_id, record_id, email, killed = kill_mid_push(lane, "POST", "/items/contacts", heroku=True)
    redriven(lane, row_id, killed)
    assert len(lane.contacts(email)) == 1 and lane.creates(email) == 1  # the create landed once
    assert linked(record_id) == str(lane.contacts(email)[0]["id"])


def test_a_worker_killed_outright_mid_update_is_redriven_from_the_store(lane: Lane):
    """SIGKILL alone: no process is left to hand the message back, so Redis keeps it unacknowledged for
    its hour of visibility timeout; the push comes back from the store, within the lease and a sweep."""
    row_id, record_id, email, killed = kill_mid_push(
        lane, "PATCH", "/items/contacts/", heroku=False, linked_item=True
    )
    redriven(lane, row_id, killed)
    assert [item.get("city") for item in lane.contacts(email)] == ["Lyon"]
    assert linked(record_id) == str(lane.contacts(email)[0]["id"])
    unacked = [json.loads(v)[0] for v in lane.broker.client().hvals("unacked")]
    assert any(m["headers"]["id"] == outbox.task_id(row_id) for m in unacked)
