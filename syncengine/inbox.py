"""The inbox: every event on disk before anyone is told 'received', then claimed, processed and closed.

A worker claims an event under a lease in its own short transaction (so the attempt is counted even if the
worker is killed), then processes it holding the row lock. Claims that outlive their lease, and events the
broker never got, are published again by the redelivery sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, and_, bindparam, case, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .models import InboxEvent, InboxStatus, Link, utcnow

_table = InboxEvent.__table__


@dataclass(frozen=True)
class NewEvent:
    source: str
    event_id: str
    event_type: str
    payload: Any


_COLUMNS = ("source", "event_id", "event_type", "payload", "received_at", "available_at", "published_at")


@dataclass(frozen=True)
class _CompiledInsert:
    """The inbox INSERT compiled once per dialect to driver SQL, with each parameter's bind processor.

    The webhook path runs it on the driver's cursor: SQLAlchemy's per-statement machinery was half the
    cost of storing an event."""

    sql: str
    order: tuple[str, ...] | None  # parameter order for positional paramstyles (SQLite), else named
    processors: dict[str, Any]

    def params(self, values: dict[str, Any]) -> Any:
        processed = {k: (p(values[k]) if p else values[k]) for k, p in self.processors.items()}
        return tuple(processed[k] for k in self.order) if self.order else processed


@lru_cache(maxsize=4)
def _compiled_insert(dialect: Dialect) -> _CompiledInsert:
    insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(_table)
        .values({name: bindparam(name, type_=_table.c[name].type) for name in _COLUMNS})
        .values(status=literal_column(f"'{InboxStatus.RECEIVED}'"), attempts=literal_column("0"))
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(_table.c.id)
    )
    compiled = stmt.compile(dialect=dialect)
    processors = {name: _table.c[name].type.bind_processor(dialect) for name in _COLUMNS}
    order = tuple(compiled.positiontup) if compiled.positional else None
    return _CompiledInsert(str(compiled), order, processors)


def store(conn: Connection, events: Sequence[NewEvent]) -> list[int]:
    """INSERT each event unless (source, event_id) is already there; return the ids of the new rows."""
    compiled = _compiled_insert(conn.dialect)
    now = utcnow()
    ids: list[int] = []
    for ev in events:
        values = {
            "source": ev.source, "event_id": ev.event_id, "event_type": ev.event_type,
            "payload": ev.payload, "received_at": now, "available_at": now, "published_at": now,
        }  # fmt: skip
        row = _run_raw(conn, compiled.sql, compiled.params(values))
        if row is not None:
            ids.append(row[0])
    return ids


def _run_raw(conn: Connection, sql: str, params: Any) -> Any:
    """One statement on the driver's own cursor (the webhook path's: SQLAlchemy's per-statement machinery
    cost as much as the statement), its first row returned."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchone()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _driver_error(conn, sql, exc) from exc
    finally:
        with suppress(Exception):  # a cursor of a connection that died may not close cleanly
            cursor.close()


