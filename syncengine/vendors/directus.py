"""What is true of Directus whoever uses it: the Flows we subscribe with and the events they send, and what
Directus must hold for the engine: the collections it writes, each field with its Directus type, the
unique field items are looked up by, the `archived` flag of what the engine archives instead of deleting,
and `date_created`/`date_updated`, which the sweep filters on. Pure data: `syncengine setup` creates it, the
connector and the simulator read it.

Facts of Directus 11 this follows: a boolean comes back as 0/1 unless its field has the `cast-boolean`
special, a JSON field as text unless it has `cast-json`; `date_created`/`date_updated` are filled only by
the `date-created`/`date-updated` specials (`date_updated` stays null until the first update); on SQLite a
decimal field is stored (and reported by `/fields`) as `float` and comes back as a JSON number, elsewhere
as a string; a field created without `meta` cannot be a timestamp (400 FAILED_VALIDATION), so every field
is created with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncengine import change_keys as keys
from syncengine.inbox import NewEvent

STRING, TEXT, INTEGER, FLOAT, DECIMAL = "string", "text", "integer", "float", "decimal"
BOOLEAN, JSON, DATE, TIMESTAMP = "boolean", "json", "date", "timestamp"

# The types a field of each declared type may be reported as and still hold what we write: SQLite has no
# decimal column, so Directus makes (and reports) a decimal field a float there.
COMPATIBLE: dict[str, frozenset[str]] = {
    DECIMAL: frozenset({DECIMAL, FLOAT}),
    TEXT: frozenset({TEXT, STRING}),
    TIMESTAMP: frozenset({TIMESTAMP, "dateTime"}),
}
# The specials without which a value does not come back as written.
NEEDED_SPECIALS: dict[str, tuple[str, ...]] = {BOOLEAN: ("cast-boolean",), JSON: ("cast-json",)}

ARCHIVED = "archived"  # the flag the engine sets instead of deleting an item (F9)
DATE_CREATED, DATE_UPDATED = "date_created", "date_updated"
EXT_ID = "ext_id"  # our own id of an item the engine makes (payment:<tx>, document:<sha> …)

# The collections whose item changes we subscribe to, the item events, and the file events (receipts and
# invoices dropped into Directus go to OCR, F6).
WATCHED = ("contacts", "products", "invoices")
SCOPES = ("items.create", "items.update", "items.delete")
UPLOADS = ("files.upload",)
# Our Flows by name (`webhooks install`): item changes of the watched collections, and file uploads (not
# collection-scoped).
FLOWS = {
    "syncengine webhooks": {"type": "action", "scope": list(SCOPES), "collections": list(WATCHED)},
    "syncengine uploads": {"type": "action", "scope": list(UPLOADS)},
}
# The events those Flows send, as `<collection>.<scope>` and the file events.
EVENTS = (*(f"{collection}.{scope}" for collection in WATCHED for scope in SCOPES), *UPLOADS)


def change_key(collection: str, item: dict[str, Any]) -> str:
    """The change key (syncengine.change_keys) of an item as listed: its newest stamp."""
    return keys.change_key("directus", collection, item["id"], item.get(DATE_UPDATED) or item[DATE_CREATED])


def deleted_key(collection: str, key: Any) -> str:
    """A Directus delete has no stamp anywhere (the Flow sends the keys, the activity log its own time), but
    a key is deleted once, so collection and key name it for the webhook and the activity sweep alike."""
    return keys.change_key("directus", collection, key, "", keys.DELETED)


# What the sweeps (tasks.sweep_sources) see, as the Flow's webhooks of the same changes. Deletes: the items
# API forgets a deleted item, the activity log does not (one `delete` row per item). Directus logs (and
# fires the Flow for) a DELETE of an item already gone too: keyed by the item alone, the repeat is the same
# event and is stored once. Reading the log needs read on `directus_activity`.
DELETE_HANDLED = ("contacts", "products")  # collections with a delete handler (tasks.deletes)


def filter_time(value: datetime) -> str:
    """A time as a Directus filter compares it: UTC, milliseconds, `Z`."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def swept(collection: str, row: dict[str, Any]) -> NewEvent:
    """The Flow's update event of a listed item, which travels in it as listed, under `listed` (see
    `listed`)."""
    event = f"{collection}.items.update"
    payload = {"event": event, "keys": [str(row["id"])], "collection": collection, "listed": row}
    return NewEvent("directus", change_key(collection, row), event, payload)


