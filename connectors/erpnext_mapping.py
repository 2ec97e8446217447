"""ERPNext carries contacts as Customers and products as Items, each kept to a few plain fields.

Customer: `customer_name` (mandatory, so the billing name, else the email), `email_id`, `mobile_no` and
`tax_id` (the VAT number); at creation our marker (the email) goes into the connector's marker custom field
when the site has one. ERPNext copies email and mobile into a primary Contact on insert; later edits of
those two on the Customer are what this mapper sends, not an edit of that Contact.
Item: `item_code` is the SKU, `item_name`, `description`, `standard_rate` the price. ERPNext fills an empty
item name with the code and an empty description with the name, and its currency fields are never empty,
so `carried()` applies the same rules and the echo hashes equal. `modified` is naive site time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any

from syncengine.errors import Permanent
from syncengine.idempotency import Attempt
from syncengine.records import Change

from .mapping import Refs, register
from .normalise import billing_name, blank, canonical, contact_marker, email, or_zero, text

CUSTOMER_FIELDS = ("name", "email", "phone", "vat_number")
CUSTOMER_KEYS = {"name": "customer_name", "email": "email_id", "phone": "mobile_no", "vat_number": "tax_id"}
ITEM_FIELDS = ("sku", "name", "description", "price")
ITEM_KEYS = {"sku": "item_code", "name": "item_name", "description": "description", "price": "standard_rate"}
# What a new Item needs besides our fields; a site with other masters changes these.
ITEM_DEFAULTS = {"item_group": "Products", "stock_uom": "Nos", "is_stock_item": 0}


def modified_at(value: Any, site_timezone: tzinfo) -> datetime:
    """Frappe's naive `YYYY-MM-DD HH:MM:SS.ffffff` in the site's time zone, as an aware UTC instant."""
    parsed = datetime.fromisoformat(str(value).replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=site_timezone)
    return parsed.astimezone(UTC)


def customer_name(data: dict[str, Any]) -> str | None:
    return billing_name(data) or email(data.get("email"))


def _insert(
    connector: Any, doctype: str, body: dict[str, Any], find: Callable[[], dict[str, Any] | None]
) -> dict[str, Any]:
    """One insert; a duplicate (409) means it exists already: read it back."""
    try:
        return connector.create(doctype, body)
    except Permanent as exc:
        if exc.status != 409 or (found := find()) is None:
            raise
        return found


class CustomerAdapter:
    system, kind = "erpnext", "contact"

    def __init__(self, site_timezone: tzinfo = UTC) -> None:
        self.site_timezone = site_timezone

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return canonical(self.kind, CUSTOMER_FIELDS, {**data, "name": customer_name(data)})

    def to_change(self, obj: dict[str, Any]) -> Change:
        fields = canonical(self.kind, CUSTOMER_FIELDS, {f: obj.get(k) for f, k in CUSTOMER_KEYS.items()})
        at = modified_at(obj["modified"], self.site_timezone)
        return Change(self.system, self.kind, str(obj["name"]), fields, at, match_key=fields["email"])

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        return {key: blank(fields[f]) for f, key in CUSTOMER_KEYS.items() if f in fields}

    def marker(self, fields: dict[str, Any]) -> str:
        return contact_marker(fields)

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        """By our marker field, else by the email or (without one) the name ERPNext shows."""
        lookups = []
        if connector.customer_marker:
            lookups.append([connector.customer_marker, "=", self.marker(fields)])
        if fields.get("email"):
            lookups.append(["email_id", "=", fields["email"]])
        elif fields.get("name"):
            lookups.append(["customer_name", "=", fields["name"]])
        for where in lookups:
            if (found := connector.find_one("Customer", [where])) is not None:
                return found
        return None

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        fields = {f: body.get(k) or None for f, k in CUSTOMER_KEYS.items()}
        if connector.customer_marker:
            body = {**body, connector.customer_marker: self.marker(fields)}
        return _insert(connector, "Customer", body, lambda: self.find(connector, fields))

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update("Customer", external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["name"])


class ItemAdapter:
    system, kind = "erpnext", "product"

    def __init__(self, site_timezone: tzinfo = UTC) -> None:
        self.site_timezone = site_timezone

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        name = text(data.get("name")) or text(data.get("sku"))
        description = text(data.get("description")) or name
        values = {**data, "name": name, "description": description}
        return or_zero(canonical(self.kind, ITEM_FIELDS, values), ("price",))

    def to_change(self, obj: dict[str, Any]) -> Change:
        values = {f: obj.get(k) for f, k in ITEM_KEYS.items()}
        fields = or_zero(canonical(self.kind, ITEM_FIELDS, values), ("price",))
        at = modified_at(obj["modified"], self.site_timezone)
        return Change(self.system, self.kind, str(obj["name"]), fields, at, match_key=fields["sku"])

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        values = or_zero(fields, ("price",))
        return {key: blank(values[f]) for f, key in ITEM_KEYS.items() if f in values}

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("sku"):
            raise Permanent("a product without a SKU cannot be an ERPNext Item (item_code is its name)")
        return fields["sku"]

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        sku = self.marker(fields)
        return connector.find_one("Item", [["item_code", "=", sku]])

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        find = partial(connector.find_one, "Item", [["item_code", "=", body.get("item_code")]])
        return _insert(connector, "Item", {**ITEM_DEFAULTS, **body}, find)

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update("Item", external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["name"])


register(CustomerAdapter())
register(ItemAdapter())
