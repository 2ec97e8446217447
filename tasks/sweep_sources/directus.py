"""Directus's sweeps: items with `date_updated` or `date_created` >= since, and hard deletes from the
activity log. The events are shaped in its home (syncengine.vendors.directus.swept, swept_deleted).

Paged by id: `date_updated` is null until an item's first update, so no single stamp orders created and
updated items together, and an offset over a stamp order skips an item whenever one before it is edited.
The listing is still filtered, so its cost follows the changes; ids are not stamps, so the cursor waits
for the listing's end (and never passes its start: tasks.reconcile.sweep)"""

from __future__ import annotations

from syncengine.vendors import directus

from .source import Source, iso


def _source(kind: str, collection: str) -> Source:
    return Source(
        "directus", kind,
        lambda c, since, size: c.changed_since(collection, directus.filter_time(since), page_size=size),
        lambda _c, row: iso(row.get("date_updated") or row["date_created"]),
        lambda _c, row: directus.swept(collection, row),
    )  # fmt: skip


DELETED = Source(
    "directus", "deleted",
    lambda c, since, size: c.deleted_since(
        list(directus.DELETE_HANDLED), directus.filter_time(since), page_size=size
    ),
    lambda _c, row: iso(row["timestamp"]), lambda _c, row: directus.swept_deleted(row),
    ordered=True,  # keyed on the activity id
)  # fmt: skip

SOURCES: tuple[Source, ...] = (
    _source("contact", "contacts"),
    _source("product", "products"),
    _source("invoice", "invoices"),
    DELETED,
)
