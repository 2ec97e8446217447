"""What is true of ERPNext v15 whoever uses it: the document events we subscribe to and those the flows
handle, the body its Webhook documents send, and what a site must hold for the engine, declared once: the
custom fields it writes (created by `syncengine setup` through the Custom Field doctype, seeded into the
simulator), the masters and accounts it names, and the calls its API user must be allowed to make.

Pure data: the connector, the setup, the tasks and the simulator all read it from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from syncengine import change_keys as keys
from syncengine.inbox import NewEvent

# What `webhooks install` subscribes to, as `<doctype>:<doc event>`. Frappe runs on_update after every
# insert as well as every save (Document.insert → run_post_save_methods), so on_update alone sees each new
# Customer and Item once; after_insert too would send each insert twice.
EVENTS = (
    "Customer:on_update", "Customer:on_trash",
    "Item:on_update", "Item:on_trash",
    "Sales Invoice:on_submit", "Sales Invoice:on_update", "Sales Invoice:on_update_after_submit",
)  # fmt: skip
# The changes each flow takes (tasks.clients, tasks.products, tasks.invoices): what we subscribe to, and
# also what a Webhook made by hand may send. A Customer's or Item's after_insert carries the same change key
# as the on_update Frappe runs after it (`change_key`), so the two are one inbox event; a Sales
# Invoice's on_cancel is a change of the invoice's status.
CHANGES = {
    "Customer": ("after_insert", "on_update"),
    "Item": ("after_insert", "on_update"),
    "Sales Invoice": ("on_submit", "on_update", "on_update_after_submit", "on_cancel"),
}
# What ERPNext sends: Frappe renders this Jinja template over the document (the receiver's shape).
TEMPLATE = (
    '{"event": "%s", "doctype": {{ doc.doctype | json }}, "name": {{ doc.name | json }}, '
    '"modified": {{ doc.modified | json }}, "doc": {{ doc | json }}}'
)


def change_key(doctype: str, name: Any, modified: Any, *, deleted: bool = False) -> str | None:
    """The change key (syncengine.change_keys) of one version: Frappe's `modified` (microseconds) names it;
    on_trash keeps the last one, marked deleted."""
    if not name or not modified:
        return None
    return keys.change_key("erpnext", doctype, name, modified, keys.DELETED if deleted else "")


# What the sweeps (tasks.sweep_sources) see: the doc event a listed document's docstatus stands for, and the
# doctypes whose trashed documents (`Deleted Document`) are listed, those with an on_trash handler
# (tasks.deletes).
SUBMIT_EVENTS = {0: "on_update", 1: "on_update_after_submit", 2: "on_cancel"}  # by docstatus
TRASH_HANDLED = ("Customer", "Item")


def document_event(
    doctype: str, docevent: str, name: str, modified: str, *, deleted: bool = False
) -> NewEvent:
    """What `webhooks install` templates: {event, doctype, name, modified}; handlers read the doc back."""
    payload = {"event": docevent, "doctype": doctype, "name": name, "modified": modified}
    key = change_key(doctype, name, modified, deleted=deleted)
    key = key or f"{doctype}:{docevent}:{name}:{modified}"
    return NewEvent("erpnext", key, f"{doctype}:{docevent}", payload)


def swept(doctype: str, row: dict[str, Any]) -> NewEvent:
    """The webhook of a listed document's version. A document listed with every field (`*`: Customer and
    Item keep all we read in their own table) travels in it as listed, under `listed` (see `listed`)."""
    docevent = SUBMIT_EVENTS.get(int(row.get("docstatus") or 0), "on_update")
    event = document_event(doctype, docevent, row["name"], str(row["modified"]))
    if "creation" in row:  # listed whole
        event.payload["listed"] = {**row, "doctype": doctype}
    return event


def listed(payload: dict[str, Any], doctype: str) -> list[dict[str, Any]]:
    """The `doctype` document a sweep event carries as its listing read it: the committed row, every field of
    its own table, so its handler need not read it back (one request less per listed document)."""
    doc = payload.get("listed")
    if not isinstance(doc, dict) or doc.get("doctype") != doctype:
        return []
    return [doc] if doc.get("name") and doc.get("modified") and doc.get("creation") else []


def swept_deleted(row: dict[str, Any]) -> NewEvent:
    """The on_trash webhook of a listed `Deleted Document`, keyed by the trashed document's last version."""
    data = row.get("data")
    doc = json.loads(data) if isinstance(data, str) else (data or {})
    modified = str(doc.get("modified") or row["modified"])
    return document_event(row["deleted_doctype"], "on_trash", row["deleted_name"], modified, deleted=True)


def changes(doctype: str) -> tuple[str, ...]:
    """The event types (`<doctype>:<doc event>`) whose handler syncs a changed `doctype`."""
    return tuple(f"{doctype}:{docevent}" for docevent in CHANGES[doctype])


