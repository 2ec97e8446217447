"""Invoice Ninja carries contacts as clients (with their primary contact) and products.

Client: `name` is the billing name (the contact's name, else its company, else the person: Invoice Ninja
bills the client, so a company contact's client is the company); the person, email and phone live on the
primary contact; address fields and `vat_number` on the client; `country` as `country_id`, the ISO numeric
code. Product: `product_key` is the SKU, `notes` the description, `tax_rate1` the tax rate; Invoice Ninja
has no product name or currency, and its numbers are never empty (0 means "not set").
Invoice: the source of an invoice's header and lines (`line_items`: `product_key`, `notes`, `quantity`,
`cost`, `tax_rate1..3`); it reports its own totals and status too, but those belong to ERPNext (the owner
of `invoice.accounting`), so they are never pushed here. The client is the hub contact linked to
`client_id`. Invoice Ninja keeps the currency on the client's settings, so it does not carry one.
"""

from __future__ import annotations

from typing import Any

from syncengine.errors import Permanent, WaitingFor
from syncengine.idempotency import Attempt
from syncengine.locks import lock
from syncengine.records import Change, record_id_for

from . import countries
from .adapters import HUB_CONTACT, Refs, from_unix, register
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


def not_live(obj: dict[str, Any]) -> bool:
    """Archived or deleted: both are undone by Invoice Ninja's `restore` (it clears `is_deleted` too), so
    neither is gone for good, and an edit of an archived client must not read as its restore (F9)."""
    return bool(obj.get("is_deleted") or obj.get("archived_at"))


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
            match_key=fields["email"], deleted=not_live(obj),
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
        lookup = _client_lookup(fields)
        if lookup is None:
            return None
        field, value = lookup
        if field == "email":
            return connector.find_client("email", value)
        return connector.find("clients", "name", value, params={"filter": value})

    def find_many(self, connector: Any, many: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
        """`find` for each of `many` from one listing of every client, where that listing takes at most a
        fifth of the requests the look-ups alone would (a page holds 1,000 clients): a batch of fewer than
        five is looked up one by one, its few answers lighter than a page of the list."""
        return connector.find_clients([_client_lookup(f) for f in many], most_pages=len(many) // 5)

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

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get_client(external_id)

    def archive(self, connector: Any, external_id: str) -> dict[str, Any]:
        """F9: archive (bulk action), never delete: Invoice Ninja keeps the client's invoices visible."""
        return connector.archive("clients", external_id)

    def restore(self, connector: Any, external_id: str) -> dict[str, Any]:
        """F9 reversed: the bulk `restore` (a no-op on a live client, so a repeat is harmless)."""
        return connector.restore("clients", external_id)


def _client_lookup(fields: dict[str, Any]) -> tuple[str, str] | None:
    """What a client is looked up by: its email, else (no email) its billing name, all there is."""
    if fields.get("email"):
        return "email", str(fields["email"])
    if fields.get("name"):
        return "name", str(fields["name"])
    return None


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
            match_key=fields["sku"], deleted=not_live(obj),
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

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get("products", external_id)

    def archive(self, connector: Any, external_id: str) -> dict[str, Any]:
        return connector.archive("products", external_id)

    def restore(self, connector: Any, external_id: str) -> dict[str, Any]:
        return connector.restore("products", external_id)


INVOICE_CARRIED = ("number", "contact_id", "date", "due_date", "notes", "lines")
INVOICE_REPORTED = (*INVOICE_CARRIED, "status", "total", "tax_total", "paid", "balance")
# Invoice::STATUS_* (1 draft … 6 reversed), in the canonical words ERPNext's statuses map to as well.
INVOICE_STATUS = {"1": "draft", "2": "sent", "3": "partial", "4": "paid", "5": "cancelled", "6": "reversed"}


def _line(item: dict[str, Any]) -> dict[str, Any]:
    tax = sum(float(item.get(f"tax_rate{i}") or 0) for i in (1, 2, 3))
    return {"sku": item.get("product_key"), "description": item.get("notes"),
            "quantity": item.get("quantity"), "unit_price": item.get("cost"), "tax_rate": tax}  # fmt: skip


def _line_item(line: dict[str, Any]) -> dict[str, Any]:
    item = {"product_key": blank(line["sku"]), "notes": blank(line["description"]), "type_id": "1",
            "quantity": line["quantity"], "cost": line["unit_price"],
            "tax_rate1": line["tax_rate"]}  # fmt: skip
    return {**item, "tax_name1": "VAT"} if line["tax_rate"] else item


class InvoiceAdapter:
    system, kind = "invoiceninja", "invoice"

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return canonical(self.kind, INVOICE_CARRIED, data)

    def to_change(self, obj: dict[str, Any]) -> Change:
        """The client resolves to its hub contact: `HUB_CONTACT` when the handler set it (in its own
        session), else a look-up of our own."""
        if HUB_CONTACT in obj:
            contact_id = obj[HUB_CONTACT]
        else:
            contact_id = record_id_for(None, self.system, "contact", obj.get("client_id"))
        values = {
            "number": obj.get("number"), "contact_id": contact_id, "date": obj.get("date"),
            "due_date": obj.get("due_date"), "notes": obj.get("public_notes"),
            "lines": [_line(item) for item in obj.get("line_items") or []],
            "status": INVOICE_STATUS.get(str(obj.get("status_id"))), "total": obj.get("amount"),
            "tax_total": obj.get("total_taxes"), "paid": obj.get("paid_to_date"),
            "balance": obj.get("balance"),
        }  # fmt: skip
        fields = canonical(self.kind, INVOICE_REPORTED, values)
        return Change(
            self.system, self.kind, str(obj["id"]), fields, from_unix(obj.get("updated_at")),
            match_key=fields["number"], deleted=bool(obj.get("is_deleted")),
        )  # fmt: skip

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        body: dict[str, Any] = {key: fields[key] for key in ("number", "date", "due_date") if fields.get(key)}
        if "notes" in fields:
            body["public_notes"] = blank(fields["notes"])
        if fields.get("contact_id") is not None:
            client_id = refs.external_id(fields["contact_id"], self.system)
            if client_id is None:  # the contact's own push is usually still on its way
                raise WaitingFor(f"contact {fields['contact_id']} is not in Invoice Ninja yet")
            body["client_id"] = client_id
        if "lines" in fields:
            body["line_items"] = [_line_item(line) for line in fields["lines"]]
        return body

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("number"):
            raise Permanent("an invoice without a number cannot be created once in Invoice Ninja")
        return str(fields["number"])

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        return connector.find_invoice(str(fields["number"])) if fields.get("number") else None

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        return connector.create("invoices", body)

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update_invoice(external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get("invoices", external_id, include="client")  # as its webhook sends it


register(ClientAdapter())
register(ProductAdapter())
register(InvoiceAdapter())


class NoteAdapter:
    """F8: an activity as one line of the client's `private_notes` (the simulator, like Invoice Ninja's API,
    has no writable activity/comment endpoint). The line starts with `[ref]`; it is appended under a lock
    per client, and only when no line with that ref is there yet, so a repeated push never doubles it.
    The link's external id is `<client id>:<ref>`: unique per activity, while the client id stays readable."""

    system, kind = "invoiceninja", "activity"
    fields = ("ref", "contact_id", "type", "subject", "occurred_at")

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return {name: data.get(name) for name in self.fields}

    def to_change(self, obj: dict[str, Any]) -> Change:
        raise NotImplementedError("activities only flow into Invoice Ninja")

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        client_id = refs.external_id(fields["contact_id"], self.system) if fields.get("contact_id") else None
        if client_id is None:
            raise WaitingFor(f"activity {fields.get('ref')}: the contact is not in Invoice Ninja yet")
        line = f"[{fields['ref']}] {fields.get('occurred_at')} {fields.get('type')}: {fields.get('subject')}"
        return {"client_id": client_id, "ref": fields["ref"], "line": line}

    def marker(self, fields: dict[str, Any]) -> str:
        return str(fields["ref"])

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        return None  # the note's presence is checked in `create`, where the client id is known

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        client_id = body["client_id"]
        with lock(f"invoiceninja:client-notes:{client_id}"):
            client = connector.get_client(client_id)
            if client is None:
                raise Permanent(f"Invoice Ninja client {client_id} is gone", 404)
            notes = client.get("private_notes") or ""
            if f"[{body['ref']}]" not in notes:
                connector.update_client(
                    client_id, {"private_notes": "\n".join(filter(None, (notes, body["line"])))}
                )
        return {"id": f"{client_id}:{body['ref']}", "client_id": client_id}

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.create(connector, body, None)  # type: ignore[arg-type]

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])


register(NoteAdapter())
