"""Invoice Ninja v5 entity shapes, invoice arithmetic and list filters (spec api-docs.yaml;
docs/architecture.md, Vendors' documentation).

Responses follow the published spec's types (it declares nothing ``nullable``), so empty values print as
``""``/``0``/``false`` like the PHP transformers, and date-format fields without a value are left out
(``""`` would break the spec's ``format: date``).
"""

from __future__ import annotations

import copy
import re
from typing import Any

USER_ID = "VolejRejNm"
DRAFT, SENT, PARTIAL, PAID, CANCELLED, REVERSED = "1", "2", "3", "4", "5", "6"
_ALPHABET = "Vo1ejRNmKbLxz7QwTgY3pD9aE2cZsH5kUfJ8rn6yBqXhW4PtMvFi0lAGdSuCIO"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_COMMON: dict[str, Any] = {
    "id": "",
    "user_id": USER_ID,
    "assigned_user_id": "",
    "is_deleted": False,
    "created_at": 0,
    "updated_at": 0,
    "archived_at": 0,
    "custom_value1": "",
    "custom_value2": "",
    "custom_value3": "",
    "custom_value4": "",
}
_TAXES: dict[str, Any] = {f"tax_name{i}": "" for i in (1, 2, 3)} | {f"tax_rate{i}": 0.0 for i in (1, 2, 3)}
_ADDRESS = {k: "" for k in ("address1", "address2", "city", "state", "postal_code", "phone", "website")}

