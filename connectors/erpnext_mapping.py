"""ERPNext carries contacts as Customers and products as Items, each kept to a few plain fields.

Customer: `customer_name` (mandatory, so the billing name, else the email), `email_id`, `mobile_no` and
`tax_id` (the VAT number); at creation our marker (the email) goes into the connector's marker custom field.
ERPNext makes a primary Contact from email and mobile on insert, and from then on the Customer's two fields
are copies of that Contact's, fetched on every save: an update writes them on the Contact
(ERPNextConnector.update_customer). A Customer is found again by our marker or its email, never by its name:
ERPNext names a second customer with a taken name "X - 1", and its `customer_name` stays "X".
Item: `item_code` is the SKU, `item_name`, `description`, `standard_rate` the price. ERPNext fills an empty
item name with the code and an empty description with the name, and its currency fields are never empty,
so `carried()` applies the same rules and the echo hashes equal. `modified` is naive site time, read in the
site's zone (the connector asks the site for it).
F9: `disabled` = 1 is ERPNext's archive: it reports the record deleted, and `archive()` sets it rather than
deleting (a Customer or Item with ledger entries cannot be deleted anyway); `restore()` sets it back to 0,
and `disabled` = 0 reported for a copy the hub knows disabled is a restore.
Sales Invoice: created submitted, found again by our invoice number (the connector's marker field, or a
tag in `remarks`); the customer is the contact's Customer, items by `item_code` (each Item ensured first),
taxes as one "Actual" row per tax rate (per-line rates have no plain field in ERPNext). ERPNext reports the
header and the accounting group it owns (status, totals, paid, outstanding); it never reports lines back,
since its rows cannot say each line's tax rate, and a submitted invoice's lines cannot change anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import partial
from typing import Any

from syncengine.errors import Permanent, WaitingFor
from syncengine.idempotency import Attempt, Effect
from syncengine.records import Change, record_id_for
from syncengine.settings import get_settings
from syncengine.vendors.erpnext import FALLBACK_ITEM, ITEM_DEFAULTS, MARKER_FIELD

from .adapters import HUB_CONTACT, Refs, register
from .erpnext import EXISTS, REMARKS, aware_time
from .history import group_dates
from .normalise import billing_name, blank, canonical, contact_marker, email, or_zero, taxes_by_rate, text

CUSTOMER_KEYS = {"name": "customer_name", "email": "email_id", "phone": "mobile_no", "vat_number": "tax_id"}
ITEM_KEYS = {"sku": "item_code", "name": "item_name", "description": "description", "price": "standard_rate"}


class SiteTime:
    """An adapter reads ERPNext's naive stamps in the site's zone: the one given, else the configured
    site's (read from it once, cached by the connector)."""

    def __init__(self, site_timezone: tzinfo | None = None) -> None:
        self._zone = site_timezone

    @property
    def site_timezone(self) -> tzinfo:
        if self._zone is not None:
            return self._zone
        from . import connector_for

        return connector_for("erpnext").site_timezone

    def at(self, obj: dict[str, Any]) -> datetime:
        return aware_time(obj["modified"], self.site_timezone)


def unedited(doc: dict[str, Any]) -> bool:
    """Frappe stamps an insert `creation` = `modified`; every later save moves `modified` (and logs a
    Version where the doctype tracks changes)."""
    return doc.get("creation") is not None and doc.get("modified") == doc.get("creation")


def customer_name(data: dict[str, Any]) -> str | None:
    return billing_name(data) or email(data.get("email"))


def _insert(
    connector: Any, doctype: str, body: dict[str, Any], find: Callable[[], dict[str, Any] | None]
) -> dict[str, Any]:
    """One insert; a duplicate (DuplicateEntryError 409, or UniqueValidationError on a unique field) means
    it exists already: read it back."""
    try:
        return connector.create(doctype, body)
    except Permanent as exc:
        exists = exc.status == 409 or getattr(exc, "exc_type", None) in EXISTS
        if not exists or (found := find()) is None:
            raise
        return found


