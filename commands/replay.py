"""Run events and tasks again: an event by its id (with the failed pushes and tasks it set off), every
failed event and task (optionally only those of one sender and/or event type), or one task by its outbox id;
then wait for the outcome (`wait`) and say it (`report`).

Replaying an event alone would push nothing when its push failed: the merge finds the hub already holding
the change. So the event's failed outbox rows are reopened too, under a new replay round: the push calls the
vendor again under a new idempotency key (tasks.push.Target.key), instead of finding its failed one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from syncengine import inbox, outbox
from syncengine.db import session_scope
from syncengine.models import InboxEvent, InboxStatus, OutboxTask, TaskState

from .explain import Mistake


@dataclass
class Replayed:
    events: list[int] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    # The tasks set off by a replayed event: their outcome is told with the event's.
    under_events: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.events or self.tasks)


def replay(
    ref: str | None, failed: bool = False, source: str | None = None, event_type: str | None = None,
    task: int | None = None,
) -> Replayed:  # fmt: skip
    done = Replayed()
    with session_scope() as session:
        if task is not None:
            rows = [task]
        elif failed:
            done.events = list(session.execute(_failed_events(source, event_type)).scalars())
            origin = _narrowed(select(InboxEvent.id), source, event_type) if source or event_type else None
            rows = outbox.failed_ids(session, origin)
        else:
            rows = _one_event(session, ref or "", done)
        for inbox_id in done.events:
            inbox.reopen(session, inbox_id)
        staged = outbox.reopen(session, rows)
        done.tasks = [item.row_id for item in staged]
        done.under_events = set(session.execute(
            select(OutboxTask.id).where(OutboxTask.id.in_(done.tasks), OutboxTask.inbox_id.in_(done.events))
        ).scalars())  # fmt: skip
    _publish(done.events, staged)
    return done


def _one_event(session: Session, ref: str, done: Replayed) -> list[int]:
    """The event, and the failed tasks it set off."""
    found = find(session, ref)
    if found is None:
        return []
    done.events = [found.id]
    return outbox.failed_ids(session, select(InboxEvent.id).where(InboxEvent.id == found.id))


def find(session: Session, ref: str) -> InboxEvent | None:
    """An event as an operator names it: its inbox id (`123`, `#123` as `status` shows it), its event_id
    exactly as a log line prints it (`"event_id": "invoiceninja:client:42:…"`), or `sender:event_id`."""
    ref = ref.strip().strip("'\"")
    if ref.lstrip("#").isdigit():
        return session.get(InboxEvent, int(ref.lstrip("#")))
    same = list(session.execute(select(InboxEvent).where(InboxEvent.event_id == ref).limit(5)).scalars())
    if len(same) > 1:
        raise Mistake(
            f"{len(same)} senders have an event {ref!r}",
            "name one: " + " or ".join(f"{e.id} ({e.source})" for e in same),
        )
    return same[0] if same else inbox.find(session, ref)


def _failed_events(source: str | None, event_type: str | None) -> Select[Any]:
    """Oldest first: replayed, and listed to the operator, in the order they arrived."""
    failed = select(InboxEvent.id).where(InboxEvent.status == InboxStatus.FAILED).order_by(InboxEvent.id)
    return _narrowed(failed, source, event_type)


def _narrowed(query: Select[Any], source: str | None, event_type: str | None) -> Select[Any]:
    if source:
        query = query.where(InboxEvent.source == source)
    if event_type:
        query = query.where(InboxEvent.event_type == event_type)
    return query


def _publish(events: list[int], staged: list[outbox.Staged]) -> None:
    from tasks.dispatch import process

    for inbox_id in events:
        process.apply_async((inbox_id,))
    outbox.publish(staged)


# --- the outcome --------------------------------------------------------------------------------------------

FINAL = ("done", "failed", "retrying")


@dataclass(frozen=True)
class Settled:
    """Where one replayed event or task stands: done, failed, retrying (failed an attempt, another is due),
    or running (no outcome yet)."""

    what: str
    state: str
    error: str | None = None
    next_attempt: datetime | None = None


@dataclass
class Outcome:
    items: list[Settled] = field(default_factory=list)
    waited: float = 0.0

    @property
    def settled(self) -> int:
        return sum(item.state in FINAL for item in self.items)

    @property
    def all_done(self) -> bool:
        return all(item.state == "done" for item in self.items)

    def count(self, state: str) -> int:
        return sum(item.state == state for item in self.items)


def wait(done: Replayed, timeout: float, poll: float = 0.5) -> Outcome:
    """Until every replayed event (with the pushes it sets off) and task has an outcome, or `timeout`."""
    from syncengine.progress import progress

    started, deadline = time.monotonic(), time.monotonic() + timeout
    total = len(done.events) + len(set(done.tasks) - done.under_events)
    with progress("replay", total=total, unit="settled") as bar:
        while True:
            outcome = look(done)
            bar.set(done=outcome.settled, done_ok=outcome.count("done"), failed=outcome.count("failed"))
            if outcome.settled == total or time.monotonic() >= deadline:
                outcome.waited = time.monotonic() - started
                return outcome
            time.sleep(poll)


def look(done: Replayed) -> Outcome:
    """One look at the store: each event's status and the outbox rows it set off, each task's row."""
    task = OutboxTask
    with session_scope() as session:
        events = {e.id: e for e in session.execute(select(InboxEvent).where(InboxEvent.id.in_(done.events)))
                  .scalars()}  # fmt: skip
        rows = list(session.execute(
            select(task).where(or_(task.inbox_id.in_(done.events), task.id.in_(done.tasks)))
        ).scalars())  # fmt: skip
    outcome = Outcome()
    for inbox_id in done.events:
        outcome.items.append(
            _event_state(events.get(inbox_id), inbox_id, [r for r in rows if r.inbox_id == inbox_id])
        )
    for row_id in done.tasks:
        if row_id not in done.under_events:
            outcome.items.append(_task_state(next((r for r in rows if r.id == row_id), None), row_id))
    return outcome


def _event_state(event: InboxEvent | None, inbox_id: int, rows: list[OutboxTask]) -> Settled:
    if event is None:
        return Settled(f"event #{inbox_id}", "failed", "no longer in the inbox")
    what = f"event #{event.id} {event.source} {event.event_type}"
    if event.status == InboxStatus.FAILED:
        return Settled(what, "failed", event.last_error)
    if event.status == InboxStatus.RECEIVED and event.last_error:
        return Settled(what, "retrying", event.last_error, event.available_at)
    if event.status not in (InboxStatus.DONE, InboxStatus.IGNORED):
        return Settled(what, "running")
    states = [_task_state(row, row.id) for row in rows]
    bad = [s for s in states if s.state in ("failed", "retrying")]
    if bad:
        first, more = bad[0], f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return Settled(f"{what}, then {first.what}{more}", first.state, first.error, first.next_attempt)
    if any(s.state == "running" for s in states):
        return Settled(what, "running")
    return Settled(what, "done")


def _task_state(row: OutboxTask | None, row_id: int) -> Settled:
    if row is None:  # a finished task's row is deleted
        return Settled(f"task #{row_id}", "done")
    what = f"{row.task.rsplit('.', 1)[-1]} #{row.id} ({_subject(row.subject)})"
    if row.state == TaskState.FAILED:
        return Settled(what, "failed", row.last_error)
    if row.state == TaskState.PENDING and row.last_error:
        return Settled(what, "retrying", row.last_error, row.available_at)
    return Settled(what, "running")


def _subject(subject: str | None) -> str:
    """A task's arguments as status shows them: `[12, "erpnext"]` is "12 erpnext"."""
    try:
        args = json.loads(subject or "[]")
    except ValueError:
        return subject or ""
    return " ".join(map(str, args)) if isinstance(args, list) else str(args)


def report(outcome: Outcome) -> list[str]:
    """One line per event or task, then the totals and what to do next."""
    lines = [_line(item) for item in outcome.items]
    running = outcome.count("running")
    summary = ", ".join(f"{outcome.count(state)} {state}" for state in FINAL)
    if running:
        summary += f", {running} with no outcome after {outcome.waited:.0f} s (`syncengine status --watch`)"
    if outcome.count("failed") or outcome.count("retrying"):
        summary += "; fix the cause, then replay again"
    return [*lines, summary]


def _line(item: Settled) -> str:
    if item.state == "done":
        return f"  {item.what}: done"
    if item.state == "running":
        return f"  {item.what}: no outcome yet"
    when = f" (next attempt {item.next_attempt:%H:%M:%S} UTC)" if item.next_attempt else ""
    return f"  {item.what}: {item.state}{when}: {item.error}"
