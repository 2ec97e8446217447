"""Run events again: one by its id, or every failed one (optionally of one sender and/or type)."""

from __future__ import annotations

from sqlalchemy import select

from . import inbox
from .db import session_scope
from .models import InboxEvent, InboxStatus


def replay(
    ref: str | None, failed: bool = False, source: str | None = None, event_type: str | None = None
) -> list[int]:
    with session_scope() as session:
        if failed:
            query = select(InboxEvent.id).where(InboxEvent.status == InboxStatus.FAILED)
            if source:
                query = query.where(InboxEvent.source == source)
            if event_type:
                query = query.where(InboxEvent.event_type == event_type)
            ids = list(session.execute(query).scalars())
        else:
            found = inbox.find(session, ref or "")
            ids = [found.id] if found else []
        for inbox_id in ids:
            inbox.reopen(session, inbox_id)
    from tasks.dispatch import process

    for inbox_id in ids:
        process.apply_async((inbox_id,))
    return ids
