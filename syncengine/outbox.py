"""The transactional outbox: the tasks a handler sets off are written in the handler's own transaction,
published once it has committed, and deleted when the broker has them.

Publishing straight after the commit would lose them to a broker that is down at that moment, or to a
worker killed between the two; a row left behind is published again by the redelivery sweep. A task
published twice is harmless: every task it holds does its effect once (tasks.push per record version,
emails and bookings under idempotency keys)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from celery import Signature
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from .db import autocommit_engine
from .models import OutboxTask, utcnow

log = logging.getLogger(__name__)
_table = OutboxTask.__table__


@dataclass(frozen=True)
class Staged:
    row_id: int
    signature: Signature


def stage(session: Session, signatures: Sequence[Signature]) -> list[Staged]:
    """Write the tasks in the caller's transaction; they exist exactly when its other writes do."""
    if not signatures:
        return []
    now = utcnow()
    rows = [{"task": sig.task, "args": _portable(sig), "created_at": now} for sig in signatures]
    stmt = insert(_table).returning(_table.c.id, sort_by_parameter_order=True)
    ids = session.execute(stmt, rows).scalars().all()
    return [Staged(row_id, sig) for row_id, sig in zip(ids, signatures, strict=True)]


def publish(staged: Sequence[Staged]) -> int:
    """After the commit: hand each task to the broker, then forget it. A broker that refuses leaves the
    rest for the redelivery sweep (and this caller's work stays done)."""
    sent: list[int] = []
    try:
        for item in staged:
            item.signature.apply_async()
            sent.append(item.row_id)
    except Exception as exc:  # the broker is down: the rows wait for the sweep
        log.warning("%s of %s tasks left in the outbox: %s", len(staged) - len(sent), len(staged),
                    type(exc).__name__)  # fmt: skip
    _forget(sent)
    return len(sent)


def republish(session: Session, app: object, grace: timedelta, limit: int = 500) -> int:
    """Publish what a broker outage or a dead worker left behind (older than `grace`, so the worker that
    staged it has had its chance), holding the rows so two sweeps never both send them."""
    rows = session.execute(
        select(_table.c.id, _table.c.task, _table.c.args)
        .where(_table.c.created_at <= utcnow() - grace)
        .order_by(_table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    staged = [Staged(row.id, _signature(app, row.task, row.args)) for row in rows]
    for item in staged:
        item.signature.apply_async()
    if staged:
        session.execute(delete(_table).where(_table.c.id.in_([s.row_id for s in staged])))
        log.info("republished %s tasks from the outbox", len(staged))
    return len(staged)


def _portable(sig: Signature) -> dict:
    return {"args": list(sig.args), "kwargs": dict(sig.kwargs), "options": dict(sig.options)}


def _signature(app: object, task: str, stored: dict) -> Signature:
    return app.signature(task, args=stored.get("args") or (), kwargs=stored.get("kwargs") or {},  # type: ignore[attr-defined]
                         **(stored.get("options") or {}))  # fmt: skip


def _forget(row_ids: list[int]) -> None:
    if not row_ids:
        return
    try:
        with autocommit_engine().connect() as conn:
            conn.execute(delete(_table).where(_table.c.id.in_(row_ids)))
    except Exception as exc:  # published already: the sweep would only send them again, harmlessly
        log.warning("published tasks not cleared from the outbox: %s", type(exc).__name__)
