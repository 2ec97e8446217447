"""The hub: merge a change from one system into the canonical record, then say who must hear of it.

Under the record's lock: find the record by its link (or its natural key, so the same contact created in
two systems at once is one record), drop the change if it is the echo of what we pushed there or stamped
before a state of that object already applied (a payload its stamp cannot order is read back by the handler
first: `unordered`), take each field group by the conflict policy (a fixed owner, else the newest remote
modification), bump the version when something changed, and name the other systems that carry the kind,
and the source too when the hub kept a value other than the one it reported (it holds a loser no later
event would correct). Pushing is the caller's next step.

F9 (deletes and restores): a link also says whether its system's copy is live. `last_pushed_hash` holds
TOMBSTONE while that copy is archived (by the system itself or by our archive push) and GONE once it was
hard-deleted there (ERPNext on_trash, a Directus or Mautic delete), since an archived copy has no content
of ours to compare echoes with. A live report through a TOMBSTONE link is an un-archive in that system and
brings the record back (deleted_at cleared, version bumped, fanned out); a live report through any other
link of a tombstoned record is only an edit: its fields are kept for the day the record is restored, and
nothing is pushed. So an edit of a still-archived copy, or of a Mautic contact (Mautic cannot archive),
never resurrects a record, and only the system that holds the archived copy can restore it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .canonical import CARRIERS, SCHEMA, group_of, owner_of
from .models import Link, Record, utcnow

log = logging.getLogger(__name__)

TOMBSTONE = "tombstone"  # links.last_pushed_hash while that system's copy is archived
GONE = "gone"  # links.last_pushed_hash once that system's copy was hard-deleted: recreated on a restore


@dataclass(frozen=True)
class Change:
    """What one system says an entity looks like now, in canonical fields (from that system's mapper)."""

    system: str
    kind: str
    external_id: str
    fields: dict[str, Any]
    remote_updated_at: datetime
    match_key: str | None = None
    deleted: bool = False  # not live there: archived (restorable in that system) or deleted
    gone: bool = False  # deleted beyond restore there (the object no longer exists)
    # field group -> when its value was written, where that is known to be before `remote_updated_at`:
    # a read-back is stamped with the object's newest edit, which may be of another group (`dated`).
    dated: dict[str, datetime] = field(default_factory=dict)
    # Never edited since it was created (its stamp is its creation): every group got its value at that
    # stamp, so the vendor's history of writes could only say so again (connectors.current.with_history).
    unedited: bool = False


@dataclass
class Merged:
    record_id: int
    version: int
    changed: list[str] = field(default_factory=list)
    echo: bool = False
    targets: list[str] = field(default_factory=list)


def content_hash(fields: dict[str, Any]) -> str:
    """The same content hashes the same whichever system it came back from (echo suppression)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def dated(change: Change, dates: Mapping[str, datetime]) -> Change:
    """The change with these field groups dated (the earliest date known wins, none later than its stamp):
    an object read back carries the stamp of its newest edit, which may be of another group, and a group
    written earlier (its webhook late or lost) must not pass for as new as that, or it would win over an
    edit made elsewhere since."""
    carried = _groups(change.kind, change.fields)
    found = {
        group: min(at, change.dated.get(group, change.remote_updated_at))
        for group, at in dates.items() if group in carried
    }  # fmt: skip
    return replace(change, dated={**change.dated, **found}) if found else change


def same_groups(one: Change, other: Change) -> set[str]:
    """The field groups holding the same values in two states of one object."""
    mine, theirs = _groups(one.kind, one.fields), _groups(other.kind, other.fields)
    return {group for group, values in mine.items() if theirs.get(group) == values}


def changed_groups(session: Session, change: Change) -> dict[str, dict[str, Any]]:
    """The field groups (name -> values) whose values that system did not hold when we last saw or wrote
    the object: the edits this state carries, which the merge will weigh."""
    link = _link_of(session, change)
    known = (link.known or {}) if link is not None else {}
    return {
        group: values for group, values in _groups(change.kind, change.fields).items()
        if known.get(group) != content_hash(values)
    }  # fmt: skip


def merge(session: Session, change: Change) -> Merged:
    record, link = _record_for(session, change)
    seen = content_hash(change.fields)
    stale = _behind(link, change)
    tombstone = change.deleted and record.deleted_at is None and not stale
    restore = restores(record, link, change)
    if link.last_pushed_hash == seen and not change.deleted:
        # Our own push coming back (by webhook or sweep): nothing new, nothing to fan out.
        _note_seen(link, seen, change.remote_updated_at)
        return Merged(record.id, record.version, echo=True)
    if older_than_our_push(link, change) or (stale and not change.deleted):
        log.info("%s %s %s stamped %s, before a state already applied: not an edit", change.system,
                 change.kind, change.external_id, change.remote_updated_at)  # fmt: skip
        return Merged(record.id, record.version, echo=True)
    changed = _apply(record, link, change)
    if not change.deleted and link.last_pushed_hash not in (TOMBSTONE, GONE):
        link.last_pushed_hash = None  # that system holds what it just reported, no longer what we pushed
    told = record.deleted_at is None and not change.deleted and bool(overruled(record, change))
    if change.deleted and not stale:
        link.last_pushed_hash = GONE if change.gone else TOMBSTONE
    if tombstone:
        record.deleted_at = utcnow()
        changed.append("deleted")
    elif restore:
        log.info("%s %s %s restored: record %s lives again", change.system, change.kind,
                 change.external_id, record.id)  # fmt: skip
        record.deleted_at = None
        link.last_pushed_hash = None  # live again there, with the content it just reported
        changed.append("restored")
    _note_seen(link, seen, change.remote_updated_at)
    if changed:
        record.version += 1
        record.updated_at = utcnow()
    # A restore goes to its source as well: what changed elsewhere while the record was a tombstone was
    # pushed nowhere, and the copy just un-archived there still lacks it.
    # So does a change the hub did not take whole (a newer edit elsewhere, the owner's group): the source
    # holds values that lost, and no later event would ever correct them there.
    others = [s for s in CARRIERS.get(change.kind, ()) if s != change.system or restore or told]
    targets = others if changed else [change.system] if told else []
    return Merged(record.id, record.version, changed, targets=targets)


def overruled(record: Record, change: Change) -> list[str]:
    """The fields the source reported with a value other than the hub's, in groups it may be written."""
    data = record.data or {}
    hub = writable_fields(change.kind, {name: data.get(name) for name in change.fields})
    return [
        name for name, value in hub.items()
        if group_of(change.kind, name) is not None and change.fields[name] != value
    ]  # fmt: skip


def push_fields(adapter: Any, record: Record) -> dict[str, Any]:
    """What a push of this record writes to the adapter's system (tasks.push, and the drift compare)."""
    return writable_fields(record.kind, adapter.carried(record.data or {}))


def writable_fields(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a push may write: not a group with a fixed owner while the hub holds no value in it
    (the owner never said, or says it does not know: Mautic's consent is None then, never assumed), since
    writing that blank would null what the system holds, as a Directus restore nulled Mautic's consent."""
    blank = {
        group for group, names in SCHEMA[kind].items()
        if owner_of(kind, group) is not None and all(fields.get(name) is None for name in names)
    }  # fmt: skip
    return {name: value for name, value in fields.items() if group_of(kind, name) not in blank}


def restores(record: Record, link: Link, change: Change) -> bool:
    """A live copy reported through a link whose copy was archived, stamped after the archive: that system
    un-archived it. A live report stamped at or before the archive is the edit that preceded it, taken late
    (two workers take an edit and the archive right after it in either order)."""
    return (
        not change.deleted
        and record.deleted_at is not None
        and link.last_pushed_hash == TOMBSTONE
        and (link.remote_updated_at is None or change.remote_updated_at > link.remote_updated_at)
    )


def older_than_our_push(link: Link, change: Change) -> bool:
    """A live state of that system stamped before the answer to our last push there is one our push
    already replaced (a webhook delivered late, an echo carrying values the vendor kept from before): not
    an edit. The rule is strict, and the echo rule above (our own content) comes first: at the very
    stamp of our answer, content other than what the vendor answered is an edit made in the same tick,
    as vendors that stamp whole seconds (Invoice Ninja, Mautic) stamp an edit right after our push, and
    is taken. A delete or archive is never dropped by it (our update did not undo it)."""
    pushed = link.pushed_remote_at
    return pushed is not None and not change.deleted and change.remote_updated_at < pushed


def unordered(session: Session, change: Change) -> bool:
    """A live state of a known object whose stamp is no newer than one already applied from that system
    (or the answer to our push there) and whose content is neither: its payload cannot say whether it
    comes before or after the state the hub has (equal whole-second stamps, a late webhook)."""
    link = _link_of(session, change)
    if link is None or change.deleted:
        return False
    newest = max(
        (at for at in (link.remote_updated_at, link.pushed_remote_at) if at is not None), default=None
    )
    known = (link.last_seen_hash, link.last_pushed_hash)
    return (
        newest is not None and change.remote_updated_at <= newest and content_hash(change.fields) not in known
    )


def _behind(link: Link, change: Change) -> bool:
    """The system already reported a newer version of this object: an archive stamped before it (the echo
    of our archive, taken after the restore that followed) changes no state."""
    return link.remote_updated_at is not None and change.remote_updated_at < link.remote_updated_at


def note_echo(session: Session, change: Change) -> bool:
    """True, with the link noted as seen, when the change is exactly what we last pushed to that object:
    an echo recognised from the event's own payload, without reading the object back from the vendor."""
    if change.deleted:
        return False
    link = _link_of(session, change)
    seen = content_hash(change.fields)
    if link is None or link.last_pushed_hash != seen:
        return False
    # Not its stamp: a payload may carry none (a Directus create's input is read as stamped now), and a
    # stamp later than the vendor's would make the edit that followed our write look older than it.
    _note_seen(link, seen, None)
    return True


def _apply(record: Record, link: Link, change: Change) -> list[str]:
    """Take each field group the policy gives this change; return the fields whose value changed.

    A three-way look per group: against what this system last had (its base, as pushed or seen), a
    group it did not touch is left alone (its old values never overwrite newer ones from elsewhere), and
    an edit made on top of the hub's current values is simply taken. Only edits made concurrently in two
    systems are a conflict, settled by the owner or the newest remote modification."""
    data = dict(record.data or {})
    meta = dict(record.field_meta or {})
    known = dict(link.known or {})
    changed: list[str] = []
    for group, incoming in _groups(change.kind, change.fields).items():
        at = change.dated.get(group, change.remote_updated_at).isoformat()
        mine, base = content_hash(incoming), known.get(group)
        known[group] = mine
        if base == mine:
            continue  # this system did not change the group
        current = content_hash({name: data.get(name) for name in incoming})
        if base != current and not _wins(change, group, meta.get(group), at):
            last = meta.get(group) or {}
            log.info("record %s %s: %s's edit stamped %s loses to %s's stamped %s", record.id, group,
                     change.system, at, last.get("system"), last.get("at"))  # fmt: skip
            continue
        if owner_of(change.kind, group) not in (None, change.system):
            continue
        taken = [name for name, value in incoming.items() if data.get(name) != value]
        for name in taken:
            data[name] = incoming[name]
        changed += taken
        if taken or group not in meta:
            # Only a change of values dates the group: the same values reported later (a copy read back
            # before a push) must not make a newer edit elsewhere look older than them.
            meta[group] = {"system": change.system, "at": at}
    record.data, record.field_meta, link.known = data, meta, known
    return changed


def _groups(kind: str, fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        group = group_of(kind, name)
        if group is not None:
            grouped.setdefault(group, {})[name] = value
    return grouped


def _wins(change: Change, group: str, last: dict[str, str] | None, at: str) -> bool:
    owner = owner_of(change.kind, group)
    if owner is not None:
        return change.system == owner
    if last is None:
        return True
    # Newest remote modification wins; on a tie, the system name decides, so every worker agrees.
    return (at, change.system) >= (last["at"], last["system"])


def _link_of(session: Session, change: Change) -> Link | None:
    """The link of the object a change names, if the hub knows it."""
    return session.execute(
        select(Link).where(
            Link.system == change.system, Link.kind == change.kind, Link.external_id == change.external_id
        )
    ).scalar_one_or_none()


def _record_for(session: Session, change: Change) -> tuple[Record, Link]:
    # The known object and its record, the record locked, in one round trip.
    found = session.execute(
        select(Link, Record)
        .join(Record, Record.id == Link.record_id)
        .where(Link.system == change.system, Link.kind == change.kind, Link.external_id == change.external_id)
        .with_for_update(of=Record)
    ).first()
    if found is not None:
        link, record = found
        return record, link
    record = _by_match_key(session, change) if change.match_key else None
    if record is None:
        record = Record(kind=change.kind, data={}, field_meta={}, version=0)
        session.add(record)
        session.flush()
    link = _link(session, record, change)
    return record, link


def _by_match_key(session: Session, change: Change) -> Record:
    """One record per natural key, even when two systems report it at the same instant: the unique
    (kind, match_key) decides who creates it, and the other locks the winner's row."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Record)
        .values(kind=change.kind, match_key=change.match_key, data={}, field_meta={}, version=0,
                created_at=utcnow(), updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "match_key"])
    )  # fmt: skip
    return session.execute(
        select(Record)
        .where(Record.kind == change.kind, Record.match_key == change.match_key)
        .with_for_update()
    ).scalar_one()


def _link(session: Session, record: Record, change: Change) -> Link:
    existing = session.execute(
        select(Link).where(Link.record_id == record.id, Link.system == change.system)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.external_id != change.external_id and existing.last_pushed_hash in (TOMBSTONE, GONE):
            # The copy there is archived or gone, and a new object of that system has the same natural key
            # (a client created again instead of restored, a person who signs up again): the new object
            # takes the link over, as a copy restored there would, so the record lives again (restores)
            # with this object, and the old one stays archived.
            log.info("%s %s %s takes over from %s for record %s", change.system, change.kind,
                     change.external_id, existing.external_id, record.id)  # fmt: skip
            existing.external_id, existing.last_pushed_hash = change.external_id, TOMBSTONE
            existing.remote_updated_at, existing.pushed_remote_at, existing.known = None, None, {}
        elif existing.external_id != change.external_id:
            log.warning("%s %s %s already linked to %s; keeping the first", change.system, change.kind,
                        change.external_id, existing.external_id)  # fmt: skip
        return existing
    link = Link(record_id=record.id, system=change.system, kind=change.kind, external_id=change.external_id)
    session.add(link)
    session.flush()
    return link


def _note_seen(link: Link, seen: str, remote_updated_at: datetime | None) -> None:
    link.last_seen_hash = seen
    if remote_updated_at is None:
        return
    if link.remote_updated_at is None or remote_updated_at > link.remote_updated_at:
        link.remote_updated_at = remote_updated_at


def already_has(link: Link, kind: str, fields: dict[str, Any]) -> bool:
    """True when the system last had (pushed or seen) exactly these values in every field group, so a
    push would change nothing there: no write to the source of a change, nor for a group it cannot take."""
    known = link.known or {}
    groups = _groups(kind, fields)
    return bool(groups) and all(known.get(group) == content_hash(values) for group, values in groups.items())


def note_held(session: Session, change: Change) -> None:
    """What that system holds, listed as it is (anti-entropy): the base of the next merge and what a push
    compares with, so a state the merge did not take is still known to be there, and is written over."""
    link = _link_of(session, change)
    if link is None or link.last_pushed_hash in (TOMBSTONE, GONE):
        return
    seen = content_hash(change.fields)
    link.known = {
        group: content_hash(values) for group, values in _groups(change.kind, change.fields).items()
    }
    link.last_seen_hash = seen
    if link.last_pushed_hash != seen:
        link.last_pushed_hash = None  # what we pushed is no longer there


def record_id_for(session: Session | None, system: str, kind: str, external_id: str | None) -> int | None:
    """The hub record a system's object is linked to (an invoice's client → the contact record), or None.
    Pass the handler's session inside a transaction: a read of its own would not see its uncommitted links."""
    if not external_id:
        return None
    query = select(Link.record_id).where(
        Link.system == system, Link.kind == kind, Link.external_id == str(external_id)
    )
    if session is not None:
        return session.execute(query).scalar_one_or_none()
    from .db import read_scope

    # One SELECT needs no transaction: on SQLite a transaction takes the file's write lock (BEGIN
    # IMMEDIATE), and a caller inside one of its own (a push's bookkeeping, as it closes its key) waited on
    # itself for the busy timeout, 30 s, with every writer and webhook behind it.
    with read_scope() as own:
        return own.execute(query).scalar_one_or_none()


def record_pushed(
    session: Session, record_id: int, system: str, kind: str, external_id: str, fields: dict[str, Any],
    at: datetime | None = None,
) -> None:  # fmt: skip
    """After a push: the link to what we created or updated, the hash of what that system now holds (what
    we sent, unless it kept other values: echo suppression), per field group what it has (its base for the
    next three-way merge), and `at`, the stamp of its answer (the echo rule of `merge`)."""
    # This record's link there, and any other holding the same id, in one round trip.
    found = session.execute(
        select(Link, Record.deleted_at)
        .join(Record, Record.id == Link.record_id)
        .where(Link.system == system,
               or_(Link.record_id == record_id, and_(Link.kind == kind, Link.external_id == external_id)))
    ).all()  # fmt: skip
    link = next((row.Link for row in found if row.Link.record_id == record_id), None)
    stale = [row.Link for row in found if row.Link.record_id != record_id and row.deleted_at is not None]
    _release_reused_id(session, stale, system, kind, external_id)
    if link is None:
        link = Link(record_id=record_id, system=system, kind=kind, external_id=external_id)
        session.add(link)
    link.external_id = external_id
    link.last_pushed_hash = content_hash(fields)
    link.known = {group: content_hash(values) for group, values in _groups(kind, fields).items()}
    link.pushed_remote_at = at


def _release_reused_id(
    session: Session, deleted: list[Link], system: str, kind: str, external_id: str
) -> None:
    """A vendor may give a deleted object's id to a new one (ERPNext names a Customer by its name): the
    deleted record's link (among `deleted`, other records' links there, of deleted records) then points at
    someone else, so it is renamed aside, kept for the history."""
    for stale in deleted:
        if stale.kind != kind or stale.external_id != external_id:
            continue
        log.info("%s %s %s now names a new object; the deleted record %s lets it go",
                 system, kind, external_id, stale.record_id)  # fmt: skip
        stale.external_id = f"{external_id}#deleted-{stale.record_id}"[:255]
        session.flush()
