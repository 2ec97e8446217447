"""The inbound half of every sync flow: a vendor's object becomes a change of the hub's record, and each
other system that carries the kind gets a push task once the event's transaction has committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from connectors import connector_for
from connectors.adapters import adapter_for
from connectors.base import marker_lock
from connectors.current import read_current, readable, with_history
from syncengine.errors import Permanent, SyncError
from syncengine.locks import lock
from syncengine.records import Change, Merged, dated, merge, note_echo, record_id_for, same_groups, unordered
from syncengine.settings import get_settings
from syncengine.tombstones import buried
from syncengine.vendors import directus, erpnext

from .dispatch import Handler, HandlerContext
from .push import push

log = logging.getLogger(__name__)

Read = Callable[[dict[str, Any]], Iterable[dict[str, Any]]]
AsSent = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Reader:
    """How an event names its objects: `read` gets them whole and current (reading back where the payload
    is partial); `as_sent`, the objects exactly as the payload carries them, lets our own write coming
    back be known as an echo without that read-back."""

    read: Read
    as_sent: AsSent
    # The objects an event carries whole as a listing read them (a sweep): taken as listed, ordered by their
    # stamp like any payload taken as sent, so read back only when out of order.
    listed: AsSent = lambda _payload: []

    def __call__(self, payload: dict[str, Any]) -> Iterable[dict[str, Any]]:
        return self.read(payload)


# Resolve what the mapper cannot without the event's session (an invoice's client → the hub contact).
Prepare = Callable[[HandlerContext, dict[str, Any]], dict[str, Any]]
# What else the merged change sets off (the invoice email).
After = Callable[[HandlerContext, Change, Merged], None]


def sync_handler(
    system: str, kind: str, read: Read, *, prepare: Prepare | None = None, after: After | None = None
) -> Handler:
    """A handler that reads the vendor objects an event names and merges each into the hub."""

    def handle(ctx: HandlerContext) -> None:
        adapter = adapter_for(system, kind)
        sent = _as_sent(ctx, adapter, read, prepare)
        if after is None and sent and all(note_echo(ctx.session, change) for change in sent):
            return  # our own write coming back, known from what the event carries: no read-back
        then = {change.external_id: change for change in sent or ()}
        listed = read.listed(ctx.event.payload) if isinstance(read, Reader) else []
        for obj in listed or read(ctx.event.payload):
            change = adapter.to_change(prepare(ctx, obj) if prepare else obj)
            if change.external_id in then:  # read back: what still holds the values sent is no newer
                change = _dated_by(change, then[change.external_id])
            _await_our_create(ctx, adapter, change)
            if listed or not isinstance(read, Reader):  # taken as sent: ordered by its stamp, or read back
                change = _ordered(ctx, adapter, change, prepare)
            if change is None or buried(ctx.session, change):
                continue
            change = with_history(ctx.session, change)
            merged = merge(ctx.session, change)
            defer_pushes(ctx, merged)
            if after is not None:
                after(ctx, change, merged)

    return handle


def _await_our_create(ctx: HandlerContext, adapter: Any, change: Change) -> None:
    """An object we have no link for may be one our push is creating right now, its webhook come before
    the push stored the link. Such a push holds the lock on the object's marker until the link is stored:
    waiting for that lock (free at once for an object made in that system) lets the merge find the link,
    where a contact without email has no natural key to be matched by."""
    marker = getattr(adapter, "marker", None)
    if marker is None or change.deleted or record_id_for(ctx.session, change.system, change.kind,
                                                         change.external_id) is not None:  # fmt: skip
        return
    try:
        name = marker_lock(change.system, marker(change.fields))
    except Permanent:
        return  # nothing to create it by, so nothing of ours is creating it
    with lock(name, timeout=1.0, wait=30.0):
        pass


def _as_sent(ctx: HandlerContext, adapter: Any, read: Read, prepare: Prepare | None) -> list[Change] | None:
    """The objects exactly as the event carries them (where the reader knows how), as changes: an exact
    match with what we pushed is our echo; anything else is read back whole. None when they are not
    what we wrote (a bad value, since corrected?)."""
    objs = read.as_sent(ctx.event.payload) if isinstance(read, Reader) else []
    try:
        return [adapter.to_change(prepare(ctx, obj) if prepare else obj) for obj in objs]
    except (SyncError, TypeError, ValueError):
        return None


def _dated_by(current: Change, then: Change) -> Change:
    """The groups of a state read back that still hold the values of an earlier state were written no
    later than that state's stamp."""
    return dated(current, dict.fromkeys(same_groups(current, then), then.remote_updated_at))


def _ordered(ctx: HandlerContext, adapter: Any, change: Change, prepare: Prepare | None) -> Change | None:
    """The change, when its stamp is newer than every state of that object already applied; else (a late
    webhook, or a second edit in the same whole second) the object as the vendor holds it now, read back,
    or None when it is gone there (its delete is an event of its own)."""
    if not unordered(ctx.session, change) or not readable(change.system, change.kind):
        return change
    log.info("%s %s %s: a state stamped %s cannot be ordered by its stamp; read back", change.system,
             change.kind, change.external_id, change.remote_updated_at)  # fmt: skip
    obj = read_current(change.system, change.kind, change.external_id)
    if obj is None:
        return None
    return _dated_by(adapter.to_change(prepare(ctx, obj) if prepare else obj), change)


def defer_pushes(ctx: HandlerContext, merged: Merged) -> None:
    """A push to each system that must hear of the change, among those this deployment is connected to:
    a system left unconfigured (a business without Mautic) carries nothing, so nothing is pushed there."""
    services = get_settings().services
    for target in merged.targets:
        if services[target].configured:
            ctx.defer(push.s(merged.record_id, target))


# --- how each sender's events name their objects ------------------------------------------------------


def as_sent(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Invoice Ninja posts the whole entity."""
    return [payload]


def under(key: str) -> Read:
    """Mautic puts the object under a key (contact, company)."""
    return lambda payload: [payload[key]] if isinstance(payload.get(key), dict) else []


def erpnext_document(doctype: str) -> Reader:
    """Frappe sends only what its Webhook template names: read the document back, whole and current; a
    sweep's event carries a Customer or Item as listed, whole (syncengine.vendors.erpnext.listed)."""

    def read(payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The document as it is now; none when it was deleted since (its on_trash event says so)."""
        doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
        name = payload.get("name") or doc.get("name")
        if not name:
            return []
        try:
            return [connector_for("erpnext").get(doctype, name)]
        except Permanent as exc:
            if exc.status != 404:
                raise
            log.info("erpnext %s %s is gone; its delete is its own event", doctype, name)
            return []

    return Reader(
        read,
        lambda payload: erpnext.listed(payload, doctype) or erpnext.doc_as_sent(payload, doctype),
        lambda payload: erpnext.listed(payload, doctype),
    )


def directus_items(collection: str) -> Reader:
    """A Directus Flow sends the request input (changed fields only): read each item back, so what is
    merged is the item as it is now (a bad value corrected since the event is read corrected); a sweep's
    event carries the item as listed, whole (syncengine.vendors.directus.listed)."""

    def read(payload: dict[str, Any]) -> list[dict[str, Any]]:
        keys = payload.get("keys") or ([payload["key"]] if payload.get("key") is not None else [])
        found = (connector_for("directus").get_item(collection, key) for key in keys)
        return [item for item in found if item is not None]

    return Reader(
        read,
        lambda payload: directus.listed(payload, collection) or directus.created_item(payload),
        lambda payload: directus.listed(payload, collection),
    )
