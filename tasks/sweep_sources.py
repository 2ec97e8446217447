"""What each sweep lists in each system, and the webhook event each listed change becomes.

Each event is shaped exactly like the webhook of the same change (same source, the event type its handler
is registered for, the payload that handler reads) and keyed like it (syncengine.change_keys), so a swept
change takes the webhook's path through dispatch, merge and echo suppression, and a change already stored
from its webhook is not stored again. Archived and deleted rows become the archive and delete events of
F9 (tasks.deletes) where the vendor lists them: Invoice Ninja rows with `is_deleted`/`archived_at`, ERPNext
`Deleted Document`, Directus items flagged archived (their update) and hard deletes from its activity log,
Mautic's deleted contacts from its audit log (the Stats API).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncengine.inbox import NewEvent
from syncengine.vendors import directus as directus_home
from syncengine.vendors import erpnext as erpnext_home
from syncengine.vendors import invoiceninja as invoiceninja_home
from syncengine.vendors import mautic, revolut

Row = dict[str, Any]
Shape = Callable[[Any, Row], NewEvent]  # (connector, listed row) -> the webhook event of that change

# Revolut filters transactions by creation only (Revolut's `GET /transactions`: `from`/`to` are creation
# times): a state change of an older transaction is seen by re-reading a trailing window. A day covers pending
# card and transfer settlements.
REVOLUT_STATE_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class Source:
    system: str
    kind: str
    # (connector, since, page size) -> changed rows, one vendor request per page
    list_changes: Callable[[Any, datetime, int], Iterator[Row]]
    modified: Callable[[Any, Row], datetime]  # (connector, row) -> the cursor value the row earns
    shape: Shape
    # Listed oldest change first and paged by key: the cursor may advance after each page. Otherwise a
    # later page can hold older changes, so it advances only once the whole listing is stored.
    ordered: bool = False
    page_size: int = 100
    lookback: float = 0.0  # re-read this much more than the configured lookback

    def event(self, connector: Any, row: Row) -> NewEvent:
        return self.shape(connector, row)


def _iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _directus_time(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- Invoice Ninja: `updated_at >= since`, archived and deleted rows included --------------------------


def invoiceninja(kind: str, collection: str, entity: str, **filters: Any) -> Source:
    def shape(_conn: Any, row: Row) -> NewEvent:
        action = "delete" if row.get("is_deleted") else "archive" if row.get("archived_at") else "update"
        key = invoiceninja_home.change_key(entity, row)
        return NewEvent("invoiceninja", key or f"{action}_{entity}:{row['id']}", f"{action}_{entity}", row)

    return Source(
        "invoiceninja", kind,
        lambda c, since, size: c.iter_modified(collection, int(since.timestamp()), page_size=size, **filters),
        lambda _c, row: datetime.fromtimestamp(int(row.get("updated_at") or row.get("created_at") or 0), UTC),
        shape, ordered=True,  # paged by key on updated_at: the cursor advances with each page
    )  # fmt: skip


# --- ERPNext: `modified >= since` paged by key; `Deleted Document` for what was trashed -----------------


def _erpnext_modified(conn: Any, row: Row) -> datetime:
    """Frappe prints naive times in the site's zone (the connector reads it from the site). A stamp ahead of
    our clock (a server clock ahead of ours) earns a cursor of now, never one in the future: the next
    sweep would skip what changes until then."""
    return min(conn.aware(row["modified"]), datetime.now(UTC))


def _erpnext_event(
    doctype: str, docevent: str, name: str, modified: str, *, deleted: bool = False
) -> NewEvent:
    """What `webhooks install` templates: {event, doctype, name, modified}; handlers read the doc back."""
    payload = {"event": docevent, "doctype": doctype, "name": name, "modified": modified}
    key = erpnext_home.change_key(doctype, name, modified, deleted=deleted)
    key = key or f"{doctype}:{docevent}:{name}:{modified}"
    return NewEvent("erpnext", key, f"{doctype}:{docevent}", payload)


SUBMIT_EVENTS = {0: "on_update", 1: "on_update_after_submit", 2: "on_cancel"}  # by docstatus


def erpnext(kind: str, doctype: str, filters: list | None = None) -> Source:
    def shape(_conn: Any, row: Row) -> NewEvent:
        docevent = SUBMIT_EVENTS.get(int(row.get("docstatus") or 0), "on_update")
        return _erpnext_event(doctype, docevent, row["name"], str(row["modified"]))

    return Source(
        "erpnext", kind,
        lambda c, since, size: c.iter_modified(
            doctype, since, fields=("name", "docstatus"), filters=filters, page_size=size
        ),
        _erpnext_modified, shape, ordered=True,
    )  # fmt: skip


TRASH_HANDLED = ("Customer", "Item")  # doctypes with an on_trash handler (tasks.deletes)


def _deleted_shape(_conn: Any, row: Row) -> NewEvent:
    data = row.get("data")
    doc = json.loads(data) if isinstance(data, str) else (data or {})
    modified = str(doc.get("modified") or row["modified"])
    return _erpnext_event(row["deleted_doctype"], "on_trash", row["deleted_name"], modified, deleted=True)


ERPNEXT_DELETED = Source(
    "erpnext", "deleted",
    lambda c, since, size: c.iter_modified(
        "Deleted Document", since, fields=("deleted_doctype", "deleted_name", "data"),
        filters=[["deleted_doctype", "in", list(TRASH_HANDLED)]], page_size=size,
    ),
    _erpnext_modified, _deleted_shape, ordered=True,
)  # fmt: skip


# --- Mautic: `date_modified >= since` paged by id -------------------------------------------------------


def _mautic_contact(_conn: Any, row: Row) -> NewEvent:
    key = mautic.contact_key(row) or f"mautic.lead_post_save_update:contact:{row['id']}"
    return NewEvent("mautic", key, "mautic.lead_post_save_update", {"contact": row})


MAUTIC_CONTACTS = Source(
    "mautic", "contact",
    lambda c, since, size: c.iter_modified_contacts(since, page_size=size),  # by id, not by time
    lambda _c, row: _iso(row.get("dateModified") or row["dateAdded"]), _mautic_contact, page_size=30,
)  # fmt: skip


def _mautic_deleted(_conn: Any, row: Row) -> NewEvent:
    """The `lead_post_delete` item tasks.deletes reads (the deleted id), keyed as the receiver keys it."""
    event = "mautic.lead_post_delete"
    return NewEvent("mautic", mautic.deleted_key(row["object_id"]), event, {"id": int(row["object_id"])})


MAUTIC_DELETED = Source(
    "mautic", "deleted",
    lambda c, since, size: c.iter_deleted_contacts(since, page_size=size),  # the audit log, by id
    lambda _c, row: _iso(row["date_added"]), _mautic_deleted, ordered=True,
)  # fmt: skip


# --- Mautic activities (F8): the contact timeline's email opens and form submissions since ---------------
# Mautic never re-sends a lost `email_on_open` / `form_on_submit` webhook, and an open or a submission is
# not a contact change (`date_modified` stays put), so the contact sweep cannot see it. The timeline lists
# them by their own stamps (`date_read`, `date_submitted`). Each type is paged on its own, so a later page
# may hold older events of another type: unordered, the cursor waits for the listing's end.


def _mautic_activity(_conn: Any, row: Row) -> NewEvent:
    """The webhook item of this timeline event: what tasks.activities reads (`email_opened`,
    `form_submitted`), keyed as the receiver keys that webhook (syncengine.change_keys)."""
    details, lead = row.get("details") or {}, {"id": row.get("contactId")}
    if row.get("event") == "form.submitted":
        listed = details.get("submission") or {}
        subject = {**listed, "form": details.get("form") or listed.get("form"), "lead": lead}
        event_type, key = "mautic.form_on_submit", "submission"
    else:  # email.read: getLeadStats' row (snake_case as listed) in the webhook's Stat shape
        stat = details.get("stat") or {}
        email = {"id": stat.get("email_id"), "name": stat.get("email_name"),
                 "subject": stat.get("subject") or stat.get("storedSubject")}  # fmt: skip
        subject = {"id": stat.get("id"), "dateSent": stat.get("dateSent"),
                   "dateRead": stat.get("dateRead") or row.get("timestamp"), "isRead": True,
                   "trackingHash": stat.get("idHash"), "email": email, "lead": lead}  # fmt: skip
        event_type, key = "mautic.email_on_open", "stat"
    event_id = mautic.activity_key(event_type, subject) or f"{event_type}:{row.get('eventId')}"
    return NewEvent("mautic", event_id, event_type, {key: subject, "timestamp": row.get("timestamp")})


MAUTIC_ACTIVITIES = Source(
    "mautic", "activity",
    lambda c, since, size: c.iter_activity(since, page_size=size),
    lambda _c, row: _iso(row["timestamp"]), _mautic_activity, page_size=100,
)  # fmt: skip


# --- Directus: `date_updated` or `date_created` >= since ------------------------------------------------
# Offset pages: `date_updated` is null until an item's first update, so no single key orders created and
# updated items together (keyset paging would take two listings and two cursors). The listing is still
# filtered, so its cost follows the changes; the cursor just waits for the listing's end.


def directus(kind: str, collection: str) -> Source:
    def shape(_conn: Any, row: Row) -> NewEvent:
        event = f"{collection}.items.update"
        payload = {"event": event, "keys": [str(row["id"])], "collection": collection}
        return NewEvent("directus", directus_home.change_key(collection, row), event, payload)

    return Source(
        "directus", kind,
        lambda c, since, size: c.changed_since(collection, _directus_time(since), page_size=size),
        lambda _c, row: _iso(row.get("date_updated") or row["date_created"]), shape,
    )  # fmt: skip


# Deletes: the items API forgets a deleted item, the activity log does not (one `delete` row per item).
# Directus logs (and fires the Flow for) a DELETE of an item already gone too: keyed by the item alone, the
# repeat is the same event and is stored once. Reading the log needs read on `directus_activity`.
DELETE_HANDLED = ("contacts", "products")  # collections with a delete handler (tasks.deletes)


def _directus_deleted(_conn: Any, row: Row) -> NewEvent:
    """The Flow's delete event for this one key: what tasks.deletes reads, keyed as the receiver keys it."""
    collection, key = row["collection"], row["item"]
    event = f"{collection}.items.delete"
    payload = {"event": event, "payload": [key], "keys": [key], "collection": collection}
    return NewEvent("directus", directus_home.deleted_key(collection, key), event, payload)


