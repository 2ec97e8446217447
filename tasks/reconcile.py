"""Reconciliation sweeps (docs/architecture.md, Sweeps and drift): webhooks get lost, so every few minutes
each (system, kind) lists what changed since its cursor and feeds it to the inbox as the webhook would have.

A page's events and the cursor it earns commit in one transaction, and are published only after that
commit: a sweep that dies mid-listing resumes from the last stored page, losing nothing. Each event is keyed
by the change (`{system}:{entity}:{id}:{modified}`, syncengine.change_keys) exactly as the receiver keys the
webhook of that change, so re-listing it (the lookback, a resumed sweep) or having had its webhook is a
no-op: one inbox row per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connectors import connector_for
from syncengine import inbox
from syncengine.celery_app import app
from syncengine.db import get_engine
from syncengine.errors import Permanent
from syncengine.models import SyncCursor, utcnow
from syncengine.publish import TaskPublisher, publish_events
from syncengine.redaction import redact
from syncengine.settings import get_settings

from .sweep_sources import SOURCES, Source

log = logging.getLogger(__name__)

_cursors = SyncCursor.__table__
_publisher = TaskPublisher(app, "tasks.dispatch.process", queue="intake")
FIRST_SWEEP_WINDOW = timedelta(days=1)


@dataclass
class SweepResult:
    system: str
    kind: str
    listed: int = 0
    new: int = 0
    pages: int = 0
    cursor: str | None = None


def read_cursor(conn: Connection, system: str, kind: str) -> datetime | None:
    value = conn.execute(
        select(_cursors.c.cursor).where(_cursors.c.system == system, _cursors.c.kind == kind)
    ).scalar_one_or_none()
    return datetime.fromisoformat(value) if value else None


def set_cursor(system: str, kind: str, at: datetime) -> None:
    """Start (or restart) a sweep from `at`: after a bulk import, or to re-list a period on purpose."""
    with get_engine().begin() as conn:
        _save_cursor(conn, SweepResult(system, kind), at)


def _save_cursor(conn: Connection, result: SweepResult, cursor: datetime | None) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    values: dict[str, Any] = {
        "swept_at": utcnow(), "stats": {"listed": result.listed, "new": result.new, "pages": result.pages},
    }  # fmt: skip
    if cursor is not None:
        values["cursor"] = result.cursor = cursor.astimezone(UTC).isoformat()
    stmt = insert(_cursors).values(system=result.system, kind=result.kind, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["system", "kind"], set_=values))


def _pages(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """The listing in pages of the size asked of the vendor: the next request is made only when the
    previous page is stored."""
    it = iter(rows)
    while page := list(islice(it, size)):
        yield page


def sweep(
    system: str,
    kind: str,
    *,
    connector: Any = None,
    lookback: float | None = None,
    since: datetime | None = None,
    on_page: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """List changes since the cursor minus the lookback and store each as its webhook event. `since`
    replaces the cursor (a deliberate backfill, `syncengine sweep --since`); `on_page` hears of each page
    stored (progress)."""
    source: Source = SOURCES[(system, kind)]
    connector = connector if connector is not None else connector_for(system)
    lookback = get_settings().sweep_lookback_seconds if lookback is None else lookback
    engine = get_engine()
    with engine.connect() as conn:
        start = since or read_cursor(conn, system, kind)
    if start is None:
        # A first sweep catches up on the last day, not on all history: a year of Revolut transactions
        # would each be booked or filed for review. Older history is a backfill asked for by hand.
        start = utcnow() - FIRST_SWEEP_WINDOW
        log.info("sweep %s %s: no cursor yet, starting from %s (--since to backfill)", system, kind, start)
    since = start - timedelta(seconds=lookback + source.lookback)
    result, seen, listing_from = SweepResult(system, kind), start, utcnow()
    for page in _pages(source.list_changes(connector, since, source.page_size), source.page_size):
        events, newest = [], seen
        for row in page:
            events.append(source.event(connector, row))
            modified = source.modified(connector, row)
            newest = modified if newest is None or modified > newest else newest
        result.pages, result.listed = result.pages + 1, result.listed + len(page)
        with engine.begin() as conn:
            ids = inbox.store(conn, events)
            # An unordered listing may still hold older changes on later pages: keep the old cursor.
            _save_cursor(conn, result, newest if source.ordered else None)
        seen = newest
        result.new += len(ids)
        _publish(ids)
        if on_page is not None:
            on_page(result)
    if not source.ordered:
        # Listed by id (or by several orders): a row listed early and edited later in the listing has a stamp
        # below the newest seen. The next sweep starts no later than this listing did, and lists it again.
        seen = min(seen, listing_from)
    with engine.begin() as conn:
        _save_cursor(conn, result, seen)
    log.info("sweep %s %s: %s listed, %s new", system, kind, result.listed, result.new)
    return result


def _publish(ids: list[int]) -> None:
    """Hand the new events to the broker, or leave them for the redelivery sweep (the tests' seam)."""
    publish_events(_publisher, ids, what="swept events")


def kinds_for(system: str | None = None, kind: str | None = None) -> list[tuple[str, str]]:
    """Every (system, kind) with a sweep, narrowed to the ones asked for; without a system named, only
    the systems this deployment is configured for."""
    return [
        (s, k) for s, k in SOURCES
        if system in (None, s) and kind in (None, k) and (system or _configured(s))
    ]  # fmt: skip


def _configured(system: str) -> bool:
    service = get_settings().services.get(system)
    return service is not None and service.configured


@app.task(name="tasks.reconcile.sweep", acks_late=True)
def sweep_task(system: str, kind: str) -> dict[str, Any]:
    """The beat's entry: one schedule per (system, kind); a system this deployment lacks is skipped."""
    if not _configured(system):
        return {"skipped": f"{system} is not configured"}
    from syncengine.progress import LogTracker

    # A long sweep says how far it is in the worker's log every so often, not only when it ends.
    tracker = LogTracker(f"sweep {system} {kind}", None, "listed")
    try:
        result = sweep(system, kind, on_page=lambda r: tracker.set(done=r.listed, new=r.new))
    except Permanent as exc:  # a permission or a setting: one line, and the other sweeps go on
        log.error("sweep %s %s: %s", system, kind, exc)
        return {"failed": redact(str(exc))}
    finally:
        tracker.close()
    return {"listed": result.listed, "new": result.new, "pages": result.pages, "cursor": result.cursor}


@app.task(name="tasks.reconcile.drift_report", acks_late=True, time_limit=3600, soft_time_limit=3500)
def drift_report_task() -> dict[str, Any]:
    """The daily full compare (tasks.drift): lists every carrier in full, so it may run long."""
    from tasks import drift

    reports = drift.run()
    return {"kinds": len(reports), "differences": sum(len(r.differences) for r in reports)}


@app.task(name="tasks.reconcile.repair", acks_late=True, time_limit=3600, soft_time_limit=3500)
def repair_task() -> dict[str, Any]:
    """Anti-entropy (tasks.repair): every carrier listed in full, each difference repaired: may run long."""
    from . import repair

    repairs = repair.run()
    return {"differences": len(repairs), "failed": sum(r.failed for r in repairs)}
