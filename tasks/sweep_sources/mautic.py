"""Mautic's sweeps: contacts (`date_modified >= since`, paged by id), deleted contacts (the audit log), and
the contact timeline's email opens and form submissions (F8). The events are shaped in its home
(syncengine.vendors.mautic.swept_contact, swept_deleted, swept_activity)."""

from __future__ import annotations

from syncengine.vendors import mautic

from .source import Source, iso

CONTACTS = Source(
    "mautic", "contact",
    lambda c, since, size: c.iter_modified_contacts(since, page_size=size),  # by id, not by time
    lambda _c, row: iso(row.get("dateModified") or row["dateAdded"]),
    lambda _c, row: mautic.swept_contact(row), page_size=30,
)  # fmt: skip

DELETED = Source(
    "mautic", "deleted",
    lambda c, since, size: c.iter_deleted_contacts(since, page_size=size),  # the audit log, by id
    lambda _c, row: iso(row["date_added"]), lambda _c, row: mautic.swept_deleted(row), ordered=True,
)  # fmt: skip

# Each activity type is paged on its own, so a later page may hold older events of another type: unordered,
# the cursor waits for the listing's end.
ACTIVITIES = Source(
    "mautic", "activity",
    lambda c, since, size: c.iter_activity(since, page_size=size),
    lambda _c, row: iso(row["timestamp"]), lambda _c, row: mautic.swept_activity(row), page_size=100,
)  # fmt: skip

SOURCES: tuple[Source, ...] = (CONTACTS, DELETED, ACTIVITIES)