def listed(payload: dict[str, Any], collection: str) -> list[dict[str, Any]]:
    """The item a sweep event carries as its listing read it: every field, as `GET /items/{collection}/{id}`
    answers it (both default to `fields=*`), so its handler need not read it back (one request less per
    listed item). None without its id and a stamp to order it by."""
    item = payload.get("listed")
    if not isinstance(item, dict) or payload.get("collection") != collection:
        return []
    stamped = item.get("date_updated") or item.get("date_created")
    return [item] if item.get("id") is not None and stamped else []


def swept_deleted(row: dict[str, Any]) -> NewEvent:
    """The Flow's delete event for this one key: what tasks.deletes reads, keyed as the receiver keys it."""
    collection, key = row["collection"], row["item"]
    event = f"{collection}.items.delete"
    payload = {"event": event, "payload": [key], "keys": [key], "collection": collection}
    return NewEvent("directus", deleted_key(collection, key), event, payload)


@dataclass(frozen=True)
class Field:
    """One field as `POST /fields/{collection}` makes it."""

    name: str
    type: str
    unique: bool = False
    precision: int | None = None  # decimals: digits in all
    scale: int | None = None  # decimals: digits after the point
    special: tuple[str, ...] = ()
    default: Any = None
    hidden: bool = False
    primary_key: bool = False

    @property
    def specials(self) -> tuple[str, ...]:
        """What the field must carry so values come back as written (NEEDED_SPECIALS), and its own."""
        return tuple(dict.fromkeys((*NEEDED_SPECIALS.get(self.type, ()), *self.special)))

    def accepts(self, reported_type: str) -> bool:
        return reported_type in COMPATIBLE.get(self.type, frozenset({self.type}))

    def body(self) -> dict[str, Any]:
        """The `/fields` (or a collection's `fields[]`) body that creates it."""
        schema: dict[str, Any] = {}
        if self.primary_key:
            schema.update(is_primary_key=True, has_auto_increment=True)
        if self.unique:
            schema["is_unique"] = True
        if self.precision is not None:
            schema.update(numeric_precision=self.precision, numeric_scale=self.scale)
        if self.default is not None:
            schema["default_value"] = self.default
        meta: dict[str, Any] = {"special": list(self.specials) or None, "hidden": self.hidden}
        if self.type == TIMESTAMP and "cast-timestamp" not in self.specials:
            meta["special"] = [*(meta["special"] or []), "cast-timestamp"]  # as Directus itself adds it
        if self.primary_key or self.name in (DATE_CREATED, DATE_UPDATED):
            meta["readonly"] = True
        return {"field": self.name, "type": self.type, "meta": meta, "schema": schema}


@dataclass(frozen=True)
class Collection:
    """One collection: `key` is the unique field the engine looks its items up by before creating one."""

    name: str
    key: str
    own: tuple[Field, ...]  # the fields the engine writes
    archivable: bool = False  # items are archived (the `archived` flag), never deleted, by the engine
    note: str = ""

    @property
    def fields(self) -> tuple[Field, ...]:
        """Every field, in the order a new collection gets them: id, ours, the flag, the two dates."""
        flag = (Field(ARCHIVED, BOOLEAN, default=False),) if self.archivable else ()
        return (ID, *self.own, *flag, CREATED, UPDATED)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def meta(self) -> dict[str, Any]:
        """Accountability "all" (the delete sweep reads deletes from the activity log) and, where items are
        archived, the app's own archive button wired to our flag."""
        meta: dict[str, Any] = {"note": self.note or None, "accountability": "all"}
        if self.archivable:
            meta.update(archive_field=ARCHIVED, archive_value="true", unarchive_value="false")
        return meta

    def body(self) -> dict[str, Any]:
        """The `POST /collections` body that creates it with every field."""
        return {"collection": self.name, "meta": self.meta, "schema": {},
                "fields": [f.body() for f in self.fields]}  # fmt: skip


ID = Field("id", INTEGER, primary_key=True, hidden=True)
CREATED = Field(DATE_CREATED, TIMESTAMP, special=("date-created",), hidden=True)
UPDATED = Field(DATE_UPDATED, TIMESTAMP, special=("date-updated",), hidden=True)


def string(name: str, *, unique: bool = False) -> Field:
    return Field(name, STRING, unique=unique)


def text(name: str) -> Field:
    return Field(name, TEXT)


def integer(name: str) -> Field:
    return Field(name, INTEGER)


def money(name: str) -> Field:
    return Field(name, DECIMAL, precision=15, scale=2)


def rate(name: str) -> Field:
    return Field(name, DECIMAL, precision=9, scale=3)  # tax rates such as 8.875 %


