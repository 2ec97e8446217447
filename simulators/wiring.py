"""Point the simulators' webhooks at a receiver, as `webhooks install` subscribes them on real systems:
Invoice Ninja one URL per event with our secret header, ERPNext signed per document event, Mautic signed
batches, Directus a Flow adding our secret header, Revolut signed v2 webhooks. Used by the demo, the flow
tests and the benchmarks, so they all run the same deployment."""

from __future__ import annotations

from typing import Any

INVOICENINJA_EVENTS = (
    "create_client", "update_client", "delete_client", "archive_client",
    "create_product", "update_product", "delete_product", "archive_product",
    "create_invoice", "update_invoice", "sent_invoice",
)  # fmt: skip
ERPNEXT_EVENTS = (
    "Customer:after_insert", "Customer:on_update", "Customer:on_trash",
    "Item:after_insert", "Item:on_update", "Item:on_trash",
    "Sales Invoice:on_submit", "Sales Invoice:on_update", "Sales Invoice:on_update_after_submit",
)  # fmt: skip
MAUTIC_EVENTS = (
    "mautic.lead_post_save_new", "mautic.lead_post_save_update", "mautic.lead_post_delete",
    "mautic.email_on_open", "mautic.form_on_submit",
)  # fmt: skip
DIRECTUS_EVENTS = (
    "contacts.items.create", "contacts.items.update", "contacts.items.delete",
    "products.items.create", "products.items.update", "products.items.delete",
    "invoices.items.create", "invoices.items.update",
)  # fmt: skip
REVOLUT_EVENTS = ("TransactionCreated", "TransactionStateChanged")


def subscribe(sims: dict[str, Any], receiver: str, secrets: dict[str, str]) -> None:
    if "invoiceninja" in sims:
        for event in INVOICENINJA_EVENTS:
            sims["invoiceninja"].add_webhook_target(
                f"{receiver}/webhooks/invoiceninja/{event}", events=[event],
                headers={"X-Webhook-Secret": secrets["invoiceninja"]},
            )  # fmt: skip
    if "erpnext" in sims:
        for event in ERPNEXT_EVENTS:
            url = f"{receiver}/webhooks/erpnext/{event.split(':')[1]}"
            sims["erpnext"].add_webhook_target(url, secret=secrets["erpnext"], events=[event])
    if "mautic" in sims:
        url = f"{receiver}/webhooks/mautic"
        sims["mautic"].add_webhook_target(url, secret=secrets["mautic"], events=list(MAUTIC_EVENTS))
    if "directus" in sims:
        sims["directus"].add_webhook_target(
            f"{receiver}/webhooks/directus", events=list(DIRECTUS_EVENTS),
            headers={"X-Webhook-Secret": secrets["directus"]},
        )  # fmt: skip
    if "revolut" in sims:
        url = f"{receiver}/webhooks/revolut"
        sims["revolut"].add_webhook_target(url, secret=secrets["revolut"], events=list(REVOLUT_EVENTS))
