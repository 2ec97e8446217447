"""Creates looked up together. A push that creates where the vendor keeps no unique marker looks the object
up first (Connector.create_once), one request per object. In a first sync hundreds of such pushes to one
system wait in the outbox, each to look up alone. The first to run looks up the next ones too, in one
request (the adapter's `find_many`), and then pushes them itself, one by one, each under its own outbox
claim and idempotency key, as their own tasks would have.

As safe as a look-up alone, because of what is held from before the look-up until each push is over:
- each follower's marker lock (the one a create holds from its look-up until its link is stored): none of
  our own writes can slip between the look-up and the create. Only markers free at once are taken; a busy
  one is left to its own task;
- each follower's outbox row, claimed as its own task would claim it: that task's message, taken by another
  worker meanwhile, finds the row held and does nothing; a row its task holds already is left to it.
A follower whose push raises, and every follower of a push that raises, is given back: its row pending
again and sent to its own task, which retries it with the usual backoff and failure rules. A follower whose
record changed meanwhile (another email: another marker) is looked up alone, as usual.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select

from connectors.base import marker_lock
from syncengine import outbox
from syncengine.db import read_scope
from syncengine.errors import Permanent
from syncengine.idempotency import DEFAULT_LEASE
from syncengine.locks import lock, try_lock
from syncengine.models import Link, OutboxTask, Record, TaskState, utcnow
from syncengine.outbox_task import heartbeat
from syncengine.task_metrics import PUSH_TASK, count_push

log = logging.getLogger(__name__)

# Followers one push takes at most: enough that a look-up serves many creates, few enough that the batch
# (a create each, about 20-50 ms on a vendor that answers) ends far inside a claim's lease.
FOLLOWERS = 24
LEASE = DEFAULT_LEASE.total_seconds()  # a marker lock's, as Connector.create_once holds it
# Seconds a leader spends on its followers before it gives the rest back (a vendor slow to answer): far
# inside the task's soft time limit and the markers' locks.
BUDGET = 60.0
_NOT_ASKED = object()
PushOne = Callable[[int, str], str]  # (record, system) -> the push's outcome
Resend = Callable[[int, int, str], None]  # (outbox row, record, system): sent to its own task
FieldsOf = Callable[[int], dict[str, Any] | None]  # record -> the fields its push would create with


@dataclass
class Follower:
    row_id: int
    record_id: int
    marker: str
    release: Callable[[], None]  # its marker lock
    claim: outbox.Claim
    claimed: float = field(default_factory=time.monotonic)


@dataclass
class Looked:
    """What a create's look-up is answered with: the batch's answer, once, or its own look-up."""

    locked: bool = False  # the marker's lock is held already (by the batch)
    answer: Any = _NOT_ASKED

    def find(self, alone: Callable[[], Any]) -> Any:
        """The batch's answer the first time (taken under the lock held since), a look-up after that (the
        answer to a create was lost: the object may be there now)."""
        answer, self.answer = self.answer, _NOT_ASKED
        return alone() if answer is _NOT_ASKED else answer


@dataclass
class Batch:
    """The markers one push holds, what the look-up found for each (None: absent), and the followers."""

    system: str
    found: dict[str, Any]
    followers: list[Follower]
    held: set[str] = field(default_factory=set)  # the markers whose lock is held right now

    def looked(self, marker: str) -> Looked:
        return Looked(True, self.found.pop(marker, _NOT_ASKED))


@dataclass(frozen=True)
class _Leader:
    push_one: PushOne
    resend: Resend


_current: ContextVar[Batch | None] = ContextVar("push_batch", default=None)
_leader: ContextVar[_Leader | None] = ContextVar("push_batch_leader", default=None)


@contextmanager
def following(push_one: PushOne, resend: Resend) -> Iterator[None]:
    """Around a push task: once it has pushed its own record, the followers its create gathered are pushed
    (`push_one(record_id, system)`), each under its own claim; if it raised, they are given back untried
    (`resend(row_id, record_id, system)` sends one to its own task)."""
    leader = _Leader(push_one, resend)
    token, leading = _current.set(None), _leader.set(leader)
    pushed = False
    try:
        yield
        pushed = True
    finally:
        batch = _current.get()
        _current.reset(token)
        _leader.reset(leading)
        if batch is not None:
            if pushed:
                _push_followers(batch, leader)
            else:
                _give_back(batch.system, batch.followers, leader)


@contextmanager
def looked_up(
    target: Any, marker: str, connector: Any, unique: bool, fields_of: FieldsOf
) -> Iterator[Looked]:
    """How the create of `target` (marker `marker`) is looked up: as a follower of the batch running here,
    as the leader of a new one (inside `following`, when the adapter can look up many at once and creates
    wait behind this one), or alone."""
    batch, leader = _current.get(), _leader.get()
    if batch is not None and marker in batch.held:
        yield batch.looked(marker)
        return
    if batch is not None or leader is None or unique or not hasattr(target.adapter, "find_many"):
        yield Looked()
        return
    with ExitStack() as held:
        held.enter_context(lock(marker_lock(connector.service, marker), timeout=LEASE))
        formed = _gather(target, marker, connector, fields_of, leader)
        if formed is None:
            held.close()  # given back: create_once takes it again for the look-up alone
            yield Looked()
            return
        _current.set(formed)
        formed.held.add(marker)
        try:
            yield formed.looked(marker)
        finally:
            formed.held.discard(marker)


def _gather(target: Any, marker: str, connector: Any, fields_of: FieldsOf, leader: _Leader) -> Batch | None:
    """The followers, their markers locked and their rows claimed, and one look-up for them and the
    leader (none when the adapter cannot answer for all in one go: each then looks up alone, locked);
    None when no follower could be taken."""
    followers: list[Follower] = []
    many = [target.fields]
    try:
        for row_id, record_id in _waiting(target):
            taken = _take(row_id, record_id, target.adapter, marker, connector, fields_of, followers)
            if taken is not None:
                followers.append(taken[0])
                many.append(taken[1])
            if len(followers) == FOLLOWERS:
                break
        if not followers:
            return None
        answers = target.adapter.find_many(connector, many)
    except BaseException:  # the store, Redis or the vendor away: nothing taken is kept
        _give_back(target.system, followers, leader)
        raise
    how = "looked up together" if answers is not None else "each looked up alone"
    log.info("%s %s: record %s takes %s creates waiting behind it (%s)", target.system, target.kind,
             target.record_id, len(followers), how)  # fmt: skip
    markers = [marker, *(f.marker for f in followers)]
    found = dict(zip(markers, answers, strict=True)) if answers is not None else {}
    return Batch(target.system, found, followers, {f.marker for f in followers})


def _take(
    row_id: int, record_id: int, adapter: Any, leading: str, connector: Any, fields_of: FieldsOf,
    taken: list[Follower],
) -> tuple[Follower, dict[str, Any]] | None:  # fmt: skip
    """A push waiting to create, as a follower (its marker locked, its row claimed) with its fields; None
    when it would not create, or its marker is the leader's or another follower's (two records of one
    marker: the second waits for the first, as it would alone), or its marker or row is held elsewhere."""
    fields = fields_of(record_id)
    if fields is None:
        return None
    try:
        marker = adapter.marker(fields)
    except Permanent:  # it cannot be created there: its own task says why
        return None
    if marker == leading or any(f.marker == marker for f in taken):
        return None
    release = try_lock(marker_lock(connector.service, marker), timeout=LEASE)
    if release is None:
        return None
    claim = outbox.claim(row_id)
    if claim is None:  # its own task has it
        release()
        return None
    return Follower(row_id, record_id, marker, release, claim), fields


def _waiting(target: Any) -> list[tuple[int, int]]:
    """(outbox row, record) of the pushes to the same system waiting to run, oldest first, whose record is
    of the same kind, live, and not there yet: the creates a look-up together can serve."""
    now = utcnow()
    with read_scope() as session:
        rows = session.execute(
            select(OutboxTask.id, OutboxTask.subject)
            .where(OutboxTask.task == PUSH_TASK, OutboxTask.state == TaskState.PENDING,
                   OutboxTask.subject.like(f"%,{json.dumps(target.system)}]"),
                   or_(OutboxTask.available_at.is_(None), OutboxTask.available_at <= now))
            .order_by(OutboxTask.id)
            .limit(4 * FOLLOWERS)
        ).all()  # fmt: skip
        waiting: dict[int, int] = {}
        for row_id, subject in rows:
            args = json.loads(subject or "[]")
            if len(args) == 2 and isinstance(args[0], int) and args[0] != target.record_id:
                waiting.setdefault(args[0], row_id)
        if not waiting:
            return []
        absent = set(
            session.execute(
                select(Record.id)
                .outerjoin(Link, and_(Link.record_id == Record.id, Link.system == target.system))
                .where(Record.id.in_(waiting), Record.kind == target.kind, Record.deleted_at.is_(None),
                       Link.id.is_(None))
            ).scalars()
        )  # fmt: skip
    return [(row_id, record_id) for record_id, row_id in waiting.items() if record_id in absent]


def _push_followers(batch: Batch, leader: _Leader) -> None:
    token, started = _current.set(batch), time.monotonic()
    try:
        for position, follower in enumerate(batch.followers):
            if time.monotonic() - started > BUDGET:
                log.info("%s: %s creates given back to their own tasks after %.0f s", batch.system,
                         len(batch.followers) - position, BUDGET)  # fmt: skip
                _give_back(batch.system, batch.followers[position:], leader)
                return
            try:
                _push_follower(batch.system, follower, leader)
            except BaseException:
                _give_back(batch.system, batch.followers[position + 1 :], leader)
                raise
            finally:
                batch.held.discard(follower.marker)
                follower.release()
    finally:
        _current.reset(token)


def _push_follower(system: str, follower: Follower, leader: _Leader) -> None:
    claim = follower.claim
    if time.monotonic() - follower.claimed > outbox.LEASE.total_seconds() / 3 and not claim.renew():
        outbox.forget(claim)
        return  # held too long before its turn, and taken over: the one holding it now pushes it
    with outbox.running(claim), heartbeat(claim):
        try:
            outcome = leader.push_one(follower.record_id, system)
        except Exception as exc:  # its own task decides: retried with backoff, or failed for good
            log.info("push of record %s to %s, taken by another push, goes back to its own task: %s",
                     follower.record_id, system, type(exc).__name__)  # fmt: skip
            claim.wait(0, f"{type(exc).__name__}: {exc}")
            leader.resend(follower.row_id, follower.record_id, system)
            return
    claim.done()
    count_push(system, outcome)


def _give_back(system: str, followers: list[Follower], leader: _Leader) -> None:
    """Untried: each row pending again and sent to its own task, each marker free again."""
    for follower in followers:
        try:
            follower.claim.wait(0, None)
            leader.resend(follower.row_id, follower.record_id, system)
        except Exception as exc:  # the store or broker away: the sweep sends it once its lease lapses
            log.warning("outbox row %s not given back: %s", follower.row_id, type(exc).__name__)
        finally:
            outbox.forget(follower.claim)
            follower.release()