def flag(name: str) -> Field:
    return Field(name, BOOLEAN)


def json(name: str) -> Field:
    return Field(name, JSON)


def date(name: str) -> Field:
    return Field(name, DATE)


def ext_id() -> Field:
    return string(EXT_ID, unique=True)


# The collections the engine writes.
CONTACTS = Collection("contacts", "email", (
    string("name"), string("first_name"), string("last_name"), string("email", unique=True), string("phone"),
    string("company_name"), string("address1"), string("address2"), string("city"), string("postal_code"),
    string("country"), string("vat_number"), flag("marketing_consent"),
), archivable=True, note="syncengine: clients and contacts, synced both ways")  # fmt: skip

PRODUCTS = Collection("products", "sku", (
    string("sku", unique=True), string("name"), text("description"), money("price"), money("cost"),
    rate("tax_rate"), string("currency"),
), archivable=True, note="syncengine: products, synced both ways")  # fmt: skip

INVOICES = Collection("invoices", "number", (
    string("number", unique=True), integer("contact_id"), date("date"), date("due_date"), string("currency"),
    text("notes"), json("lines"), string("status"), money("total"), money("tax_total"), money("paid"),
    money("balance"),
), note="syncengine: sales invoices (contact_id is the hub's contact id)")  # fmt: skip

PAYMENTS = Collection("payments", EXT_ID, (
    ext_id(), string("bank_transaction_id"), money("amount"), money("applied"), string("currency"),
    date("date"), string("reference"), string("payer_name"), string("invoice_number"), string("matched_by"),
    string("status"),
), note="syncengine: bank payments booked against invoices")  # fmt: skip

EXPENSES = Collection("expenses", EXT_ID, (
    ext_id(), integer("document_id"), string("supplier"), string("number"), date("date"), string("currency"),
    money("net"), money("vat"), money("total"), string("invoiceninja_expense_id"),
    string("erpnext_purchase_invoice"), string("status"),
), note="syncengine: supplier invoices read by OCR")  # fmt: skip

TRANSFERS = Collection("transfers", EXT_ID, (
    ext_id(), string("bank_transaction_id"), string("request_id"), string("purchase_invoice"),
    string("supplier"), money("amount"), string("currency"), string("reference"), string("counterparty_id"),
    string("state"),
), note="syncengine: supplier invoices paid by bank transfer")  # fmt: skip

REVIEWS = Collection("reviews", EXT_ID, (
    ext_id(), string("kind"), string("title"), text("details"), money("amount"), string("currency"),
    string("reference"), string("payer_name"), json("reasons"), integer("document_id"),
    Field("confidence", FLOAT), json("extracted"),
), note="syncengine: what a person must look at (unmatched payments, OCR doubts, drift)")  # fmt: skip

ACTIVITIES = Collection("activities", EXT_ID, (
    ext_id(), integer("contact"), integer("contact_id"), string("type"), string("subject"),
    Field("occurred_at", TIMESTAMP), json("details"),
), note="syncengine: email opens and form submissions (contact is the contacts item)")  # fmt: skip

COLLECTIONS: dict[str, Collection] = {
    c.name: c for c in (CONTACTS, PRODUCTS, INVOICES, PAYMENTS, EXPENSES, TRANSFERS, REVIEWS, ACTIVITIES)
}

# What the engine calls besides the items of its collections.
ITEM_ACTIONS = ("create", "read", "update", "delete")


@dataclass(frozen=True)
class Grant:
    """A permission the token needs: `action` on the (system) collection, and what needs it."""

    collection: str
    action: str
    why: str
    optional: str = ""  # when set, only this command needs it (the engine runs without it)


SYSTEM_GRANTS: tuple[Grant, ...] = (
    Grant("directus_activity", "read", "the delete sweep lists hard deletes from the activity log"),
    Grant("directus_revisions", "read", "a change read back is dated by the revision that wrote it"),
    Grant("directus_files", "read", "uploads are read for OCR (/files and /assets)"),
    *(Grant("directus_flows", a, "webhooks install", optional="webhooks install") for a in ITEM_ACTIONS),
    *(Grant("directus_operations", a, "webhooks install", optional="webhooks install") for a in ITEM_ACTIONS),
)


def created_item(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The item an `<collection>.items.create` Flow carries: its input, which is the whole item when we
    created it (our push sends every field it carries); none for any other event."""
    created = payload.get("payload")
    if not str(payload.get("event", "")).endswith("items.create") or not isinstance(created, dict):
        return []
    return [{**created, "id": payload["key"]}] if payload.get("key") is not None else []
