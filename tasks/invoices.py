"""F4: an invoice created or sent in Invoice Ninja reaches ERPNext (a submitted Sales Invoice) and Directus;
ERPNext's accounting fields (status, totals, paid, outstanding) come back to the hub; a sent invoice's email
goes out once (tasks.emails)."""

from __future__ import annotations

import logging
from typing import Any

from connectors.adapters import HUB_CONTACT, adapter_for
from connectors.erpnext_mapping import number_of
from syncengine.records import Change, Merged, merge, record_id_for
from syncengine.vendors import erpnext

from .dispatch import HandlerContext, handles
from .emails import send_invoice_email
from .sync import Read, as_sent, defer_pushes, directus_items, erpnext_document, sync_handler

log = logging.getLogger(__name__)

# Canonical statuses of an invoice that has gone out and is not settled: its email is due.
SENT = frozenset({"sent", "partial", "overdue"})


def with_client(ctx: HandlerContext, invoice: dict[str, Any]) -> dict[str, Any]:
    """The client as its hub contact: linked already, else merged now from the `client` Invoice Ninja
    includes, so an invoice whose client's own webhook is late or lost still has its contact."""
    contact_id = record_id_for(ctx.session, "invoiceninja", "contact", invoice.get("client_id"))
    client = invoice.get("client")
    if contact_id is None and isinstance(client, dict) and client.get("id"):
        merged = merge(ctx.session, adapter_for("invoiceninja", "contact").to_change(client))
        defer_pushes(ctx, merged)
        contact_id = merged.record_id
    return {**invoice, HUB_CONTACT: contact_id}


def with_customer(ctx: HandlerContext, doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, HUB_CONTACT: record_id_for(ctx.session, "erpnext", "contact", doc.get("customer"))}


def email_when_sent(ctx: HandlerContext, change: Change, merged: Merged) -> None:
    """Deferred on every event of a sent invoice: the send itself happens at most once per invoice."""
    if change.fields.get("status") in SENT and not change.deleted:
        ctx.defer(send_invoice_email.s(merged.record_id))


def ours(read: Read) -> Read:
    """Only Sales Invoices we made (they carry our invoice number); others are ERPNext's own business."""

    def filtered(payload: dict[str, Any]) -> list[dict[str, Any]]:
        docs = []
        for doc in read(payload):
            if number_of(doc) is None:
                log.info("erpnext Sales Invoice %s has no syncengine number; not synced", doc.get("name"))
                continue
            docs.append(doc)
        return docs

    return filtered


handles("invoiceninja", "create_invoice", "update_invoice", "sent_invoice", "restore_invoice")(
    sync_handler("invoiceninja", "invoice", as_sent, prepare=with_client, after=email_when_sent)
)
handles("erpnext", *erpnext.changes("Sales Invoice"))(
    sync_handler("erpnext", "invoice", ours(erpnext_document("Sales Invoice")), prepare=with_customer)
)
handles("directus", "invoices.items.create", "invoices.items.update")(
    sync_handler("directus", "invoice", directus_items("invoices"))
)
