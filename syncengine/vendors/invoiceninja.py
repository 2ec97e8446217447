"""What is true of Invoice Ninja whoever uses it: the events we subscribe to and their numeric ids, its
currency ids, and what the engine needs there, declared once for `syncengine setup` (invoiceninja_setup).

Nothing to create on its side: no custom field, since the engine finds what it created by Invoice Ninja's
own unique fields (a client's `id_number`, an invoice's `number`, a product's `product_key`, a payment's
`idempotency_key`, an expense's and a vendor's `number`). What it needs is a token whose user may read,
create and edit the entities below, and an administrator's token for the webhooks (Invoice Ninja lets only
an administrator manage them).
"""

from __future__ import annotations

from typing import Any

from syncengine import change_keys as keys
from syncengine.inbox import NewEvent

# Entity (its API path) -> what the engine does with it, and the permissions that takes (Invoice Ninja's
# `<action>_<entity>` names; `<action>_all` grants the action on every entity).
ENTITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "clients": ("contacts, their archive and restore, activity notes", ("view", "create", "edit")),
    "products": ("products, their archive and restore", ("view", "create", "edit")),
    "invoices": ("invoices, marked sent", ("view", "create", "edit")),
    "payments": ("payments booked from Revolut", ("view", "create")),
    "expenses": ("expenses read from receipts", ("view", "create")),
    "vendors": ("the suppliers of those expenses", ("view", "create")),
}
SINGULAR = {"clients": "client", "products": "product", "invoices": "invoice", "payments": "payment",
            "expenses": "expense", "vendors": "vendor"}  # fmt: skip

# What `webhooks install` subscribes to: one subscription per event, at /webhooks/invoiceninja/<event>.
EVENTS = (
    "create_client", "update_client", "delete_client", "archive_client", "restore_client",
    "create_product", "update_product", "delete_product", "archive_product", "restore_product",
    "create_invoice", "update_invoice", "sent_invoice",
)  # fmt: skip
# Invoice Ninja's numeric event ids (app/Models/Webhook.php).
EVENT_IDS = {
    "create_client": 1, "create_invoice": 2, "update_invoice": 8, "update_client": 10, "delete_client": 11,
    "archive_client": 37, "restore_client": 45, "create_product": 50, "update_product": 51,
    "delete_product": 52, "restore_product": 53, "archive_product": 54, "sent_invoice": 60,
}  # fmt: skip

# Invoice Ninja's currency ids (its `currencies` table) for the usual ones, by ISO code, and back.
CURRENCY_IDS = {"USD": "1", "GBP": "2", "EUR": "3", "DKK": "5", "SEK": "7", "CAD": "12", "CHF": "17"}
CURRENCIES = {currency_id: code for code, currency_id in CURRENCY_IDS.items()}


def change_key(entity: str, obj: dict[str, Any]) -> str | None:
    """The change key (syncengine.change_keys) of a webhook body or a listed row: Invoice Ninja entities
    carry `updated_at` (Unix seconds), `is_deleted` and `archived_at`."""
    if obj.get("id") in (None, "") or not obj.get("updated_at"):
        return None
    state = keys.DELETED if obj.get("is_deleted") else keys.ARCHIVED if obj.get("archived_at") else ""
    # stamp() spells Unix seconds as the integer; int() here would raise on a mistyped stamp (a 500).
    return keys.change_key("invoiceninja", entity, obj["id"], obj["updated_at"], state, keys.digest(obj))


def swept(entity: str, row: dict[str, Any]) -> NewEvent:
    """The webhook of a listed row's change (tasks.sweep_sources): archived and deleted rows are the archive
    and delete events of F9, the rest an update."""
    action = "delete" if row.get("is_deleted") else "archive" if row.get("archived_at") else "update"
    key = change_key(entity, row)
    return NewEvent("invoiceninja", key or f"{action}_{entity}:{row['id']}", f"{action}_{entity}", row)
