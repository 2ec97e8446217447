"""Deletes that outlive arrival order: a delete of an object the hub has not seen yet is remembered.

A create whose webhook is late can arrive after the object's delete. The hub had no link to mark deleted,
so without a memory of the delete the late create would make the record and push it everywhere (a Mautic
contact erased on request brought back). A tombstone (system, kind, external id, stamp) drops every state
of that object stamped at or before the delete, and any state at all once it is gone there for good (the
id names nothing that can come back).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import Tombstone
from .records import Change

log = logging.getLogger(__name__)


def remember(session: Session, system: str, kind: str, external_id: str, at: datetime, *, gone: bool) -> None:
    """The delete as last reported (its repeat, by webhook and by sweep, writes the same row)."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    values = {"system": system, "kind": kind, "external_id": external_id, "deleted_at": at, "gone": gone}
    session.execute(
        insert(Tombstone)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["system", "kind", "external_id"], set_={"deleted_at": at, "gone": gone}
        )
    )


def buried(session: Session, change: Change) -> bool:
    """True when a delete of this very object, remembered before the hub knew it, outlives this change."""
    stone = session.execute(
        select(Tombstone).where(
            Tombstone.system == change.system, Tombstone.kind == change.kind,
            Tombstone.external_id == change.external_id,
        )
    ).scalar_one_or_none()  # fmt: skip
    if stone is None or not (stone.gone or change.remote_updated_at <= stone.deleted_at):
        return False
    log.info("%s %s %s was deleted (%s) before the hub knew it: its state of %s is dropped", change.system,
             change.kind, change.external_id, stone.deleted_at, change.remote_updated_at)  # fmt: skip
    return True
