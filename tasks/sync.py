"""The inbound half of every sync flow: a vendor's object becomes a change of the hub's record, and each
other system that carries the kind gets a push task once the event's transaction has committed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import connectors.mappers  # noqa: F401 - registers every adapter
from connectors.mapping import ADAPTERS
from connectors.registry import connector_for
from syncengine.records import Change, Merged, merge

from .dispatch import Handler, HandlerContext
from .push import push

Read = Callable[[dict[str, Any]], Iterable[dict[str, Any]]]
# Resolve what the mapper cannot without the event's session (an invoice's client → the hub contact).
Prepare = Callable[[HandlerContext, dict[str, Any]], dict[str, Any]]
# What else the merged change sets off (the invoice email).
After = Callable[[HandlerContext, Change, Merged], None]


def sync_handler(
    system: str, kind: str, read: Read, *, prepare: Prepare | None = None, after: After | None = None
) -> Handler:
    """A handler that reads the vendor objects an event names and merges each into the hub."""

    def handle(ctx: HandlerContext) -> None:
        adapter = ADAPTERS[(system, kind)]
        for obj in read(ctx.event.payload):
            change = adapter.to_change(prepare(ctx, obj) if prepare else obj)
            merged = merge(ctx.session, change)
            defer_pushes(ctx, merged)
            if after is not None:
                after(ctx, change, merged)

    return handle


def defer_pushes(ctx: HandlerContext, merged: Merged) -> None:
    for target in merged.targets:
        ctx.defer(push.s(merged.record_id, target))


# --- how each sender's events name their objects ------------------------------------------------------


def as_sent(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Invoice Ninja posts the whole entity."""
    return [payload]


def under(key: str) -> Read:
    """Mautic puts the object under a key (contact, company)."""
    return lambda payload: [payload[key]] if isinstance(payload.get(key), dict) else []


def erpnext_document(doctype: str) -> Read:
    """Frappe sends only what its Webhook template names: read the document back, whole and current."""

    def read(payload: dict[str, Any]) -> list[dict[str, Any]]:
        doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
        name = payload.get("name") or doc.get("name")
        return [connector_for("erpnext").get(doctype, name)] if name else []

    return read


def directus_items(collection: str) -> Read:
    """A Directus Flow sends the request input (changed fields only): read each item back."""

    def read(payload: dict[str, Any]) -> list[dict[str, Any]]:
        keys = payload.get("keys") or ([payload["key"]] if payload.get("key") is not None else [])
        found = (connector_for("directus").get_item(collection, key) for key in keys)
        return [item for item in found if item is not None]

    return read
