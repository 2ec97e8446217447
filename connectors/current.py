"""Read one object back as the vendor holds it now: a webhook is a notice that something changed, and
where its payload cannot be ordered (a stamp no newer than one already applied) or a push must know what
it would overwrite, the current state is what counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncengine.errors import Permanent

from .registry import connector_for

Get = Callable[[Any, str], dict[str, Any] | None]

GETTERS: dict[tuple[str, str], Get] = {
    ("invoiceninja", "contact"): lambda c, ext: c.get_client(ext),
    ("invoiceninja", "product"): lambda c, ext: c.get("products", ext),
    ("erpnext", "contact"): lambda c, ext: c.get("Customer", ext),
    ("erpnext", "product"): lambda c, ext: c.get("Item", ext),
    ("mautic", "contact"): lambda c, ext: c.get_contact(int(ext)),
    ("directus", "contact"): lambda c, ext: c.get_item("contacts", ext),
    ("directus", "product"): lambda c, ext: c.get_item("products", ext),
}


def readable(system: str, kind: str) -> bool:
    return (system, kind) in GETTERS


def read_current(system: str, kind: str, external_id: str) -> dict[str, Any] | None:
    """The object as it is now, or None when the vendor no longer has it (404)."""
    try:
        return GETTERS[(system, kind)](connector_for(system), external_id)
    except Permanent as exc:
        if exc.status == 404:
            return None
        raise
