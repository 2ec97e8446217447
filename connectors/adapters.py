"""How one system carries one kind: the mapper between its objects and the canonical fields, and the few
calls a push needs. One adapter per (system, kind), in its vendor's `<vendor>_mapping` module beside its
connector (the vendor's `mapping` in syncengine.vendors.REGISTRY), registered here when that module is
imported; `adapter_for` and `adapters` import them all on first use."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from syncengine.idempotency import Attempt
from syncengine.records import Change
from syncengine.vendors import REGISTRY

from . import load

# Set by the inbound handler on a vendor object: the hub id of its contact, resolved in the event's session.
HUB_CONTACT = "_hub_contact_id"


class Refs(Protocol):
    def external_id(self, record_id: int, system: str) -> str | None: ...


class Adapter(Protocol):
    system: str
    kind: str

    def to_change(self, obj: dict[str, Any]) -> Change:
        """The vendor object as a change of the canonical record (only the fields this system carries)."""

    def carried(self, data: dict[str, Any]) -> dict[str, Any]:
        """The canonical fields this system carries, as `to_change` would report them back."""

    def to_vendor(self, fields: dict[str, Any], refs: Refs) -> dict[str, Any]:
        """The vendor's create/update body for these canonical fields."""

    def marker(self, fields: dict[str, Any]) -> str:
        """What identifies the object in the vendor when we look it up before creating it."""

    def find(self, connector: Any, fields: dict[str, Any]) -> dict[str, Any] | None: ...

    def create(self, connector: Any, body: dict[str, Any], attempt: Attempt) -> dict[str, Any]: ...

    def update(self, connector: Any, external_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def external_id(self, obj: dict[str, Any]) -> str: ...

    # Optional: `current(connector, external_id)`, the object as the vendor holds it now (None when it is
    # gone). An adapter with it is read before a push and for a change whose stamp cannot order it
    # (connectors.current); `dates(connector, external_id, groups)` dates groups by the vendor's history.
    # `unique(connector, fields) -> bool`, True when the vendor itself keeps this object's marker
    # unique, compared as `find` compares it, and `create` then answers the object that holds it already
    # (a vendor's match, or its conflict read back): the create goes first (see `creates_first`).
    # `update_read(connector, external_id, body, read)`, `update` given the object as the push just read it.
    # `find_many(connector, many) -> list | None`, what `find` answers for each of `many`, in one or a few
    # requests (tasks.push_batch), or None when it cannot tell in so few (then each is looked up alone).


def creates_first(adapter: Adapter, connector: Any, fields: dict[str, Any]) -> bool:
    """Whether a push creates this object with no look-up first (Connector.create_once's `unique`): only
    where the adapter says the vendor keeps its marker unique, as that vendor is set up now."""
    unique = getattr(adapter, "unique", None)
    return bool(unique is not None and unique(connector, fields))


_REGISTERED: dict[tuple[str, str], Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    _REGISTERED[(adapter.system, adapter.kind)] = adapter
    return adapter


@cache
def _import_mappings() -> None:
    for vendor in REGISTRY.values():
        if vendor.mapping:
            load(vendor.mapping)  # registers its adapters


def adapters() -> dict[tuple[str, str], Adapter]:
    """Every (system, kind) adapter, each vendor's mapping module imported the first time (once per
    process: this is asked for every event and push)."""
    _import_mappings()
    return _REGISTERED


def adapter_for(system: str, kind: str) -> Adapter:
    return adapters()[(system, kind)]


def pick(fields: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The named fields that are present: a partial update says nothing about the others."""
    return {name: fields[name] for name in names if name in fields}


def from_unix(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value or 0), UTC)


def from_iso(value: Any) -> datetime:
    text = str(value).replace("Z", "+00:00").replace(" ", "T")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
