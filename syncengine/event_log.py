"""One structured log line per inbox event handled: what an operator greps for when a sync went wrong.

`handling(inbox_id)` wraps the dispatch of one event. What the line says is gathered without touching the
handlers or adding a query: the event's sender and type when the ORM loads its row, its error when the
inbox records one, and the records and systems it touched from the tasks it publishes (Celery's
before_task_publish signal). The line is JSON, redacted like every other log line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from celery import signals
from sqlalchemy import event as orm_event

from .models import InboxEvent
from .redaction import redact

log = logging.getLogger("syncengine.events")

PUSH_TASK = "tasks.push.push"


@dataclass
class Entry:
    inbox_id: int
    started: float = field(default_factory=time.monotonic)
    source: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    attempt: int | None = None
    outcome: str | None = None
    error: str | None = None
    records: set[int] = field(default_factory=set)
    systems: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)

    def line(self) -> str:
        return json.dumps(
            {
                "event": "inbox_event_handled",
                "inbox_id": self.inbox_id,
                "event_id": self.event_id,
                "sender": self.source,
                "type": self.event_type,
                "attempt": self.attempt,
                "records": sorted(self.records),
                "systems": sorted(self.systems),
                "tasks": sorted(self.tasks),
                "outcome": self.outcome,
                "error": self.error,
                "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
            },
            default=str,
        )


_current: ContextVar[Entry | None] = ContextVar("syncengine_event_log", default=None)


@contextmanager
def handling(inbox_id: int) -> Iterator[Entry]:
    """Collect what happens to this event meanwhile; log it as one line at the end, even on a crash."""
    entry = Entry(inbox_id)
    token = _current.set(entry)
    try:
        yield entry
    except BaseException as exc:
        entry.outcome = entry.outcome or "error"
        entry.error = entry.error or type(exc).__name__
        raise
    finally:
        _current.reset(token)
        log.info(redact(entry.line()))


@orm_event.listens_for(InboxEvent, "load")
def _on_load(target: InboxEvent, _context: Any) -> None:
    entry = _current.get()
    if entry is not None and target.id == entry.inbox_id:
        entry.source, entry.event_id, entry.event_type = target.source, target.event_id, target.event_type
        entry.attempt = target.attempts


@orm_event.listens_for(InboxEvent.last_error, "set")
def _on_error(target: InboxEvent, value: str | None, _old: Any, _initiator: Any) -> None:
    entry = _current.get()
    if entry is not None and value and target.id == entry.inbox_id:
        entry.error = value[:500]


@signals.before_task_publish.connect
def _on_publish(sender: str | None = None, body: Any = None, **_kwargs: Any) -> None:
    entry = _current.get()
    if entry is None or not sender:
        return
    args = body[0] if isinstance(body, (list, tuple)) and body else ()
    if sender == PUSH_TASK and len(args) >= 2:
        entry.records.add(int(args[0]))
        entry.systems.add(str(args[1]))
    elif sender != "tasks.dispatch.process":
        entry.tasks.add(sender)