def doc_as_sent(payload: dict[str, Any], doctype: str) -> list[dict[str, Any]]:
    """The document a webhook of our TEMPLATE carries, as it was when the event fired (under `doc`, or the
    body itself when the template is `{{ doc | json }}`); none when it is not a whole `doctype` document."""
    doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
    return [doc] if doc.get("doctype") == doctype and doc.get("name") and doc.get("modified") else []


MARKER_FIELD = "custom_syncengine_id"  # our record id (Customer) or invoice number (Sales Invoice)
IBAN_FIELD = "custom_iban"  # F7: the supplier's bank details, paid from Revolut
BIC_FIELD = "custom_bic"


@dataclass(frozen=True)
class CustomField:
    """One Custom Field document: `dt` + `fieldname` name it (`<dt>-<fieldname>`)."""

    dt: str
    fieldname: str
    label: str
    fieldtype: str = "Data"
    unique: bool = False
    insert_after: str = ""
    no_copy: bool = False  # a duplicated or amended document must not carry our marker (it is unique)

    @property
    def name(self) -> str:
        return f"{self.dt}-{self.fieldname}"

    def document(self) -> dict[str, Any]:
        """The body of `POST /api/v2/document/Custom Field`."""
        doc: dict[str, Any] = {
            "dt": self.dt, "fieldname": self.fieldname, "label": self.label, "fieldtype": self.fieldtype,
            "unique": int(self.unique), "no_copy": int(self.no_copy),
        }  # fmt: skip
        return {**doc, "insert_after": self.insert_after} if self.insert_after else doc


CUSTOM_FIELDS: tuple[CustomField, ...] = (
    CustomField("Customer", MARKER_FIELD, "Syncengine ID", unique=True, insert_after="customer_name",
                no_copy=True),
    CustomField("Sales Invoice", MARKER_FIELD, "Syncengine ID", unique=True, insert_after="customer",
                no_copy=True),
    CustomField("Supplier", IBAN_FIELD, "IBAN", insert_after="supplier_name"),
    CustomField("Supplier", BIC_FIELD, "BIC", insert_after=IBAN_FIELD),
)  # fmt: skip


def custom_field_seed() -> dict[str, list[dict[str, Any]]]:
    """The declared custom fields by doctype, as the simulator's `custom_fields` takes them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for field in CUSTOM_FIELDS:
        out.setdefault(field.dt, []).append(field.document())
    return out


# The masters the engine names.
ITEM_GROUP = "Products"  # every Item we create goes in this leaf Item Group
STOCK_UOM = "Nos"
FALLBACK_ITEM = "MISC"  # the Item an invoice line without a SKU is booked on
ITEM_DEFAULTS = {"item_group": ITEM_GROUP, "stock_uom": STOCK_UOM, "is_stock_item": 0}


@dataclass(frozen=True)
class AccountSetting:
    """A setting naming one of the company's ledger accounts, and what that account may be."""

    option: str  # its key in the ERPNext service options (settings.py)
    variable: str
    types: tuple[str, ...]  # the account types that can take the engine's rows, the usual first
    example: str  # the account name (before " - <abbr>") setup suggests


# ERPNext's tax rows take a leaf account of the invoice's company (AccountsController.validate_account_head);
# its sales and purchase forms offer Tax and Chargeable accounts on both sides. A Payment Entry receives into
# a Bank or Cash account: the one `get_payment_entry(bank_account=…)` is given, else the company's default,
# which is Cash on a new site.
ACCOUNTS = (
    AccountSetting("tax_account", "ERPNEXT_TAX_ACCOUNT", ("Tax", "Chargeable"), "VAT"),
    AccountSetting("bank_account", "ERPNEXT_BANK_ACCOUNT", ("Bank", "Cash"), "Bank"),
)


# What the API user must be allowed to do: (doctype, permission types) for every call the engine makes.
# Customer delete is not among them: F9 archives by `disabled`. Webhook and Deleted Document are System
# Manager doctypes on a stock site.
PERMISSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Customer", ("read", "create", "write")),
    ("Contact", ("read", "create", "write")),  # a Customer's email and phone live on its primary Contact
    ("Item", ("read", "create", "write")),
    ("Sales Invoice", ("read", "create", "write", "submit")),
    ("Payment Entry", ("read", "create", "submit")),
    ("Supplier", ("read", "create")),  # OCR (F6) files supplier invoices; F7 reads the bank details
    ("Purchase Invoice", ("read", "create")),
    ("Deleted Document", ("read",)),  # the delete sweep
    ("Version", ("read",)),  # a Customer's change log: dates each field group of an edit read back
    ("Webhook", ("read", "create", "write", "delete")),  # `webhooks install`
    ("Account", ("read",)),
    ("Company", ("read",)),
)
# Whitelisted methods the engine calls.
PAYMENT_ENTRY_METHOD = "erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry"
TIME_ZONE_METHOD = "frappe.client.get_time_zone"
