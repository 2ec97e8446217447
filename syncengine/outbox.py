"""The transactional outbox: every task a handler sets off (a push, a booking, an email, an OCR read) is a
row written in the handler's own transaction, and it lives there until the task reports done or failed for
good. Neither a broker that is down at the commit, nor a worker killed or past its time limit mid-task,
loses it.

How a row moves (states in models.TaskState):

    pending --claim--> running --done--> (deleted: a missing row is a finished task)
       ^                  |---failed for good--> failed --replay--> pending
       |--retry (delay)---|
       |--lease lapsed (worker killed, hard time limit): claimed again by the next message

A row is published right after the commit, as the task id `outbox-<row id>`, and claimed by the task
when it starts (syncengine.outbox_task) under a lease its worker renews while it runs. The redelivery
sweep publishes again, at most once per lease: what was never published (the broker was down), what
waits unclaimed past its lease (a message held by a killed worker, which Redis would only hand out again
after its visibility timeout), and what runs under a lapsed lease. A task sent twice runs once: the second
message finds the row running under a live lease, or gone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import Signature
from sqlalchemy import Connection, Select, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from .db import autocommit_engine, get_engine
from .models import OutboxTask, TaskState, utcnow
from .redaction import redact
from .settings import env_seconds

log = logging.getLogger(__name__)
_table = OutboxTask.__table__
TASK_ID_PREFIX = "outbox-"
# How long a running task's claim holds without its worker renewing it (every third of it). Lapsed, the
# task is run again: a killed worker's push is re-driven within this plus the sweep's minute.
LEASE = timedelta(seconds=env_seconds("SYNCENGINE_TASK_LEASE", 30))
# Where the claims of this process start: a worker on the same host may take over a claim whose process
# is gone (a pool process killed, its message requeued at once) without waiting for the lease.
HOST = socket.gethostname()[:24]
_held: set[str] = set()  # the claims this process's running tasks hold


@dataclass(frozen=True)
class Staged:
    row_id: int
    signature: Signature


def task_id(row_id: int) -> str:
    return f"{TASK_ID_PREFIX}{row_id}"


def row_of(celery_task_id: str | None) -> int | None:
    """The outbox row a task message stands for, or None for a task sent some other way."""
    if not celery_task_id or not celery_task_id.startswith(TASK_ID_PREFIX):
        return None
    tail = celery_task_id[len(TASK_ID_PREFIX) :]
    return int(tail) if tail.isdigit() else None


def stage(session: Session, signatures: Sequence[Signature], inbox_id: int | None = None) -> list[Staged]:
    """Write the tasks in the caller's transaction (one INSERT); they exist exactly when its other writes
    do. They count as published at once: the caller publishes right after its commit."""
    if not signatures:
        return []
    now = utcnow()
    rows = [
        {"task": sig.task, "args": _portable(sig), "created_at": now, "updated_at": now,
         "state": TaskState.PENDING, "attempts": 0, "replays": 0, "published_at": now,
         "inbox_id": inbox_id, "subject": _subject(sig.args)}
        for sig in signatures
    ]  # fmt: skip
    stmt = _table.insert().returning(_table.c.id, sort_by_parameter_order=True)
    ids = session.execute(stmt, rows).scalars().all()
    return [Staged(row_id, sig) for row_id, sig in zip(ids, signatures, strict=True)]


def publish(staged: Sequence[Staged]) -> int:
    """After the commit: hand each task to the broker. A broker that refuses leaves the rest marked
    unpublished for the redelivery sweep (and this caller's work stays done)."""
    for position, item in enumerate(staged):
        try:
            item.signature.apply_async(task_id=task_id(item.row_id))
        except Exception as exc:  # the broker is down: the rows wait for the sweep
            left = [s.row_id for s in staged[position:]]
            log.warning("%s of %s tasks left in the outbox: %s", len(left), len(staged), type(exc).__name__)
            mark_unpublished(left)
            return position
    return len(staged)


def due_again(
    session: Session, app: Any, lease: timedelta, grace: timedelta, limit: int = 500, *, queued: bool = False
) -> list[Staged]:
    """What the redelivery sweep publishes again, marked published now: what the broker never got, what a
    killed worker held, and what runs under a lapsed lease; each at most once per lease. `grace` lets a task
    just staged or due be published by its own worker first. The rows are held (skip locked) so two sweeps
    never both take them; the caller publishes them once its transaction has committed (a worker claiming
    one must not find it still locked by this one). While the broker holds a backlog (`queued`), a pending
    task published before is waiting in it, not lost: only the never published are due among the pending."""
    now = utcnow()
    quiet = or_(_table.c.published_at.is_(None), _table.c.published_at <= now - lease)
    pending = and_(_table.c.state == TaskState.PENDING,
                   func.coalesce(_table.c.available_at, _table.c.created_at) <= now - grace)  # fmt: skip
    if queued:
        pending = and_(pending, _table.c.published_at.is_(None))
    due = or_(
        pending,
        and_(_table.c.state == TaskState.RUNNING, _table.c.locked_at <= now - lease),
    )  # fmt: skip
    rows = session.execute(
        select(_table.c.id, _table.c.task, _table.c.args)
        .where(quiet, due)
        .order_by(_table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(update(_table).where(_table.c.id.in_([r.id for r in rows])).values(published_at=now))
        log.info("republishing %s tasks from the outbox", len(rows))
    return [Staged(row.id, signature(app, row.task, row.args)) for row in rows]


def signature(app: Any, task: str, stored: dict) -> Signature:
    return app.signature(task, args=stored.get("args") or (), kwargs=stored.get("kwargs") or {},
                         **(stored.get("options") or {}))  # fmt: skip


def _portable(sig: Signature) -> dict:
    return {"args": list(sig.args), "kwargs": dict(sig.kwargs), "options": dict(sig.options)}


def _subject(args: Sequence[Any]) -> str:
    return json.dumps(list(args), separators=(",", ":"), default=str)[:255]


def mark_unpublished(row_ids: list[int]) -> None:
    """What the broker did not take: the redelivery sweep's next pass sends it, backlog or not."""
    try:
        with autocommit_engine().connect() as conn:
            conn.execute(update(_table).where(_table.c.id.in_(row_ids)).values(published_at=None))
    except Exception as exc:  # marked published already: the sweep sends them a lease later
        log.warning("outbox rows not marked unpublished: %s", type(exc).__name__)


# --- the running task's claim -----------------------------------------------------------------------------


@dataclass
class Claim:
    """One worker's hold on a row while its task runs. `failure` is set by the task (`failed()`) when it
    gives up for good while returning normally."""

    row_id: int
    token: str
    attempts: int
    replays: int
    failure: str | None = field(default=None)

    def renew(self) -> bool:
        """The lease extended; False once the claim is no longer ours (closed, or taken over)."""
        with autocommit_engine().connect() as conn:
            renewed = conn.execute(
                update(_table)
                .where(_table.c.id == self.row_id, _table.c.claimed_by == self.token,
                       _table.c.state == TaskState.RUNNING)
                .values(locked_at=utcnow())
            )  # fmt: skip
        return renewed.rowcount == 1

    def done(self) -> None:
        """Finished: the row goes, and so do earlier failures of the same task about the same thing (a
        failed push of a record to a system, now pushed)."""
        # One statement, atomic on its own (a round trip, where a transaction of two deletes took three):
        # the failed siblings go only when this row is still ours, as the subquery sees it.
        this = select(_table.c.task, _table.c.subject).where(
            _table.c.id == self.row_id, _mine(self.token), _table.c.subject.is_not(None)
        )
        siblings = and_(_table.c.state == TaskState.FAILED, _table.c.id < self.row_id,
                        tuple_(_table.c.task, _table.c.subject).in_(this))  # fmt: skip
        with autocommit_engine().connect() as conn:
            mine = and_(_table.c.id == self.row_id, _mine(self.token))
            conn.execute(delete(_table).where(or_(mine, siblings)))

    def fail(self, reason: str) -> None:
        self._set(state=TaskState.FAILED, last_error=_error(reason), claimed_by=None, locked_at=None)

    def wait(self, seconds: float, reason: str | None) -> None:
        """Released to run again after `seconds` (a retry): the message for it is sent right after."""
        now = utcnow()
        self._set(state=TaskState.PENDING, available_at=now + timedelta(seconds=seconds), published_at=now,
                  last_error=_error(reason) if reason else None, claimed_by=None, locked_at=None)  # fmt: skip

    def _set(self, **values: Any) -> None:
        with autocommit_engine().connect() as conn:
            conn.execute(update(_table).where(_table.c.id == self.row_id, _mine(self.token)).values(**values))


def _mine(token: str) -> Any:
    """Still our claim: one taken over meanwhile (our lease lapsed) is the new holder's to close."""
    return _table.c.claimed_by == token


def _error(reason: str) -> str:
    return redact(reason)[:4000]


def claim(row_id: int) -> Claim | None:
    """Take the row for this process: None when it is done (gone), failed for good, or held by a live
    claim. A claim is taken over when its lease lapsed, or when it belongs to a process of this host that
    is gone. One autocommit statement: the attempt counts even if this worker is killed next."""
    token = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    now = utcnow()
    with autocommit_engine().connect() as conn:
        free = or_(_table.c.state == TaskState.PENDING,
                   and_(_table.c.state == TaskState.RUNNING, _table.c.locked_at <= now - LEASE))  # fmt: skip
        taken = _take(conn, row_id, token, free)
        if taken is None:
            holder = conn.execute(
                select(_table.c.state, _table.c.claimed_by).where(_table.c.id == row_id)
            ).first()
            if holder is not None and holder.state == TaskState.RUNNING and _dead(holder.claimed_by):
                log.info("outbox row %s: its worker process is gone, taking it over", row_id)
                taken = _take(conn, row_id, token, _table.c.claimed_by == holder.claimed_by)
    if taken is None:
        return None
    _held.add(token)
    return Claim(row_id, token, taken.attempts, taken.replays)


def _take(conn: Connection, row_id: int, token: str, condition: Any) -> Any:
    claimable = (
        select(_table.c.id).where(_table.c.id == row_id, condition).with_for_update(skip_locked=True)
    ).scalar_subquery()
    return conn.execute(
        update(_table)
        .where(_table.c.id == claimable)
        .values(state=TaskState.RUNNING, claimed_by=token, locked_at=utcnow(), attempts=_table.c.attempts + 1,
                updated_at=utcnow())
        .returning(_table.c.attempts, _table.c.replays)
    ).first()  # fmt: skip


def _dead(claimed_by: str | None) -> bool:
    """A claim of a process of this host that no longer runs it: that process is gone, or it is this very
    process and none of its running tasks holds the claim (a killed predecessor that had the same pid)."""
    host, _, rest = (claimed_by or "").partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return claimed_by not in _held
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_after_time_limit(
    row_id: int, reason: str, max_attempts: int, delay: Callable[[int], float]
) -> float | None:
    """A task killed at its hard time limit (seen by the worker's main process): the row waits `delay(its
    attempts)` seconds, returned for the caller to send it again then, or fails for good (None) once it
    used up its attempts."""
    now = utcnow()
    with get_engine().begin() as conn:
        row = conn.execute(
            select(_table.c.attempts).where(_table.c.id == row_id, _table.c.state == TaskState.RUNNING)
        ).first()
        if row is None:
            return None
        wait = delay(row.attempts) if row.attempts < max_attempts else None
        values: dict[str, Any] = {"state": TaskState.FAILED}
        if wait is not None:
            due = now + timedelta(seconds=wait)
            values = {"state": TaskState.PENDING, "available_at": due, "published_at": now}
        conn.execute(
            update(_table).where(_table.c.id == row_id)
            .values(**values, claimed_by=None, locked_at=None, last_error=_error(reason), updated_at=now)
        )  # fmt: skip
    return wait


# --- what the task says about itself ----------------------------------------------------------------------

_current: ContextVar[Claim | None] = ContextVar("outbox_claim", default=None)


@contextmanager
def running(claim_: Claim) -> Iterator[None]:
    """The block is the claim's task: `current()`, `failed()` and `replay_round()` speak of it. Once it
    ends (however), this process no longer runs the task: a later message for the row may take it over."""
    token = _current.set(claim_)
    try:
        yield
    finally:
        _current.reset(token)
        _held.discard(claim_.token)


def forget(claim_: Claim) -> None:
    """This process no longer holds the claim (given back, or taken over), without having run under it."""
    _held.discard(claim_.token)


def current() -> Claim | None:
    """The claim of the outbox row the running task stands for (None outside such a task)."""
    return _current.get()


def failed(reason: str, outcome: str = "failed") -> str:
    """Say the running task failed for good, with the reason `status` shows; returns `outcome` for the
    task to return (a task run outside the outbox just logs it)."""
    claim_ = current()
    if claim_ is not None:
        claim_.failure = reason
    return outcome


def replay_round() -> int:
    """How many times `replay` reopened the running task's row: 0 for its first life."""
    claim_ = current()
    return claim_.replays if claim_ is not None else 0


# --- replay and status ------------------------------------------------------------------------------------


def reopen(session: Session, row_ids: Sequence[int]) -> list[Staged]:
    """Failed (or waiting) rows made to run again from scratch, under a new replay round: the caller
    publishes them after its commit. A row running under a live claim is left to it."""
    from .celery_app import app

    rows = session.execute(
        select(_table.c.id, _table.c.task, _table.c.args)
        .where(_table.c.id.in_(list(row_ids)), _table.c.state != TaskState.RUNNING)
        .with_for_update()
    ).all()
    if rows:
        session.execute(
            update(_table).where(_table.c.id.in_([r.id for r in rows]))
            .values(state=TaskState.PENDING, attempts=0, replays=_table.c.replays + 1, last_error=None,
                    available_at=None, published_at=utcnow(), claimed_by=None, locked_at=None,
                    updated_at=utcnow())
        )  # fmt: skip
    return [Staged(r.id, signature(app, r.task, r.args)) for r in rows]


def failed_ids(session: Session, origin: Select[Any] | None = None) -> list[int]:
    """Rows failed for good: all of them, or those set off by the inbox events `origin` selects."""
    query = select(_table.c.id).where(_table.c.state == TaskState.FAILED).order_by(_table.c.id)
    if origin is not None:
        query = query.where(_table.c.inbox_id.in_(origin))
    return list(session.execute(query).scalars())


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(_table.c.state, func.count()).group_by(_table.c.state)).all()
    found = {state: count for state, count in rows}
    return {state: found.get(state, 0) for state in TaskState.ALL}


def problems(session: Session, stuck_after: timedelta, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Failed rows, and stuck ones: retrying after an error, running under a lapsed lease, or waiting
    longer than `stuck_after`."""
    now = utcnow()
    failed_rows = session.execute(
        select(_table).where(_table.c.state == TaskState.FAILED).order_by(_table.c.id.desc()).limit(limit)
    ).all()
    stuck = or_(
        and_(_table.c.state == TaskState.PENDING, _table.c.last_error.is_not(None)),
        and_(_table.c.state == TaskState.RUNNING, _table.c.locked_at <= now - LEASE),
        _table.c.created_at <= now - stuck_after,
    )
    stuck_rows = session.execute(
        select(_table).where(_table.c.state != TaskState.FAILED, stuck).order_by(_table.c.id).limit(limit)
    ).all()
    return {"failed": [_described(r, now) for r in failed_rows],
            "stuck": [_described(r, now) for r in stuck_rows]}  # fmt: skip


def _described(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id, "task": row.task.rsplit(".", 1)[-1], "args": (row.args or {}).get("args") or [],
        "state": row.state, "attempts": row.attempts, "event": row.inbox_id, "error": row.last_error,
        "age_seconds": (now - row.created_at).total_seconds(), "next_attempt_at": row.available_at,
    }  # fmt: skip