def _driver_error(conn: Connection, sql: str, exc: Exception) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it. A connection Postgres ended (a restart) is invalidated
    and said so, as SQLAlchemy would: `with_reconnect` runs the statement again at once on a new one, where
    the sender was answered 503."""
    lost = conn.dialect.is_disconnect(exc, None, None)
    if lost:
        conn.invalidate(exc)
    return DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost,
                               dialect=conn.dialect)  # fmt: skip


@dataclass(frozen=True)
class Echo:
    """What a webhook says one object of ours holds (records.content_hash of its canonical fields): when
    the object's link says we pushed exactly that, the webhook is our own write coming back (records.
    note_echo, the merge's echo rule), and is stored already done. `at` is the stamp the merge would note
    (None where the payload's stamp is not to be trusted, as note_echo)."""

    system: str
    kind: str
    external_id: str
    content: str
    at: datetime | None = None


# Both statements note the link as seen when it says we pushed exactly this content (only if its row is
# free: a merge holding it decides instead, through a task), with a newer stamp as the merge's echo rule
# does.
_NOTE_ECHO = """
WITH echo AS (
  UPDATE links SET last_seen_hash = %(content)s, updated_at = %(now)s,
    remote_updated_at = CASE WHEN %(at)s::timestamptz IS NOT NULL
      AND (remote_updated_at IS NULL OR remote_updated_at < %(at)s::timestamptz)
      THEN %(at)s::timestamptz ELSE remote_updated_at END
  WHERE id = (SELECT id FROM links WHERE system = %(system)s AND kind = %(kind)s
              AND external_id = %(external_id)s AND last_pushed_hash = %(content)s FOR UPDATE SKIP LOCKED)
  RETURNING id
)
"""
# One round trip on Postgres: the event inserted, done when it is the echo. A duplicate leaves the link as
# the first delivery left it (the same values).
_ECHO_SQL = _NOTE_ECHO + """
INSERT INTO inbox_events (source, event_id, event_type, payload, received_at, available_at, published_at,
                          status, attempts, processed_at)
SELECT %(source)s, %(event_id)s, %(event_type)s, %(payload)s::json, %(now)s, %(now)s, %(now)s,
       CASE WHEN EXISTS (SELECT 1 FROM echo) THEN 'done' ELSE 'received' END, 0,
       CASE WHEN EXISTS (SELECT 1 FROM echo) THEN %(now)s::timestamptz END
ON CONFLICT (source, event_id) DO NOTHING
RETURNING id, status
"""  # noqa: S608 - constant text only; every value is bound
# An event stored 'received' closed as the echo it turned out to be (our push stored its link since).
_CLOSE_ECHO_SQL = _NOTE_ECHO + """
UPDATE inbox_events SET status = 'done', processed_at = %(now)s
WHERE id = %(row_id)s AND status = 'received' AND attempts = 0 AND EXISTS (SELECT 1 FROM echo)
RETURNING id
"""  # noqa: S608 - constant text only; every value is bound


def _echo_params(echo: Echo, now: datetime) -> dict[str, Any]:
    return {"content": echo.content, "now": now, "at": echo.at, "system": echo.system, "kind": echo.kind,
            "external_id": echo.external_id}  # fmt: skip


def store_checked(conn: Connection, event: NewEvent, echo: Echo) -> tuple[int | None, bool]:
    """INSERT the event unless it is there already, and close it at once when it is the echo `echo`
    describes: (its new row id or None, whether it was the echo). On SQLite two statements: call it inside
    a transaction."""
    now = utcnow()
    if conn.dialect.name != "postgresql":
        return _store_checked_sqlite(conn, event, echo, now)
    payload = _table.c.payload.type.bind_processor(conn.dialect)
    params = {
        **_echo_params(echo, now), "source": event.source, "event_id": event.event_id,
        "event_type": event.event_type, "payload": payload(event.payload) if payload else event.payload,
    }  # fmt: skip
    row = _run_raw(conn, _ECHO_SQL, params)
    return (None, False) if row is None else (row[0], row[1] == InboxStatus.DONE)


def close_as_echo(conn: Connection, row_id: int, echo: Echo) -> bool:
    """Close the event `row_id`, still 'received' and never attempted, when it is the echo `echo`
    describes after all (its push stored the link since the event was stored). On SQLite two statements:
    call it inside a transaction."""
    now = utcnow()
    if conn.dialect.name == "postgresql":
        return _run_raw(conn, _CLOSE_ECHO_SQL, {**_echo_params(echo, now), "row_id": row_id}) is not None
    waiting = conn.execute(
        select(_table.c.id).where(
            _table.c.id == row_id, _table.c.status == InboxStatus.RECEIVED, _table.c.attempts == 0
        )
    ).first()
    if waiting is None or not _note_echo_sqlite(conn, echo, now):
        return False
    conn.execute(
        update(_table).where(_table.c.id == row_id).values(status=InboxStatus.DONE, processed_at=now)
    )
    return True


def _note_echo_sqlite(conn: Connection, echo: Echo, now: datetime) -> bool:
    links = Link.__table__
    mine = and_(
        links.c.system == echo.system, links.c.kind == echo.kind,
        links.c.external_id == echo.external_id, links.c.last_pushed_hash == echo.content,
    )  # fmt: skip
    values: dict[str, Any] = {"last_seen_hash": echo.content, "updated_at": now}
    if echo.at is not None:
        at = bindparam("echo_at", echo.at, type_=links.c.remote_updated_at.type)
        values["remote_updated_at"] = case(
            (or_(links.c.remote_updated_at.is_(None), links.c.remote_updated_at < at), at),
            else_=links.c.remote_updated_at,
        )
    return conn.execute(update(links).where(mine).values(**values)).rowcount == 1


def _store_checked_sqlite(
    conn: Connection, event: NewEvent, echo: Echo, now: datetime
) -> tuple[int | None, bool]:
    exists = conn.execute(
        select(_table.c.id).where(_table.c.source == event.source, _table.c.event_id == event.event_id)
    ).first()
    if exists is not None:
        return None, False
    echoed = _note_echo_sqlite(conn, echo, now)
    row = conn.execute(
        _table.insert()
        .values(source=event.source, event_id=event.event_id, event_type=event.event_type,
                payload=event.payload, received_at=now, available_at=now, published_at=now, attempts=0,
                status=InboxStatus.DONE if echoed else InboxStatus.RECEIVED,
                processed_at=now if echoed else None)
        .returning(_table.c.id)
    ).first()  # fmt: skip
    return (row[0] if row else None), echoed


def mark_unpublished(conn: Connection, ids: Iterable[int]) -> None:
    """The broker refused: let the redelivery sweep publish these at its next pass."""
    conn.execute(update(_table).where(_table.c.id.in_(list(ids))).values(published_at=None))


def new_claim_id() -> str:
    return uuid.uuid4().hex


def claim(conn: Connection, inbox_id: int, claim_id: str, lease: timedelta) -> bool:
    """Take the event for this worker: False if it is finished, failed for good, held by a live claim or
    locked by a worker processing it right now.

    One statement, run in autocommit: the attempt is counted durably before the handler starts (so a worker
    killed by a poisonous event still uses up its attempts), at the cost of a single round trip."""
    now = utcnow()
    claimable = (
        select(_table.c.id)
        .where(
            _table.c.id == inbox_id,
            or_(
                _table.c.status == InboxStatus.RECEIVED,
                and_(_table.c.status == InboxStatus.PROCESSING, _table.c.locked_at <= now - lease),
            ),
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    taken = conn.execute(
        update(_table)
        .where(_table.c.id == claimable)
        .values(
            status=InboxStatus.PROCESSING, claimed_by=claim_id, locked_at=now, attempts=_table.c.attempts + 1
        )
        .returning(_table.c.id)
    ).first()
    return taken is not None


def lock_claimed(session: Session, inbox_id: int, claim_id: str) -> InboxEvent | None:
    """Re-take the row lock for processing, only if our claim still stands."""
    event = session.execute(
        select(InboxEvent).where(InboxEvent.id == inbox_id).with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if event is None or event.claimed_by != claim_id or event.status != InboxStatus.PROCESSING:
        return None
    return event


def close(event: InboxEvent, status: str) -> None:
    event.status = status
    event.processed_at = utcnow()
    event.claimed_by = None
    event.last_error = None


def fail(event: InboxEvent, error: str, max_attempts: int, retry_in: float) -> bool:
    """Record a failed attempt. Returns True when it will be retried, False when it is failed for good."""
    now = utcnow()
    event.last_error = error[:4000]
    event.claimed_by = None
    if event.attempts >= max_attempts:
        event.status = InboxStatus.FAILED
        event.processed_at = now
        return False
    event.status = InboxStatus.RECEIVED
    event.available_at = now + timedelta(seconds=retry_in)
    event.published_at = now
    return True


def due_for_redelivery(
    session: Session, lease: timedelta, grace: timedelta, limit: int = 500, *, queued: bool = False
) -> list[int]:
    """Events the broker never got, or whose claim died with its worker; marked as published again. While
    the broker still holds a backlog (`queued`), an event published long ago and never started is waiting
    in it, not lost: only those never published and those whose claim lapsed are due then."""
    now = utcnow()
    waited = InboxEvent.published_at.is_(None)
    if not queued:
        waited = or_(waited, InboxEvent.published_at <= now - lease)
    due = or_(
        and_(InboxEvent.status == InboxStatus.RECEIVED, InboxEvent.available_at <= now - grace, waited),
        and_(InboxEvent.status == InboxStatus.PROCESSING, InboxEvent.locked_at <= now - lease),
    )
    ids = list(
        session.execute(
            select(InboxEvent.id)
            .where(due)
            .order_by(InboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if ids:
        session.execute(update(InboxEvent).where(InboxEvent.id.in_(ids)).values(published_at=now))
    return ids


def reopen(session: Session, inbox_id: int) -> InboxEvent | None:
    """Make a failed or finished event run again from scratch (the `replay` command)."""
    event = session.get(InboxEvent, inbox_id, with_for_update=True)
    if event is None:
        return None
    now = utcnow()
    event.status = InboxStatus.RECEIVED
    event.attempts = 0
    event.last_error = None
    event.claimed_by = None
    event.available_at = now
    event.published_at = now
    return event


def find(session: Session, ref: str) -> InboxEvent | None:
    """An event by inbox id, or by 'source:event_id' as the sender named it."""
    if ref.isdigit():
        return session.get(InboxEvent, int(ref))
    source, _, event_id = ref.partition(":")
    return session.execute(
        select(InboxEvent).where(InboxEvent.source == source, InboxEvent.event_id == event_id)
    ).scalar_one_or_none()


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
    found = {status: count for status, count in rows}
    return {status: found.get(status, 0) for status in InboxStatus.ALL}


def oldest_unprocessed(session: Session) -> datetime | None:
    return session.execute(
        select(func.min(InboxEvent.received_at)).where(
            InboxEvent.status.in_((InboxStatus.RECEIVED, InboxStatus.PROCESSING))
        )
    ).scalar()


def recent_failures(session: Session, limit: int = 20) -> list[InboxEvent]:
    return list(
        session.execute(
            select(InboxEvent)
            .where(InboxEvent.status == InboxStatus.FAILED)
            .order_by(InboxEvent.id.desc())
            .limit(limit)
        ).scalars()
    )
