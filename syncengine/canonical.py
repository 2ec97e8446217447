"""The canonical record: what each kind holds, in which field groups, and which system owns a group.

Mappers beside each connector translate a vendor's object to and from these fields; the hub merges per
field group, so an edit of the address in one system and of the phone in another both survive.
Owners are configuration: SYNCENGINE_FIELD_OWNERS='{"invoice.accounting": "erpnext", ...}' overrides them.
"""

from __future__ import annotations

import json
from functools import lru_cache

from .settings import env_value

# kind -> field group -> fields
SCHEMA: dict[str, dict[str, tuple[str, ...]]] = {
    "contact": {
        "identity": ("name", "first_name", "last_name", "email", "phone", "company_name"),
        "address": ("address1", "address2", "city", "postal_code", "country"),
        "tax": ("vat_number",),
        "marketing": ("marketing_consent",),
    },
    "product": {
        "identity": ("sku", "name", "description"),
        "pricing": ("price", "cost", "tax_rate", "currency"),
    },
    "invoice": {
        "header": ("number", "contact_id", "date", "due_date", "currency", "notes"),
        "lines": ("lines",),
        "accounting": ("status", "total", "tax_total", "paid", "balance"),
    },
    "payment": {
        "bank": (
            "amount",
            "currency",
            "date",
            "reference",
            "payer_name",
            "payer_account",
            "bank_transaction_id",
            "description",
            "state",
        ),
        "allocation": ("invoice_id", "contact_id", "allocated"),
        "accounting": ("posted", "entry_number"),
    },
    "expense": {
        "document": ("supplier_name", "supplier_vat", "number", "date", "due_date", "currency", "lines"),
        "totals": ("net", "vat", "total"),
        "status": ("approved", "paid"),
    },
    "transfer": {
        "bank": ("amount", "currency", "counterparty", "reference", "state", "request_id"),
        "purpose": ("expense_id",),
    },
    "activity": {
        "event": ("ref", "contact_id", "type", "subject", "occurred_at", "details"),
    },
}

# The systems that carry each kind, so a change in one fans out to the others.
CARRIERS: dict[str, tuple[str, ...]] = {
    "contact": ("invoiceninja", "erpnext", "mautic", "directus"),
    "product": ("invoiceninja", "erpnext", "directus"),
    "invoice": ("invoiceninja", "erpnext", "directus"),
    "payment": ("invoiceninja", "erpnext", "directus"),
    "expense": ("invoiceninja", "erpnext", "directus"),
    "transfer": ("directus",),
    "activity": ("directus", "invoiceninja"),
}

# Field groups whose owner is fixed: only that system may change them (docs/architecture.md, The store).
DEFAULT_OWNERS: dict[str, str] = {
    "invoice.accounting": "erpnext",
    "payment.accounting": "erpnext",
    "contact.marketing": "mautic",
    "payment.bank": "revolut",
    "transfer.bank": "revolut",
}


@lru_cache(maxsize=1)
def owners() -> dict[str, str]:
    configured = env_value("SYNCENGINE_FIELD_OWNERS")
    return {**DEFAULT_OWNERS, **(json.loads(configured) if configured else {})}


def group_of(kind: str, field: str) -> str | None:
    for group, fields in SCHEMA[kind].items():
        if field in fields:
            return group
    return None


def owner_of(kind: str, group: str) -> str | None:
    return owners().get(f"{kind}.{group}")
