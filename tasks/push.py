"""Push a record to one system: the fan-out half of every sync flow.

Only what that system carries is sent, and only when it differs from what we last sent there; the effect
runs under an idempotency key per record version, created once (vendor key, or look-up before create).

F9: a tombstoned record is archived where it lives; a restored one is un-archived where we (or the system
itself) archived it, once per restore version, and created again, after a look-up by its marker, where it
was hard-deleted (a Directus item, an ERPNext Customer; never a Mautic contact, see NEVER_RECREATED): a
restore brings the record back everywhere, and the look-up keeps a retried or repeated push from making a
second copy.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import and_, select, update

import connectors.mappers  # noqa: F401 - registers every adapter
from connectors.mapping import ADAPTERS
from connectors.registry import connector_for
from syncengine.celery_app import app
from syncengine.db import read_scope, session_scope
from syncengine.errors import Permanent, Retryable, WaitingFor
from syncengine.idempotency import Effect, once
from syncengine.models import Link, Record
from syncengine.records import GONE, TOMBSTONE, already_has, content_hash, record_pushed

from .dispatch import retry_later

log = logging.getLogger(__name__)

# A record waiting for another (an invoice for its contact) retries with the growing backoff: 10 tries
# wait about half an hour in all; past that the other record is not coming, and retrying forever would
# only hide it (the push is logged and counted as given up; the next change or sweep tries again).
WAIT_RETRIES = 10


# Mautic owns marketing consent: a contact deleted there may be an erasure the person asked for (GDPR), and
# recreating it would bring back someone without consent or do-not-contact history. A restore elsewhere
# leaves it deleted; the drift report lists it for a person to decide.
NEVER_RECREATED = frozenset({"mautic"})


class _Refs:
    """Resolves the hub ids a record points to (an invoice's contact) into one system's ids."""

    def external_id(self, record_id: int, system: str) -> str | None:
        with read_scope() as session:
            return session.execute(
                select(Link.external_id).where(Link.record_id == record_id, Link.system == system)
            ).scalar_one_or_none()


@app.task(name="tasks.push.push", bind=True, acks_late=True, max_retries=None)
def push(self, record_id: int, system: str) -> str:  # type: ignore[no-untyped-def]
    try:
        return push_record(record_id, system)
    except WaitingFor as exc:
        if self.request.retries >= WAIT_RETRIES:
            log.error("push of record %s to %s gave up after %s tries: %s", record_id, system,
                      self.request.retries, exc)  # fmt: skip
            return "gave up"
        raise retry_later(self, exc) from exc
    except Retryable as exc:
        raise retry_later(self, exc) from exc
    except Permanent as exc:
        log.error("push of record %s to %s failed for good: %s", record_id, system, exc)
        return "failed"


def push_record(record_id: int, system: str) -> str:
    with read_scope() as session:
        found = session.execute(
            select(Record, Link)
            .outerjoin(Link, and_(Link.record_id == Record.id, Link.system == system))
            .where(Record.id == record_id)
        ).first()
        if found is None:
            return "gone"
        record, link = found
        adapter = ADAPTERS.get((system, record.kind))
        if adapter is None:
            return "not carried"
        kind, version, external_id = record.kind, record.version, link.external_id if link else None
        pushed = link.last_pushed_hash if link else None
        deleted = record.deleted_at is not None
        fields = adapter.carried(record.data or {})
        current = link is not None and already_has(link, kind, fields)
    if deleted:
        return _archive(adapter, record_id, system, kind, version, external_id, pushed)
    restored = ""
    if pushed == TOMBSTONE and external_id is not None:
        restored = _unarchive(adapter, record_id, system, kind, version, external_id, fields, current)
    elif pushed == GONE:
        if system in NEVER_RECREATED:
            return "deleted there for good"
        external_id, current = None, False  # that copy is no more: the record is created there again
    if pushed == content_hash(fields) or current:
        return restored or "unchanged"
    body = adapter.to_vendor(fields, _Refs())
    connector = connector_for(system)
    effect = Effect(f"push:{system}:{kind}:{record_id}:v{version}", system, f"push_{kind}", body)

    def finish(session: Any, obj: dict[str, Any]) -> None:
        record_pushed(session, record_id, system, kind, adapter.external_id(obj), fields)

    if external_id is not None:
        once(effect, lambda attempt: adapter.update(connector, external_id, body), on_finish=finish)
        return "updated"
    connector.create_once(
        effect, marker=adapter.marker(fields), find=lambda: adapter.find(connector, fields),
        create=lambda attempt: adapter.create(connector, body, attempt), on_finish=finish,
    )  # fmt: skip
    return "created"


def _archive(
    adapter: Any,
    record_id: int,
    system: str,
    kind: str,
    version: int,
    external_id: str | None,
    pushed: str | None,
) -> str:
    """F9: a deleted record is archived (never deleted) where the adapter knows how, once per tombstone;
    a system without `archive` (Mautic keeps a contact's marketing history) or without the object is
    left alone."""
    archive = getattr(adapter, "archive", None)
    if archive is None or external_id is None:
        return "not archived"
    if pushed in (TOMBSTONE, GONE):
        return "archived already" if pushed == TOMBSTONE else "gone there"
    connector = connector_for(system)
    effect = Effect(f"archive:{system}:{kind}:{record_id}:v{version}", system, f"archive_{kind}", external_id)

    def finish(session: Any, _obj: Any) -> None:
        session.execute(
            update(Link)
            .where(Link.record_id == record_id, Link.system == system)
            .values(last_pushed_hash=TOMBSTONE)
        )

    once(effect, lambda attempt: archive(connector, external_id), on_finish=finish)
    return "archived"


def _unarchive(
    adapter: Any,
    record_id: int,
    system: str,
    kind: str,
    version: int,
    external_id: str,
    fields: dict[str, Any],
    current: bool,
) -> str:
    """F9 reversed: the copy archived there comes back, once per restore version. Once it is live the link
    holds what the system has again (the content hash when it has every carried field, so the restore's
    own echo is known as one); a field that changed meanwhile is then pushed as any update is."""
    restore = getattr(adapter, "restore", None)
    pushed = content_hash(fields) if current else None

    def finish(session: Any, _obj: Any) -> None:
        session.execute(
            update(Link)
            .where(Link.record_id == record_id, Link.system == system, Link.last_pushed_hash == TOMBSTONE)
            .values(last_pushed_hash=pushed)
        )

    if restore is None:  # nothing was archived there (Mautic keeps its contacts): nothing to undo
        with session_scope() as session:
            finish(session, None)
        return "unchanged"
    connector = connector_for(system)
    effect = Effect(f"restore:{system}:{kind}:{record_id}:v{version}", system, f"restore_{kind}", external_id)
    once(effect, lambda attempt: restore(connector, external_id), on_finish=finish)
    return "restored"