DEFAULTS: dict[str, dict[str, Any]] = {
    "clients": {
        **_COMMON,
        **_ADDRESS,
        "name": "",
        "display_name": "",
        "private_notes": "",
        "public_notes": "",
        "client_hash": "",
        "country_id": 0,
        "shipping_country_id": 0,
        "vat_number": "",
        "id_number": "",
        "number": "",
        "balance": 0.0,
        "paid_to_date": 0.0,
        "credit_balance": 0.0,
        "payment_balance": 0.0,
        "last_login": 0,
        "group_settings_id": "",
        "routing_id": "",
        "is_tax_exempt": False,
        "has_valid_vat_number": False,
        "contacts": [],
    },
    "vendors": {
        **_COMMON,
        **_ADDRESS,
        "name": "",
        "display_name": "",
        "private_notes": "",
        "public_notes": "",
        "country_id": "",
        "currency_id": "",
        "vat_number": "",
        "id_number": "",
        "number": "",
        "classification": "",
        "transaction_name": "",
        "vendor_hash": "",
        "last_login": 0,
        "contacts": [],
    },
    "products": {
        **_COMMON,
        **_TAXES,
        "product_key": "",
        "notes": "",
        "cost": 0.0,
        "price": 0.0,
        "quantity": 1.0,
        "project_id": "",
        "vendor_id": "",
        "in_stock_quantity": 0,
        "stock_notification": True,
        "stock_notification_threshold": 0,
        "max_quantity": 0,
        "tax_id": "1",
    },
    "invoices": {
        **_COMMON,
        **_TAXES,
        "client_id": "",
        "status_id": DRAFT,
        "number": "",
        "po_number": "",
        "terms": "",
        "public_notes": "",
        "private_notes": "",
        "footer": "",
        "total_taxes": 0.0,
        "line_items": [],
        "invitations": [],
        "amount": 0.0,
        "balance": 0.0,
        "paid_to_date": 0.0,
        "discount": 0.0,
        "partial": 0.0,
        "is_amount_discount": False,
        "uses_inclusive_taxes": False,
        "last_viewed": 0,
        "project_id": "",
        "vendor_id": "",
        "subscription_id": "",
        "auto_bill_enabled": False,
        "auto_bill_tries": 0,
        **{f"custom_surcharge{i}": 0.0 for i in range(1, 5)},
        **{f"custom_surcharge_tax{i}": False for i in range(1, 5)},
    },
    "payments": {
        **_COMMON,
        "client_id": "",
        "invitation_id": "",
        "client_contact_id": "",
        "type_id": "1",
        "status_id": "4",
        "date": "",
        "transaction_reference": "",
        "private_notes": "",
        "is_manual": True,
        "amount": 0.0,
        "applied": 0.0,
        "refunded": 0.0,
        "company_gateway_id": "",
        "number": "",
        "idempotency_key": "",
        "currency_id": "",
        "exchange_rate": 1.0,
        "invoices": [],
    },
    "expenses": {
        **_COMMON,
        **_TAXES,
        "vendor_id": "",
        "client_id": "",
        "invoice_id": "",
        "project_id": "",
        "category_id": "",
        "bank_id": "",
        "currency_id": "",
        "invoice_currency_id": "",
        "payment_type_id": "",
        "recurring_expense_id": "",
        "private_notes": "",
        "public_notes": "",
        "transaction_reference": "",
        "transaction_id": "",
        "number": "",
        "tax_amount": 0.0,
        "amount": 0.0,
        "foreign_amount": 0.0,
        "exchange_rate": 1.0,
        "date": "",
        "payment_date": "",
        "should_be_invoiced": False,
        "invoice_documents": False,
        "uses_inclusive_taxes": False,
    },
    "webhooks": {
        "id": "",
        "user_id": USER_ID,
        "event_id": "",
        "target_url": "",
        "format": "JSON",
        "rest_method": "post",
        "headers": {},
        "is_deleted": False,
        "created_at": 0,
        "updated_at": 0,
        "archived_at": 0,
    },
}
CONTACT_DEFAULTS: dict[str, Any] = {
    "id": "",
    "user_id": USER_ID,
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": "",
    "is_primary": False,
    "send_email": True,
    "contact_key": "",
    "created_at": 0,
    "updated_at": 0,
    "deleted_at": 0,
    "custom_value1": "",
    "custom_value2": "",
    "custom_value3": "",
    "custom_value4": "",
}
ITEM_DEFAULTS: dict[str, Any] = {
    **_TAXES,
    "quantity": 1.0,
    "cost": 0.0,
    "product_key": "",
    "product_cost": 0.0,
    "notes": "",
    "discount": 0.0,
    "is_amount_discount": False,
    "sort_id": "0",
    "line_total": 0.0,
    "gross_line_total": 0.0,
    "tax_amount": 0.0,
    "custom_value1": "",
    "custom_value2": "",
    "custom_value3": "",
    "custom_value4": "",
    "type_id": "1",
    "tax_id": "1",
}
READ_ONLY = frozenset(
    {
        "id",
        "user_id",
        "is_deleted",
        "created_at",
        "updated_at",
        "archived_at",
        "balance",
        "paid_to_date",
        "amount_paid",
        "status_id",
        "total_taxes",
        "applied",
        "refunded",
        "client_hash",
        "vendor_hash",
        "display_name",
        "line_total",
        "gross_line_total",
    }
)
DATE_FIELDS = frozenset(
    {"date", "due_date", "partial_due_date", "payment_date", "last_sent_date", "next_send_date"}
)


def hash_id(n: int) -> str:
    """A stable 10-character opaque id, like Invoice Ninja's hashids."""
    x = (n * 0x5DEECE66D_9E3779B1 + 0xB) % len(_ALPHABET) ** 10  # multiplier coprime with 62: a bijection
    out = ""
    for _ in range(10):
        x, r = divmod(x, len(_ALPHABET))
        out += _ALPHABET[r]
    return out


def coerce(value: Any, default: Any) -> Any:
    """Cast request input to the type the transformer prints (Laravel accepts numeric strings)."""
    if value is None:
        return copy.deepcopy(default)
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(float(value))
    if isinstance(default, float):
        return float(value)
    if isinstance(default, str):
        return str(value)
    return copy.deepcopy(value)


