"""Directus, the data hub, carries every contact and product field, flat and named as the canonical ones,
in the `contacts` and `products` collections.

Items are looked up before they are created by email (contacts; the name when there is none) and by SKU
(products). Decimal fields come back from Directus as strings ("12.50"), so numbers are normalised on the
way in like every other value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncengine.canonical import SCHEMA
from syncengine.errors import Permanent
from syncengine.idempotency import Attempt
from syncengine.records import Change

from .mapping import Refs, from_iso, register
from .normalise import canonical, contact_marker


def _all_fields(kind: str) -> tuple[str, ...]:
    return tuple(field for group in SCHEMA[kind].values() for field in group)


def updated_at(item: dict[str, Any]) -> datetime:
    """`date_updated` is null until the first update; a collection without either special field gives
    the moment we saw the item."""
    stamp = item.get("date_updated") or item.get("date_created")
    return from_iso(stamp) if stamp else datetime.now(UTC)


class ItemAdapter:
    """One canonical kind as items of one collection; `key` is the field we look items up by."""

    system = "directus"

    def __init__(self, kind: str, collection: str, key: str) -> None:
        self.kind, self.collection, self.key = kind, collection, key
        self.fields = _all_fields(kind)

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        return canonical(self.kind, self.fields, data)

    def to_change(self, obj: dict[str, Any]) -> Change:
        fields = canonical(self.kind, self.fields, obj)
        item_id = str(obj["id"])
        return Change(self.system, self.kind, item_id, fields, updated_at(obj), match_key=fields[self.key])

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        return {name: fields[name] for name in self.fields if name in fields}

    def marker(self, fields: dict[str, Any]) -> str:
        if self.kind == "contact":
            return contact_marker(fields)
        if not fields.get(self.key):
            raise Permanent(f"a {self.kind} without {self.key} cannot be created once in Directus")
        return str(fields[self.key])

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        field, value = self._lookup(fields)
        return connector.find_item(self.collection, field, value) if value else None

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        field, _ = self._lookup(body)
        return connector.insert_item(self.collection, body, unique_field=field)

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return connector.update_item(self.collection, external_id, body)

    def external_id(self, obj: dict[str, Any]) -> str:
        return str(obj["id"])

    def _lookup(self, fields: dict[str, Any]) -> tuple[str, Any]:
        """The key field, or a contact's name when it has no email."""
        if fields.get(self.key) or self.kind != "contact":
            return self.key, fields.get(self.key)
        return "name", fields.get("name")


register(ItemAdapter("contact", "contacts", "email"))
register(ItemAdapter("product", "products", "sku"))
