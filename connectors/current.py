"""Read one object back as the vendor holds it now: a webhook is a notice that something changed, and
where its payload cannot be ordered (a stamp no newer than one already applied) or a push must know what
it would overwrite, the current state is what counts.

A state read back is stamped with the object's newest edit; where the vendor keeps a history of its
writes (Directus's revisions), each group it changed is dated by the write that gave it its value
(`with_history`), so an edit whose webhook came late is not taken for as new as the edit after it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from syncengine.errors import Permanent
from syncengine.records import Change, changed_groups, dated

from . import connector_for
from .adapters import adapter_for, adapters


def readable(system: str, kind: str) -> bool:
    """The vendor can be asked for the object as it is now (its adapter has `current`)."""
    return hasattr(adapters().get((system, kind)), "current")


def read_current(system: str, kind: str, external_id: str) -> dict[str, Any] | None:
    """The object as it is now, or None when the vendor no longer has it (404)."""
    try:
        return adapter_for(system, kind).current(connector_for(system), external_id)
    except Permanent as exc:
        if exc.status == 404:
            return None
        raise


def with_history(session: Session, change: Change) -> Change:
    """The change with each group it changes dated by the vendor's history of the object, where the
    adapter reads one (`dates`); as it is otherwise, or when the history says nothing of a group. An object
    never edited since its creation is not asked about: each group was written at its stamp."""
    history = getattr(adapters().get((change.system, change.kind)), "dates", None)
    if history is None or change.deleted or change.unedited:
        return change
    groups = changed_groups(session, change)
    if not groups:
        return change
    return dated(change, history(connector_for(change.system), change.external_id, groups))
