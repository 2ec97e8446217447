"""Invoice Ninja carries contacts as clients (with their primary contact) and products.

Client: `name` is the billing name (the contact's name, else its company, else the person: Invoice Ninja
bills the client, so a company contact's client is the company); the person, email and phone live on the
primary contact; address fields and `vat_number` on the client; `country` as `country_id`, the ISO numeric
code. Product: `product_key` is the SKU, `notes` the description, `tax_rate1` the tax rate; Invoice Ninja
has no product name or currency, and its numbers are never empty (0 means "not set").
"""

from __future__ import annotations

from typing import Any

from syncengine.errors import Permanent
from syncengine.idempotency import Attempt
from syncengine.records import Change

from . import countries
from .mapping import Refs, from_unix, register
from .normalise import billing_name, blank, canonical, contact_marker, or_zero

CONTACT_KEYS = ("first_name", "last_name", "email", "phone")
CLIENT_FIELDS = (
    "name",
    *CONTACT_KEYS,
    "address1",
    "address2",
    "city",
    "postal_code",
    "country",
    "vat_number",
)
CLIENT_KEYS = ("address1", "address2", "city", "postal_code", "vat_number")  # same name on both sides
PRODUCT_FIELDS = ("sku", "description", "price", "cost", "tax_rate")
PRODUCT_NUMBERS = ("price", "cost", "tax_rate")
PRODUCT_KEYS = {
    "sku": "product_key",
    "description": "notes",
    "price": "price",
    "cost": "cost",
    "tax_rate": "tax_rate1",
}


def primary_contact(client: dict[str, Any]) -> dict[str, Any]:
    contacts = client.get("contacts") or []
    return next((c for c in contacts if c.get("is_primary")), contacts[0] if contacts else {})


def country_id(code: str | None) -> int | None:
    return countries.NUMERIC.get(code) if code else None


def country_code(value: Any) -> str | None:
    """`country_id` back to alpha-2; 0 or "" is no country."""
    try:
        return countries.BY_NUMERIC.get(int(value or 0))
    except (TypeError, ValueError):
        return None


class ClientAdapter:
    system, kind = "invoiceninja", "contact"

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = canonical(self.kind, CLIENT_FIELDS, {**data, "name": billing_name(data)})
        if country_id(fields["country"]) is None:
            fields["country"] = None  # Invoice Ninja only holds ISO countries
        return fields

    def to_change(self, obj: dict[str, Any]) -> Change:
        contact = primary_contact(obj)
        values = {key: contact.get(key) for key in CONTACT_KEYS}
        values["phone"] = contact.get("phone") or obj.get("phone")
        values |= {key: obj.get(key) for key in CLIENT_KEYS}
        values |= {"name": obj.get("name"), "country": country_code(obj.get("country_id"))}
        fields = canonical(self.kind, CLIENT_FIELDS, values)
        return Change(
            self.system, self.kind, str(obj["id"]), fields, from_unix(obj.get("updated_at")),
            match_key=fields["email"], deleted=bool(obj.get("is_deleted")),
        )  # fmt: skip

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        """Only the fields given; None clears ("" for text, null for the country)."""
        body: dict[str, Any] = {key: blank(fields[key]) for key in (*CLIENT_KEYS, "name") if key in fields}
        if "country" in fields:
            body["country_id"] = country_id(fields["country"])
        contact = {key: blank(fields[key]) for key in CONTACT_KEYS if key in fields}
        if contact:
            body["contacts"] = [contact]
        return body

    def marker(self, fields: dict[str, Any]) -> str:
        return contact_marker(fields)

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        if fields.get("email"):
            return connector.find_client("email", fields["email"])
        if fields.get("name"):  # no email: the billing name is all there is
            return connector.find("clients", "name", fields["name"], params={"filter": fields["name"]})
        return None

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        return connector.create("clients", body)

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Invoice Ninja replaces the contact list on update: a contact sent without its id is a new one
        (new portal link) and one left out is removed, so the current contacts are sent along."""
        if "contacts" in body:
            current = connector.get_client(external_id) or {}
            body = {**body, "contacts": _merged_contacts(current, body["contacts"][0])}
        return connector.update_client(external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])


def _merged_contacts(client: dict[str, Any], changes: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("id", *CONTACT_KEYS, "send_email")
    primary = primary_contact(client)
    others = [c for c in client.get("contacts") or [] if c is not primary]
    first = {key: primary[key] for key in keep if key in primary} | changes
    return [first, *({key: c[key] for key in keep if key in c} for c in others)]


class ProductAdapter:
    system, kind = "invoiceninja", "product"

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return or_zero(canonical(self.kind, PRODUCT_FIELDS, data), PRODUCT_NUMBERS)

    def to_change(self, obj: dict[str, Any]) -> Change:
        values = {field: obj.get(key) for field, key in PRODUCT_KEYS.items()}
        fields = or_zero(canonical(self.kind, PRODUCT_FIELDS, values), PRODUCT_NUMBERS)
        return Change(
            self.system, self.kind, str(obj["id"]), fields, from_unix(obj.get("updated_at")),
            match_key=fields["sku"], deleted=bool(obj.get("is_deleted")),
        )  # fmt: skip

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        values = or_zero(fields, PRODUCT_NUMBERS)
        return {key: blank(values[field]) for field, key in PRODUCT_KEYS.items() if field in values}

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("sku"):
            raise Permanent("a product without a SKU cannot be created once in Invoice Ninja (no key)")
        return fields["sku"]

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        return connector.find_product(fields["sku"]) if fields.get("sku") else None

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        return connector.create("products", body)

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update("products", external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])


register(ClientAdapter())
register(ProductAdapter())
