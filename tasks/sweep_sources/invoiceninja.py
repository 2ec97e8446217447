"""Invoice Ninja's sweeps: `updated_at >= since`, archived and deleted rows included, paged by key on
`updated_at` (the cursor advances with each page). The events are shaped in its home
(syncengine.vendors.invoiceninja.swept)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncengine.vendors import invoiceninja

from .source import Source


def _source(kind: str, collection: str, entity: str, **filters: Any) -> Source:
    return Source(
        "invoiceninja", kind,
        lambda c, since, size: c.iter_modified(collection, int(since.timestamp()), page_size=size, **filters),
        lambda _c, row: datetime.fromtimestamp(int(row.get("updated_at") or row.get("created_at") or 0), UTC),
        lambda _c, row: invoiceninja.swept(entity, row), ordered=True,
    )  # fmt: skip


SOURCES: tuple[Source, ...] = (
    _source("contact", "clients", "client"),
    _source("product", "products", "product"),
    _source("invoice", "invoices", "invoice", include="client"),  # the handler merges the client too
)