DIRECTUS_DELETED = Source(
    "directus", "deleted",
    lambda c, since, size: c.deleted_since(list(DELETE_HANDLED), _directus_time(since), page_size=size),
    lambda _c, row: _iso(row["timestamp"]), _directus_deleted, ordered=True,  # keyed on the activity id
)  # fmt: skip


# --- Revolut: transactions created since (newest first, paged with `to`) ---------------------------------


def _transaction(_conn: Any, row: Row) -> NewEvent:
    """TransactionCreated carries the whole transaction, in whatever state it is now."""
    key = revolut.change_key(row["id"], row.get("state")) or f"TransactionCreated:{row['id']}"
    payload = {
        "event": "TransactionCreated",
        "timestamp": row.get("updated_at") or row["created_at"],
        "data": row,
    }
    return NewEvent("revolut", key, "TransactionCreated", payload)


REVOLUT_TRANSACTIONS = Source(
    "revolut", "payment",
    lambda c, since, size: c.transactions(since, page_size=size),
    lambda _c, row: _iso(row["created_at"]), _transaction,
    page_size=1000, lookback=REVOLUT_STATE_WINDOW,  # 1000: Revolut's max count, against 60 requests/min
)  # fmt: skip


ALL: tuple[Source, ...] = (
    invoiceninja("contact", "clients", "client"),
    invoiceninja("product", "products", "product"),
    invoiceninja("invoice", "invoices", "invoice", include="client"),  # the handler merges the client too
    erpnext("contact", "Customer"),
    erpnext("product", "Item"),
    erpnext("invoice", "Sales Invoice"),
    erpnext("transfer", "Purchase Invoice", [["docstatus", "=", 1]]),  # F7's trigger: submitted ones only
    ERPNEXT_DELETED,
    MAUTIC_CONTACTS,
    MAUTIC_DELETED,
    MAUTIC_ACTIVITIES,
    directus("contact", "contacts"),
    directus("product", "products"),
    directus("invoice", "invoices"),
    DIRECTUS_DELETED,
    REVOLUT_TRANSACTIONS,
)
SOURCES: dict[tuple[str, str], Source] = {(s.system, s.kind): s for s in ALL}
