"""Push a record to one system: the fan-out half of every sync flow.

Only what that system carries is sent, and only when it differs from what we last sent there; the effect
runs under an idempotency key per record version (and per `replay` of the push), created once (vendor
key, look-up before create, or the create first where the vendor keeps the marker unique: its answer is the
object already there, if any). A look-up before create serves the creates waiting behind it too, which this
push then makes under their own claims (tasks.push_batch).

A push is conditional: before an update the object is read, and an edit there that the hub has not seen
(its webhook late or lost) is merged first, as that system's change, so no push overwrites a newer edit.
A group with a fixed owner is written only when the hub holds a value in it (records.writable_fields).

A push is done when the vendor holds what we sent: the adapter reads its answer back into canonical
fields, and `held_by` compares them with what we sent. A field the vendor kept from elsewhere (ERPNext
takes a Customer's email and phone from its primary Contact) or dropped silently (an unknown Directus
field) fails the push with a reason naming the system, record and fields; the link then records what the
vendor holds, with the stamp of its answer, so neither the failed values nor its echo pass for an edit.

F9: a tombstoned record is archived where it lives; a restored one is un-archived where we (or the system
itself) archived it, once per restore version, and created again, after a look-up by its marker, where it
was hard-deleted (a Directus item, an ERPNext Customer; never a Mautic contact, see NEVER_RECREATED): a
restore brings the record back everywhere, and the look-up keeps a retried or repeated push from making a
second copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import and_, select, update

from connectors import connector_for
from connectors.adapters import adapters, creates_first
from connectors.current import read_current, readable, with_history
from syncengine import outbox
from syncengine.canonical import group_of, owner_of
from syncengine.celery_app import app
from syncengine.db import read_scope, session_scope
from syncengine.errors import Permanent, Retryable, WaitingFor
from syncengine.idempotency import Effect, once
from syncengine.models import Link, Record
from syncengine.records import (
    GONE,
    TOMBSTONE,
    already_has,
    content_hash,
    merge,
    push_fields,
    record_id_for,
    record_pushed,
)
from syncengine.settings import get_settings

from . import push_batch
from .dispatch import retry_later

log = logging.getLogger(__name__)

# A record waiting for another (an invoice for its contact) retries with the growing backoff: 10 tries
# wait about half an hour in all; past that the other record is not coming, and retrying forever would
# only hide it (the push fails for good with that reason; the next change, a sweep or `replay` tries again).
WAIT_RETRIES = 10


# Mautic owns marketing consent: a contact deleted there may be an erasure the person asked for (GDPR), and
# recreating it would bring back someone without consent or do-not-contact history. A restore elsewhere
# leaves it deleted; the drift report lists it for a person to decide.
NEVER_RECREATED = frozenset({"mautic"})


class Refused(Permanent):
    """The vendor answered the write but does not hold what we sent."""


class _Refs:
    """Resolves the hub ids a record points to (an invoice's contact) into one system's ids."""

    def external_id(self, record_id: int, system: str) -> str | None:
        with read_scope() as session:
            return session.execute(
                select(Link.external_id).where(Link.record_id == record_id, Link.system == system)
            ).scalar_one_or_none()


@app.task(name="tasks.push.push", bind=True, acks_late=True, max_retries=None)
def push(self, record_id: int, system: str) -> str:  # type: ignore[no-untyped-def]
    with push_batch.following(push_record, _resend):  # the creates looked up with this one's, once it is done
        return _push(self, record_id, system)


def _resend(row_id: int, record_id: int, system: str) -> None:
    outbox.publish([outbox.Staged(row_id, push.s(record_id, system))])


def _push(self, record_id: int, system: str) -> str:  # type: ignore[no-untyped-def]
    try:
        return push_record(record_id, system)
    except WaitingFor as exc:
        if self.request.retries >= WAIT_RETRIES:
            tries = self.request.retries
            reason = f"push of record {record_id} to {system} gave up after {tries} tries: {exc}"
            log.error("%s", reason)
            return outbox.failed(reason, "gave up")
        raise retry_later(self, exc) from exc
    except Retryable as exc:
        raise retry_later(self, exc) from exc
    except Permanent as exc:
        reason = str(exc) if isinstance(exc, Refused) else f"push of record {record_id} to {system}: {exc}"
        log.error("push failed for good: %s", reason)
        return outbox.failed(reason)


@dataclass(frozen=True)
class Target:
    """One record as one system should hold it, and what its link says that system has."""

    record_id: int
    system: str
    kind: str
    version: int
    adapter: Any
    fields: dict[str, Any]
    external_id: str | None
    pushed: str | None
    current: bool
    deleted: bool
    seen: str | None = None  # the hash of the state that system last reported
    again: str = ""

    def key(self, operation: str) -> str:
        """The effect's idempotency key: once per record version, once more per `replay` of the push, and
        once per repair run (`again`: the system lost what an earlier push of this version wrote)."""
        replayed = outbox.replay_round()
        return (
            f"{operation}:{self.system}:{self.kind}:{self.record_id}:v{self.version}"
            + (f":replay{replayed}" if replayed else "")
            + (f":{self.again}" if self.again else "")
        )


def push_record(record_id: int, system: str, again: str = "") -> str:
    target = _target(record_id, system)
    if isinstance(target, str):
        return target
    target = _replace(target, again=again)
    if target.deleted:
        return _archive(target)
    restored = ""
    if target.pushed == TOMBSTONE and target.external_id is not None:
        restored = _unarchive(target)
    elif target.pushed == GONE:
        if system in NEVER_RECREATED:
            return "deleted there for good"
        target = _replace(target, external_id=None, current=False)  # gone there: created there again
    if target.pushed == content_hash(target.fields) or target.current:
        return restored or "unchanged"
    if target.external_id is None:
        return _create(target)
    caught_up, read = _catch_up(target)
    if caught_up is not target:  # that system had changed: what to write there is decided again
        return push_record(record_id, system, again)
    return _update(target, read)


def _catch_up(target: Target) -> tuple[Target, Any]:
    """A push is conditional: the object is read first, and when it is not what we last saw or pushed
    there (an edit whose webhook is late or lost), that edit is merged as a change from that system before
    anything is written, and the others hear of it. No blind overwrite of a newer edit. Returns another
    Target when the hub changed, and the object as read (None when it was not read)."""
    if not readable(target.system, target.kind):
        return target, None
    obj = read_current(target.system, target.kind, target.external_id or "")
    if obj is None:
        return target, None  # gone there: the update says so, and the delete is its own event
    change = target.adapter.to_change(obj)
    if content_hash(change.fields) in (target.pushed, target.seen):
        return target, obj
    with read_scope() as session:
        change = with_history(session, change)
    log.info("%s %s %s changed since we last saw it: merged before the push of record %s",
             target.system, target.kind, target.external_id, target.record_id)  # fmt: skip
    services = get_settings().services
    with session_scope() as session:
        merged = merge(session, change)
        pushes = [push.s(merged.record_id, other) for other in merged.targets
                  if other != target.system and services[other].configured]  # fmt: skip
        staged = outbox.stage(session, pushes)
    outbox.publish(staged)
    now = _target(target.record_id, target.system)
    return now if isinstance(now, Target) and _replace(now, again=target.again) != target else target, obj


def _target(record_id: int, system: str) -> Target | str:
    with read_scope() as session:
        found = session.execute(
            select(Record, Link)
            .outerjoin(Link, and_(Link.record_id == Record.id, Link.system == system))
            .where(Record.id == record_id)
        ).first()
        if found is None:
            return "gone"
        record, link = found
        adapter = adapters().get((system, record.kind))
        if adapter is None:
            return "not carried"
        fields = push_fields(adapter, record)
        return Target(
            record_id, system, record.kind, record.version, adapter, fields,
            link.external_id if link else None, link.last_pushed_hash if link else None,
            link is not None and already_has(link, record.kind, fields), record.deleted_at is not None,
            link.last_seen_hash if link else None,
        )  # fmt: skip


def _replace(target: Target, **changes: Any) -> Target:
    return Target(**{**target.__dict__, **changes})


# --- the write, and what the vendor holds after it --------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the vendor holds after our write: the carried fields we sent, but those it did not take as
    it holds them; the stamp of that state; and each field it did not take: name -> (sent, held). (A
    value it computes itself, in a group it owns, is left for its own change to bring into the hub.)"""

    fields: dict[str, Any]
    at: datetime | None
    refused: dict[str, tuple[Any, Any]]


def held_by(target: Target, answer: Any, *, creating: bool) -> Held:
    """The one rule for every adapter: the vendor's answer, read back by the adapter into canonical fields
    (normalised as every change is), against each field we sent. Compared are only fields that adapter
    reports, outside field groups the target system owns (it computes them, we never write them there:
    ERPNext's invoice totals, Mautic's consent); a create sends no blanks, so an empty field we hold is
    not compared on a create. An answer the adapter cannot read (an Invoice Ninja note line) is taken as
    it is: nothing to compare."""
    try:
        change = target.adapter.to_change(answer)
    except (NotImplementedError, KeyError, TypeError, ValueError, AttributeError):
        return Held(dict(target.fields), None, {})
    reported = change.fields
    refused = {
        name: (value, reported[name])
        for name, value in target.fields.items()
        if name in reported and reported[name] != value and not (creating and value is None)
        and owner_of(target.kind, group_of(target.kind, name) or "") != target.system
    }  # fmt: skip
    # A group we did not write (an owner's group the hub has no value in) is held as the vendor reports it,
    # since the echo of this write carries it too; but not a value the vendor computes in a group of its
    # own (ERPNext's invoice totals): that is news, for its own change to bring into the hub.
    unsent = {
        name: value for name, value in reported.items()
        if name not in target.fields
        and (value is None or owner_of(target.kind, group_of(target.kind, name) or "") != target.system)
    }  # fmt: skip
    fields = {**unsent, **target.fields, **{name: kept for name, (_sent, kept) in refused.items()}}
    return Held(fields, change.remote_updated_at, refused)


def refusal(target: Target, held: Held) -> str:
    """ "erpnext kept email='old@x.test' (sent 'new@x.test') for contact 12" """
    parts = [f"{name}={_short(kept)} (sent {_short(sent)})" for name, (sent, kept) in held.refused.items()]
    return f"{target.system} kept {', '.join(parts)} for {target.kind} {target.record_id}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bookkeeping(target: Target, seen: list[Held], *, creating: bool) -> Any:
    """The link, in the transaction that finishes the effect: what the vendor now holds and its stamp."""

    def finish(session: Any, answer: Any) -> None:
        held = held_by(target, answer, creating=creating)
        seen.append(held)
        external_id = target.adapter.external_id(answer)
        record_pushed(session, target.record_id, target.system, target.kind, external_id, held.fields,
                      held.at)  # fmt: skip

    return finish


def _update(target: Target, read: Any = None) -> str:
    """`read`: the object as the push's catch-up just read it, for an adapter whose update needs more of
    it than we keep (`update_read`: ERPNext's Customer names its primary Contact), not to read it again."""
    body = target.adapter.to_vendor(target.fields, _Refs())
    connector, seen = connector_for(target.system), []
    effect = Effect(target.key("push"), target.system, f"push_{target.kind}", body)
    update_read = getattr(target.adapter, "update_read", None)

    def call(_attempt: Any) -> Any:
        if update_read is not None and read is not None:
            return update_read(connector, target.external_id, body, read)
        return target.adapter.update(connector, target.external_id, body)

    answer = once(effect, call, on_finish=_bookkeeping(target, seen, creating=False))
    held = seen[0] if seen else held_by(target, answer, creating=False)
    if held.refused:
        raise Refused(refusal(target, held))
    return "updated"


def _create(target: Target) -> str:
    """Created (or found by its marker, made by an earlier try or by someone else); a found object that
    holds other values is then updated once, as any push to it would."""
    adapter = target.adapter
    body = adapter.to_vendor(target.fields, _Refs())  # first: it may wait for another record
    connector, seen = connector_for(target.system), []
    effect = Effect(target.key("push"), target.system, f"push_{target.kind}", body)
    marker, unique = adapter.marker(target.fields), creates_first(adapter, connector, target.fields)
    to_create = partial(_to_create, system=target.system)  # a follower's fields, if it creates there
    with push_batch.looked_up(target, marker, connector, unique, to_create) as looked:
        answer = connector.create_once(
            effect, marker=marker,
            find=lambda: _unclaimed(target, looked.find(lambda: adapter.find(connector, target.fields))),
            create=lambda attempt: _own(target, adapter.create(connector, body, attempt)),
            on_finish=_bookkeeping(target, seen, creating=True), unique=unique, locked=looked.locked,
        )  # fmt: skip
    held = seen[0] if seen else held_by(target, answer, creating=True)
    if not held.refused:
        return "created"
    settle = _replace(target, external_id=adapter.external_id(answer))
    log.info("%s; updating it", refusal(settle, held))
    _settle(settle)
    return "created"


def _to_create(record_id: int, system: str) -> dict[str, Any] | None:
    """The fields a push of this record would create there with (tasks.push_batch), or None when it would
    not create: it is there already, deleted, or gone there for good."""
    target = _target(record_id, system)
    if isinstance(target, str) or target.external_id is not None or target.deleted or target.current:
        return None
    if target.pushed == GONE and system in NEVER_RECREATED:
        return None
    return target.fields


def _unclaimed(target: Target, found: Any) -> Any:
    """What the look-up found, unless it is another record's object: without an email a contact is looked
    up by name, and two people of the same name are two records, each with its own object there."""
    if found is None:
        return None
    owner = record_id_for(None, target.system, target.kind, target.adapter.external_id(found))
    if owner is not None and owner != target.record_id:
        log.info("%s %s %s found by its marker is record %s's; creating one for record %s", target.system,
                 target.kind, target.adapter.external_id(found), owner, target.record_id)  # fmt: skip
        return None
    return found


def _own(target: Target, answer: Any) -> Any:
    """The create's answer, unless it is another live record's object: a vendor that keeps the marker unique
    (tasks create there first, Connector.create_once) answers the object that holds it, and that may be
    another record's (two records of one email: the hub holds each apart, that vendor cannot). It is not
    linked to this record too (the link is unique), nor is a second one made there: the push fails, naming
    both, for a person to merge them. (A deleted record's object is taken over, as a look-up would.)"""
    external_id = target.adapter.external_id(answer)
    with read_scope() as session:
        owner = session.execute(
            select(Link.record_id)
            .join(Record, Record.id == Link.record_id)
            .where(Link.system == target.system, Link.kind == target.kind, Link.external_id == external_id,
                   Link.record_id != target.record_id, Record.deleted_at.is_(None))
        ).scalar_one_or_none()  # fmt: skip
    if owner is not None:
        marker = target.adapter.marker(target.fields)
        raise Permanent(
            f"{target.system} {target.kind} {external_id} holds this {target.kind}'s marker ({marker}) and "
            f"is record {owner}'s; {target.system} keeps one per marker, so record {target.record_id} "
            "cannot have its own there: merge the two records"
        )
    return answer


def _settle(target: Target) -> None:
    body = target.adapter.to_vendor(target.fields, _Refs())
    connector, seen = connector_for(target.system), []
    effect = Effect(target.key("push") + ":settle", target.system, f"push_{target.kind}", body)
    answer = once(effect, lambda attempt: target.adapter.update(connector, target.external_id, body),
                  on_finish=_bookkeeping(target, seen, creating=False))  # fmt: skip
    held = seen[0] if seen else held_by(target, answer, creating=False)
    if held.refused:
        raise Refused(refusal(target, held))


# --- F9: archive and restore ------------------------------------------------------------------------------


def _archive(target: Target) -> str:
    """F9: a deleted record is archived (never deleted) where the adapter knows how, once per tombstone;
    a system without `archive` (Mautic keeps a contact's marketing history) or without the object is
    left alone."""
    archive = getattr(target.adapter, "archive", None)
    if archive is None or target.external_id is None:
        return "not archived"
    if target.pushed in (TOMBSTONE, GONE):
        return "archived already" if target.pushed == TOMBSTONE else "gone there"
    connector, external_id = connector_for(target.system), target.external_id
    effect = Effect(target.key("archive"), target.system, f"archive_{target.kind}", external_id)

    def finish(session: Any, _obj: Any) -> None:
        session.execute(
            update(Link)
            .where(Link.record_id == target.record_id, Link.system == target.system)
            .values(last_pushed_hash=TOMBSTONE)
        )

    once(effect, lambda attempt: archive(connector, external_id), on_finish=finish)
    return "archived"


def _unarchive(target: Target) -> str:
    """F9 reversed: the copy archived there comes back, once per restore version. Once it is live the link
    holds what the system has again (the content hash when it has every carried field, so the restore's
    own echo is known as one); a field that changed meanwhile is then pushed as any update is."""
    restore = getattr(target.adapter, "restore", None)
    pushed = content_hash(target.fields) if target.current else None

    def finish(session: Any, _obj: Any) -> None:
        session.execute(
            update(Link)
            .where(Link.record_id == target.record_id, Link.system == target.system,
                   Link.last_pushed_hash == TOMBSTONE)
            .values(last_pushed_hash=pushed)
        )  # fmt: skip

    if restore is None:  # nothing was archived there (Mautic keeps its contacts): nothing to undo
        with session_scope() as session:
            finish(session, None)
        return "unchanged"
    connector, external_id = connector_for(target.system), target.external_id
    effect = Effect(target.key("restore"), target.system, f"restore_{target.kind}", external_id)
    once(effect, lambda attempt: restore(connector, external_id), on_finish=finish)
    return "restored"
