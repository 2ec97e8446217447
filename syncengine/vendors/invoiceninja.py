"""What the engine needs in Invoice Ninja, declared once for `syncengine setup` (invoiceninja_setup).

Nothing to create on its side: no custom field, since the engine finds what it created by Invoice Ninja's
own unique fields (a client's `id_number`, an invoice's `number`, a product's `product_key`, a payment's
`idempotency_key`, an expense's and a vendor's `number`). What it needs is a token whose user may read,
create and edit the entities below, and an administrator's token for the webhooks (Invoice Ninja lets only
an administrator manage them).
"""

from __future__ import annotations

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