class MasterAdapter(SiteTime):
    """A Customer or an Item: a few plain fields named by `keys`, found again by `match_field`, and
    `disabled` as its archive (F9: a Customer or Item with ledger entries cannot be deleted, and the ledger
    keeps it). `numbers` are the currency fields ERPNext never leaves empty (it stores 0)."""

    system = "erpnext"

    def __init__(
        self, kind: str, doctype: str, keys: dict[str, str], match_field: str, *,
        numbers: tuple[str, ...] = (), site_timezone: tzinfo | None = None,
    ) -> None:  # fmt: skip
        super().__init__(site_timezone)
        self.kind, self.doctype, self.keys, self.match_field = kind, doctype, keys, match_field
        self.fields, self.numbers = tuple(keys), numbers

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return self._canonical(data)

    def _canonical(self, values: dict[str, Any]) -> dict[str, Any]:
        return or_zero(canonical(self.kind, self.fields, values), self.numbers)

    def to_change(self, obj: dict[str, Any]) -> Change:
        fields = self._canonical({f: obj.get(k) for f, k in self.keys.items()})
        return Change(
            self.system, self.kind, str(obj["name"]), fields, self.at(obj),
            match_key=fields[self.match_field], deleted=bool(obj.get("disabled")), unedited=unedited(obj),
        )  # fmt: skip

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        values = or_zero(fields, self.numbers)
        return {key: blank(values[f]) for f, key in self.keys.items() if f in values}

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update(self.doctype, external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["name"])

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get(self.doctype, external_id)

    def archive(self, connector: Any, external_id: str) -> dict[str, Any]:
        """F9: disable, never delete."""
        return connector.update(self.doctype, external_id, {"disabled": 1})

    def restore(self, connector: Any, external_id: str) -> dict[str, Any]:
        """F9 reversed: enable it again (`disabled` back to 0)."""
        return connector.update(self.doctype, external_id, {"disabled": 0})


