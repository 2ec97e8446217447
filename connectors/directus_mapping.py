"""Directus, the data hub, carries every contact, product and invoice field, flat and named as the canonical
ones, in the `contacts`, `products` and `invoices` collections (an invoice's `contact_id` is the hub id,
its `lines` a JSON list).

Items are looked up before they are created by email (contacts; the name when there is none), by SKU
(products) and by number (invoices); where Directus keeps that field unique and compares it as the look-up
does (not an email, whose case the look-up ignores), the create goes first and a conflict is read back.
Decimal fields come back from Directus as JSON numbers on SQLite and as strings ("12.50") elsewhere, so
numbers are normalised on the way in like every other value. The collections and their fields are declared
in syncengine.vendors.directus (`syncengine setup` creates them).
F9: an item is archived by its boolean `archived` field (the collection must have one), never deleted, and
an item archived by hand reports its record deleted; the flag cleared (by hand, or by `restore()`) is the
item un-archived, which restores the record. F8: activities are items of `activities` by `ext_id`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncengine.canonical import SCHEMA
from syncengine.errors import Permanent
from syncengine.idempotency import Attempt
from syncengine.records import Change

from .adapters import Refs, from_iso, register
from .history import group_dates
from .normalise import canonical, contact_marker, flag

ARCHIVED = "archived"  # boolean field on contacts/products: set by F9 instead of deleting the item


def _all_fields(kind: str) -> tuple[str, ...]:
    return tuple(field for group in SCHEMA[kind].values() for field in group)


def updated_at(item: dict[str, Any]) -> datetime:
    """`date_updated` is null until the first update; a collection without either special field gives
    the moment we saw the item."""
    stamp = item.get("date_updated") or item.get("date_created")
    return from_iso(stamp) if stamp else datetime.now(UTC)


def unedited(item: dict[str, Any]) -> bool:
    """`date_updated` stays null until the first update (the `date-updated` special sets it on each one)."""
    return bool(item.get("date_created")) and not item.get("date_updated")


class ItemAdapter:
    """One canonical kind as items of one collection; `key` is the field we look items up by."""

    system = "directus"

    def __init__(self, kind: str, collection: str, key: str) -> None:
        self.kind, self.collection, self.key = kind, collection, key
        self.fields = _all_fields(kind)

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return canonical(self.kind, self.fields, data)

    def to_change(self, obj: dict[str, Any]) -> Change:
        fields = self._read(obj)
        item_id = str(obj["id"])
        return Change(
            self.system, self.kind, item_id, fields, updated_at(obj), match_key=fields[self.key],
            deleted=bool(flag(obj.get(ARCHIVED))), unedited=unedited(obj),
        )  # fmt: skip

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        return {name: fields[name] for name in self.fields if name in fields}

    def marker(self, fields: dict[str, Any]) -> str:
        if self.kind == "contact":
            return contact_marker(fields)
        if not fields.get(self.key):
            raise Permanent(f"a {self.kind} without {self.key} cannot be created once in Directus")
        return str(fields[self.key])

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        """By the key field; an email whatever its case (one typed by hand in Directus keeps its capitals)."""
        field, value = self._lookup(fields)
        if not value:
            return None
        return connector.find_item(self.collection, field, value, ignore_case=field == "email")

    def find_many(self, connector: Any, many: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
        """`find` for each of `many`, one request per field looked up by (the email, else a name)."""
        lookups = [self._lookup(fields) for fields in many]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for field in {field for field, value in lookups if value}:
            values = [value for f, value in lookups if f == field and value]
            rows = connector.find_items(self.collection, field, values, ignore_case=field == "email")
            if rows is None:
                return None
            found |= {(field, k): row for k, row in rows.items()}
        fold = str.casefold
        return [found.get((f, fold(str(v)) if f == "email" else str(v))) if v else None for f, v in lookups]

    def unique(self, connector: Any, fields: dict[str, Any]) -> bool:
        """Created first (`create` reads a 400 RECORD_NOT_UNIQUE back) where Directus keeps the key field
        unique, as a product's SKU: its unique index compares as `find`'s `_eq` does. Never a contact: its
        look-up ignores the email's case (one typed by hand keeps its capitals) and the index does not, so
        an unlinked "Ann@X.io" there would not stop a second "ann@x.io"."""
        field, value = self._lookup(fields)
        return field == self.key != "email" and bool(value) and connector.field_unique(self.collection, field)

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        field, _ = self._lookup(body)
        return connector.insert_item(self.collection, body, unique_field=field)

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update_item(self.collection, external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])

    def current(self, connector: Any, external_id: str) -> dict[str, Any] | None:
        return connector.get_item(self.collection, external_id)

    def archive(self, connector: Any, external_id: str) -> dict[str, Any]:
        """F9: flag the item rather than DELETE it, so the hub keeps its history."""
        return connector.update_item(self.collection, external_id, {ARCHIVED: True})

    def restore(self, connector: Any, external_id: str) -> dict[str, Any]:
        """F9 reversed: the flag back, as the app's unarchive sets the archive field's unarchive value."""
        return connector.update_item(self.collection, external_id, {ARCHIVED: False})

    def dates(
        self, connector: Any, external_id: str, groups: dict[str, dict[str, Any]]
    ) -> dict[str, datetime]:
        """When each group got the values it holds (name -> canonical values), from the item's revisions
        (connectors.history); a revision's `delta` holds the fields that write sent, by canonical name."""
        saves = []
        for revision in connector.revisions(self.collection, external_id):
            delta, at = revision.get("delta") or {}, _written(revision)
            sent = tuple(name for name in self.fields if name in delta)
            if at is None or not sent:
                continue
            try:
                saves.append((canonical(self.kind, sent, delta), at))
            except (TypeError, ValueError):
                continue  # a value that is none (corrected since): that write dates nothing
        return group_dates(saves, groups)

    def _read(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The item's canonical fields; a value that is none (a price "abc": SQLite keeps what it is given)
        is a Permanent error naming the item and the field, for a person to correct in Directus."""
        try:
            return canonical(self.kind, self.fields, obj)
        except (TypeError, ValueError) as exc:
            bad = next(name for name in self.fields if not _valid(self.kind, name, obj.get(name)))
            raise Permanent(
                f"directus {self.collection} {obj.get('id')}: {bad} {str(obj.get(bad))[:60]!r} is not a "
                f"valid {self.kind} {bad}: correct it in Directus"
            ) from exc

    def _lookup(self, fields: dict[str, Any]) -> tuple[str, Any]:
        """The key field, or a contact's name when it has no email."""
        if fields.get(self.key) or self.kind != "contact":
            return self.key, fields.get(self.key)
        return "name", fields.get("name")


def _written(revision: dict[str, Any]) -> datetime | None:
    """The stamp a write set: `date_updated` in its delta; a create sets none (its data has none either),
    so the `date_created` its data holds."""
    delta, data = revision.get("delta") or {}, revision.get("data") or {}
    stamp = delta.get("date_updated") or (data.get("date_created") if not data.get("date_updated") else None)
    return from_iso(stamp) if stamp else None


def _valid(kind: str, name: str, value: Any) -> bool:
    try:
        canonical(kind, (name,), {name: value})
    except (TypeError, ValueError):
        return False
    return True


register(ItemAdapter("contact", "contacts", "email"))
register(ItemAdapter("product", "products", "sku"))
register(ItemAdapter("invoice", "invoices", "number"))


class ActivityAdapter:
    """F8: an activity (email opened, form submitted) as one item of `activities`, found by `ext_id` = its
    ref (the Mautic stat or submission id), so a repeated push never makes a second item."""

    system, kind, collection = "directus", "activity", "activities"
    fields = _all_fields("activity")

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        """`occurred_at` as Directus gives a timestamp back (UTC, milliseconds, `Z`), so what we send and
        what the item holds compare equal whatever spelling the source used."""
        fields = {name: data.get(name) for name in self.fields}
        return fields | {"occurred_at": _instant(fields["occurred_at"])}

    def to_change(self, obj: dict[str, Any]) -> Change:
        fields = self.carried(obj) | {"ref": obj.get("ext_id")}
        return Change(
            self.system, self.kind, str(obj["id"]), fields, updated_at(obj), match_key=fields["ref"]
        )

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        contact = refs.external_id(fields["contact_id"], "directus") if fields.get("contact_id") else None
        body = {name: fields.get(name) for name in self.fields if name != "ref"}
        return {"ext_id": fields.get("ref"), "contact": contact, **body,
                "occurred_at": _instant(fields.get("occurred_at"))}  # fmt: skip

    def marker(self, fields: dict[str, Any]) -> str:
        if not fields.get("ref"):
            raise Permanent("an activity without a ref cannot be created once in Directus")
        return str(fields["ref"])

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        return connector.find_item(self.collection, "ext_id", self.marker(fields))

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        return connector.insert_item(self.collection, body, unique_field="ext_id")

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update_item(self.collection, external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])


def _instant(value: Any) -> str | None:
    """An ISO 8601 time (Mautic's "2024-05-01 10:00:00" reads as UTC) as Directus prints a timestamp."""
    if value in (None, ""):
        return None
    at = from_iso(value).astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


register(ActivityAdapter())