def new_record(kind: str) -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS[kind])


def apply_input(record: dict[str, Any], data: dict[str, Any], kind: str) -> dict[str, list[str]]:
    """Copy writable fields onto ``record``; returns Laravel-style validation errors (field -> messages)."""
    errors: dict[str, list[str]] = {}
    defaults = DEFAULTS[kind]
    for key, value in data.items():
        if key in READ_ONLY or key in ("contacts", "line_items", "invoices", "id"):
            continue
        if key in DATE_FIELDS:
            if value in (None, ""):
                record.pop(key, None)
            elif isinstance(value, str) and _DATE.match(value):
                record[key] = value
            else:
                errors[key] = [f"The {key.replace('_', ' ')} is not a valid date."]
            continue
        if key not in defaults:
            continue
        try:
            record[key] = coerce(value, defaults[key])
        except (TypeError, ValueError):
            errors[key] = [f"The {key.replace('_', ' ')} must be a number."]
    return errors


def build_contacts(items: list[dict[str, Any]], next_hash: Any, now: int) -> list[dict[str, Any]]:
    contacts = []
    for i, item in enumerate(items or [{}]):
        contact = copy.deepcopy(CONTACT_DEFAULTS)
        for key, value in (item or {}).items():
            if key in contact and key not in ("id", "user_id", "created_at", "updated_at"):
                contact[key] = coerce(value, CONTACT_DEFAULTS[key])
        contact.update(id=next_hash(), contact_key=next_hash() + next_hash(), created_at=now, updated_at=now)
        contact["is_primary"] = i == 0
        contacts.append(contact)
    return contacts


def build_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(items or []):
        line = copy.deepcopy(ITEM_DEFAULTS)
        for key, value in (item or {}).items():
            if key in line and key not in ("line_total", "gross_line_total", "tax_amount"):
                line[key] = coerce(value, ITEM_DEFAULTS[key])
            elif key == "date" and value:
                line[key] = str(value)
        line["sort_id"] = str(i)
        out.append(line)
    return out


def _percent(base: float, record: dict[str, Any]) -> float:
    return sum(base * float(record.get(f"tax_rate{i}", 0) or 0) / 100 for i in (1, 2, 3))


def compute_totals(inv: dict[str, Any]) -> None:
    """Line totals, taxes and ``amount`` with exclusive taxes (inclusive taxes are not simulated)."""
    subtotal = taxes = 0.0
    for item in inv["line_items"]:
        line = item["cost"] * item["quantity"]
        if item["discount"]:
            line -= item["discount"] if item["is_amount_discount"] else line * item["discount"] / 100
        tax = _percent(line, item)
        item.update(
            line_total=round(line, 2), tax_amount=round(tax, 2), gross_line_total=round(line + tax, 2)
        )
        subtotal, taxes = subtotal + line, taxes + tax
    if inv["discount"]:
        subtotal -= inv["discount"] if inv["is_amount_discount"] else subtotal * inv["discount"] / 100
    taxes += _percent(subtotal, inv)
    inv["total_taxes"] = round(taxes, 2)
    inv["amount"] = round(subtotal + taxes + sum(inv[f"custom_surcharge{i}"] for i in range(1, 5)), 2)


def refresh_status(inv: dict[str, Any]) -> None:
    """Balance and status from amount and payments; drafts carry no balance until marked sent."""
    if inv["status_id"] in (DRAFT, CANCELLED, REVERSED):
        inv["balance"] = 0.0 if inv["status_id"] == DRAFT else inv["balance"]
        return
    inv["balance"] = round(inv["amount"] - inv["paid_to_date"], 2)
    if inv["paid_to_date"] > 0 and inv["balance"] <= 0:
        inv["status_id"] = PAID
    elif inv["paid_to_date"] > 0:
        inv["status_id"] = PARTIAL
    else:
        inv["status_id"] = SENT