class CustomerAdapter(MasterAdapter):
    def __init__(self, site_timezone: tzinfo | None = None) -> None:
        super().__init__("contact", "Customer", CUSTOMER_KEYS, "email", site_timezone=site_timezone)

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return super().carried({**data, "name": customer_name(data)})

    def marker(self, fields: dict[str, Any]) -> str:
        return contact_marker(fields)

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        """By our marker field, else by the email. Not by name: names are not unique in ERPNext (a second
        "X" is named "X - 1" and keeps `customer_name` "X"), so a name would find another person. Only a
        site without the marker field (customer_marker None) is left with the name."""
        lookups = self._lookups(connector, fields)
        return connector.find_first("Customer", lookups) if lookups else None

    def find_many(self, connector: Any, many: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
        """`find` for each of `many` in one request."""
        return connector.find_firsts("Customer", [self._lookups(connector, fields) for fields in many])

    def _lookups(self, connector: Any, fields: dict[str, Any]) -> list[list[Any]]:
        lookups = []
        if connector.customer_marker:
            lookups.append([connector.customer_marker, "=", self.marker(fields)])
        if fields.get("email"):
            lookups.append(["email_id", "=", fields["email"]])
        elif fields.get("name") and not connector.customer_marker:
            lookups.append(["customer_name", "=", fields["name"]])
        return lookups

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        fields = {f: body.get(k) or None for f, k in CUSTOMER_KEYS.items()}
        if connector.customer_marker:
            body = {**body, connector.customer_marker: self.marker(fields)}
        return _insert(connector, "Customer", body, lambda: self.find(connector, fields))

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Email and phone go to the primary Contact; the answer is the Customer as it now holds."""
        return connector.update_customer(external_id, body)

    def update_read(
        self, connector: Any, external_id: str, body: dict[str, Any], read: dict[str, Any]
    ) -> dict[str, Any]:
        """`update`, the Customer as a push just read it naming its primary Contact: not read again."""
        return connector.update_customer(external_id, body, read=read)

    def dates(
        self, connector: Any, external_id: str, groups: dict[str, dict[str, Any]]
    ) -> dict[str, datetime]:
        """When each group got the values it holds (name -> canonical values), from the Customer's Version
        log (it tracks changes; connectors.history): each save's `changed` as [field, old, new], dated by
        the Version's `creation` (written after the save's on_update: a little after its `modified`).
        An entry whose old and new values are the same canonical value is no write: the first save after
        a primary Contact is made records the empty mobile it fetches from it as [mobile_no, null, ""]."""
        by_field = {field: name for name, field in self.keys.items()}  # Customer field -> canonical name
        saves = []
        for version in connector.versions("Customer", external_id):
            try:
                changed = json.loads(version["data"]).get("changed") or []
                ours = [(by_field[field], old, new) for field, old, new in changed if field in by_field]
                at = aware_time(version["creation"], self.site_timezone)
            except (TypeError, ValueError, KeyError, AttributeError):
                continue
            before = self._canonical({name: old for name, old, _new in ours})
            after = self._canonical({name: new for name, _old, new in ours})
            wrote = {name: after[name] for name, _old, _new in ours if after[name] != before[name]}
            if wrote:
                saves.append((wrote, at))
        return group_dates(saves, groups)


class ItemAdapter(MasterAdapter):
    def __init__(self, site_timezone: tzinfo | None = None) -> None:
        super().__init__("product", "Item", ITEM_KEYS, "sku", numbers=("price",), site_timezone=site_timezone)

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        """ERPNext fills an empty item name with the code and an empty description with the name."""
        name = text(data.get("name")) or text(data.get("sku"))
        description = text(data.get("description")) or name
        return super().carried({**data, "name": name, "description": description})

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("sku"):
            raise Permanent("a product without a SKU cannot be an ERPNext Item (item_code is its name)")
        return fields["sku"]

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        return connector.find_one("Item", [["item_code", "=", self.marker(fields)]])

    def unique(self, connector: Any, fields: dict[str, Any]) -> bool:
        """Created first: an Item is named by its code, and a code taken (whatever its case: MariaDB's
        collation, as `find` compares) fails the insert with DuplicateEntryError, read back by `create`."""
        return bool(fields.get("sku"))

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        find = partial(connector.find_one, "Item", [["item_code", "=", body.get("item_code")]])
        return _insert(connector, "Item", {**ITEM_DEFAULTS, **body}, find)


INVOICE_HEADER = ("number", "contact_id", "date", "due_date", "currency")
INVOICE_ACCOUNTING = ("status", "total", "tax_total", "paid", "balance")
INVOICE_CARRIED = (*INVOICE_HEADER, "lines", *INVOICE_ACCOUNTING)
INVOICE_REPORTED = (*INVOICE_HEADER, *INVOICE_ACCOUNTING)
# SalesInvoice.set_status values in the canonical words (Invoice Ninja's statuses map to the same).
INVOICE_STATUS = {
    "Draft": "draft", "Unpaid": "sent", "Overdue": "overdue", "Partly Paid": "partial", "Paid": "paid",
    "Cancelled": "cancelled", "Return": "reversed", "Credit Note Issued": "reversed",
    "Unpaid and Discounted": "sent", "Overdue and Discounted": "overdue",
    "Partly Paid and Discounted": "partial",
}  # fmt: skip
NUMBER_KEY = "__number"  # our invoice number, carried in the body to the create (dropped before sending)


def number_of(doc: dict[str, Any]) -> str | None:
    if doc.get(MARKER_FIELD):
        return str(doc[MARKER_FIELD])
    found = re.search(r"\[syncengine:([^\]]+)\]", str(doc.get(REMARKS) or ""))
    return found.group(1) if found else None


def _ensure_items(connector: Any, items: list[dict[str, Any]]) -> None:
    """Each Item an invoice row names, created minimal when absent (a product never synced, or a line
    without a SKU); ERPNext refuses a row whose item does not exist. The effect is the Item's existence,
    keyed by its code alone: the first row's description only names a new one, so a later invoice with
    another description for the same SKU is the same request."""
    for code in dict.fromkeys(row["item_code"] for row in items):
        row = next(r for r in items if r["item_code"] == code)
        item = {**ITEM_DEFAULTS, "item_code": code, "item_name": row.get("description") or code}
        connector.ensure_item(Effect(f"ensure_item:erpnext:{code}", "erpnext", "ensure_item", code), item)


class SalesInvoiceAdapter(SiteTime):
    system, kind = "erpnext", "invoice"

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return canonical(self.kind, INVOICE_CARRIED, data)

    def to_change(self, obj: dict[str, Any]) -> Change:
        if HUB_CONTACT in obj:
            contact_id = obj[HUB_CONTACT]
        else:
            contact_id = record_id_for(None, self.system, "contact", obj.get("customer"))
        grand, outstanding = obj.get("grand_total") or 0, obj.get("outstanding_amount") or 0
        values = {
            "number": number_of(obj), "contact_id": contact_id, "date": obj.get("posting_date"),
            "due_date": obj.get("due_date"), "currency": obj.get("currency"),
            "status": INVOICE_STATUS.get(str(obj.get("status")), text(obj.get("status"))),
            "total": grand, "tax_total": obj.get("total_taxes_and_charges"),
            "paid": float(grand) - float(outstanding), "balance": outstanding,
        }  # fmt: skip
        fields = canonical(self.kind, INVOICE_REPORTED, values)
        at = self.at(obj)
        return Change(self.system, self.kind, str(obj["name"]), fields, at, match_key=fields["number"])

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        """Header and lines only: ERPNext computes the accounting fields itself."""
        body: dict[str, Any] = {NUMBER_KEY: fields.get("number")}
        if fields.get("contact_id") is not None:
            customer = refs.external_id(fields["contact_id"], self.system)
            if customer is None:  # the contact's own push is usually still on its way
                raise WaitingFor(f"contact {fields['contact_id']} is not an ERPNext Customer yet")
            body["customer"] = customer
        if fields.get("date"):
            body |= {"posting_date": fields["date"], "set_posting_time": 1}
        body |= {key: fields[key] for key in ("due_date", "currency") if fields.get(key)}
        if "lines" in fields:
            body["items"] = [
                {"item_code": line["sku"] or FALLBACK_ITEM, "description": line["description"] or line["sku"],
                 "qty": line["quantity"], "rate": line["unit_price"]}
                for line in fields["lines"]
            ]  # fmt: skip
            body["taxes"] = self._taxes(fields["lines"])
        return body

    @staticmethod
    def _taxes(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """ERPNext refuses a tax row without `account_head` (MandatoryError): no account, no invoice."""
        rates = [(rate, net) for rate, net in sorted(taxes_by_rate(lines).items()) if rate]
        account = get_settings().services["erpnext"].options.get("tax_account")
        if rates and not account:
            raise Permanent(
                "ERPNEXT_TAX_ACCOUNT is not set: a taxed invoice needs it (`syncengine setup --check`)"
            )
        return [
            {"charge_type": "Actual", "account_head": account, "description": f"VAT {rate:g}%", "rate": 0,
             "tax_amount": round(net * rate / 100, 2)}
            for rate, net in rates
        ]  # fmt: skip

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("number"):
            raise Permanent("an invoice without a number cannot be created once in ERPNext")
        return str(fields["number"])

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        number = self.marker(fields)
        if connector.invoice_marker != REMARKS:
            return connector.find_one("Sales Invoice", [[connector.invoice_marker, "=", number]])
        tag = f"[syncengine:{number}]"
        return connector.find_one("Sales Invoice", [[REMARKS, "like", f"%{tag}%"]],
                                  accept=lambda row: tag in str(row.get(REMARKS) or ""))  # fmt: skip

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        invoice = {k: v for k, v in body.items() if k != NUMBER_KEY}
        _ensure_items(connector, invoice.get("items") or [])
        effect = Effect(f"{attempt.key}:sales_invoice", self.system, "ensure_sales_invoice", invoice)
        return connector.ensure_sales_invoice(effect, invoice, number=str(body[NUMBER_KEY]))

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Only a draft can change; a submitted invoice is amended in ERPNext (cancel, amend) by a person."""
        current = connector.get("Sales Invoice", external_id)
        if current.get("docstatus") != 0:
            raise Permanent(f"Sales Invoice {external_id} is submitted: cancel and amend it in ERPNext")
        changes = {k: v for k, v in body.items() if k != NUMBER_KEY}
        _ensure_items(connector, changes.get("items") or [])
        return connector.update("Sales Invoice", external_id, changes)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["name"])

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get("Sales Invoice", external_id)


register(CustomerAdapter())
register(ItemAdapter())
register(SalesInvoiceAdapter())
