"""Run events and tasks again: an event by its id (with the failed pushes and tasks it set off), every
failed event and task (optionally only those of one sender and/or event type), or one task by its outbox id.

Replaying an event alone would push nothing when its push failed: the merge finds the hub already holding
the change. So the event's failed outbox rows are reopened too, under a new replay round: the push calls the
vendor again under a new idempotency key (tasks.push.Target.key), instead of finding its failed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from . import inbox, outbox
from .db import session_scope
from .models import InboxEvent, InboxStatus


@dataclass
class Replayed:
    events: list[int] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)

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
    _publish(done.events, staged)
    return done


def _one_event(session: Session, ref: str, done: Replayed) -> list[int]:
    """The event, and the failed tasks it set off."""
    found = inbox.find(session, ref)
    if found is None:
        return []
    done.events = [found.id]
    return outbox.failed_ids(session, select(InboxEvent.id).where(InboxEvent.id == found.id))


def _failed_events(source: str | None, event_type: str | None) -> Select[Any]:
    return _narrowed(select(InboxEvent.id).where(InboxEvent.status == InboxStatus.FAILED), source, event_type)


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
