"""F9: a delete or archive anywhere makes the hub record a tombstone (`deleted_at`, version bump); each
other system then archives its copy (tasks.push) instead of deleting it.

Every source names the object by its id, and for ERPNext's on_trash and Directus's delete it is all that is
left, so a tombstone is found by the link alone; the delete of an object the hub never linked is
remembered (syncengine.tombstones): its create may yet arrive, late, and is dropped then.
A delete is `gone` where the object cannot come back (ERPNext on_trash, Directus and Mautic deletes): a
later restore elsewhere creates it there again. Invoice Ninja's delete is not gone: its `restore` undoes
it. The way back (an un-archive restores the record everywhere) is records.merge and tasks.push.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connectors.adapters import from_unix
from syncengine import tombstones
from syncengine.models import Link, utcnow
from syncengine.records import Change, merge

from .dispatch import Handler, HandlerContext, handles
from .sync import defer_pushes

log = logging.getLogger(__name__)

Ids = Callable[[dict[str, Any]], Iterable[Any]]
Stamp = Callable[[dict[str, Any]], datetime | None]


def tombstone_handler(
    system: str, kind: str, ids: Ids, *, gone: bool = False, stamp: Stamp | None = None
) -> Handler:
    """A handler that marks deleted the hub record linked to each id the event names, at the vendor's own
    time of the archive where the payload says it (so a late archive loses to the restore that followed,
    records.restores), else now."""

    def handle(ctx: HandlerContext) -> None:
        at = (stamp(ctx.event.payload) if stamp else None) or utcnow()
        for external_id in ids(ctx.event.payload):
            linked = ctx.session.execute(
                select(Link.id).where(
                    Link.system == system, Link.kind == kind, Link.external_id == str(external_id)
                )
            ).scalar_one_or_none()
            if linked is None:
                # Its create may still be on its way (a late webhook): remembered, so it is dropped then.
                log.info("%s %s %s deleted before the hub knew it: remembered", system, kind, external_id)
                tombstones.remember(ctx.session, system, kind, str(external_id), at, gone=gone)
                continue
            change = Change(system, kind, str(external_id), {}, at, deleted=True, gone=gone)
            merged = merge(ctx.session, change)
            defer_pushes(ctx, merged)

    return handle


# --- how each sender names what it deleted --------------------------------------------------------------


def entity_id(payload: dict[str, Any]) -> list[Any]:
    """Invoice Ninja posts the whole (deleted or archived) entity."""
    return [payload["id"]] if payload.get("id") not in (None, "") else []


def entity_stamp(payload: dict[str, Any]) -> datetime | None:
    """Invoice Ninja stamps the archive or delete in the entity's `updated_at` (Unix seconds)."""
    try:
        return from_unix(payload["updated_at"]) if payload.get("updated_at") else None
    except (TypeError, ValueError, OverflowError):  # a mistyped stamp: the archive still counts, as of now
        return None


def document_name(payload: dict[str, Any]) -> list[Any]:
    """ERPNext on_trash: the document is gone, so the name comes from the payload itself."""
    doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
    name = payload.get("name") or doc.get("name")
    return [name] if name else []


def mautic_contact_id(payload: dict[str, Any]) -> list[Any]:
    contact = payload.get("contact") if isinstance(payload.get("contact"), dict) else {}
    found = payload.get("id") or contact.get("id")
    return [found] if found not in (None, "") else []


def directus_keys(payload: dict[str, Any]) -> list[Any]:
    """A Directus delete sends the keys (strings for a single DELETE)."""
    keys = payload.get("keys") or payload.get("payload") or []
    return list(keys) if isinstance(keys, list) else [keys]


handles("invoiceninja", "delete_client", "archive_client")(
    tombstone_handler("invoiceninja", "contact", entity_id, stamp=entity_stamp)
)
handles("invoiceninja", "delete_product", "archive_product")(
    tombstone_handler("invoiceninja", "product", entity_id, stamp=entity_stamp)
)
handles("erpnext", "Customer:on_trash")(tombstone_handler("erpnext", "contact", document_name, gone=True))
handles("erpnext", "Item:on_trash")(tombstone_handler("erpnext", "product", document_name, gone=True))
handles("mautic", "mautic.lead_post_delete")(
    tombstone_handler("mautic", "contact", mautic_contact_id, gone=True)
)
handles("directus", "contacts.items.delete")(
    tombstone_handler("directus", "contact", directus_keys, gone=True)
)
handles("directus", "products.items.delete")(
    tombstone_handler("directus", "product", directus_keys, gone=True)
)
