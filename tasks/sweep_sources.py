"""What a contact sweep lists in each system, and the webhook event each listed change becomes.

Each event is shaped exactly like the webhook of the same change (same source, the event type its handler
is registered for, the payload that handler reads), so a swept change takes the webhook's path through
dispatch, merge and echo suppression, and a change already seen by webhook writes nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncengine.inbox import NewEvent

Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    system: str
    kind: str
    # (connector, since, page size) -> changed rows, one vendor request per page
    list_changes: Callable[[Any, datetime, int], Iterator[Row]]
    modified: Callable[[Any, Row], datetime]  # (connector, row) -> when the vendor last changed it
    event_type: str
    payload: Callable[[Row], Any]
    # Listed oldest change first and paged by key: the cursor may advance after each page. Otherwise a
    # later page can hold older changes, so it advances only once the whole listing is stored.
    ordered: bool = False
    page_size: int = 100

    def event(self, connector: Any, row: Row) -> NewEvent:
        stamp = self.modified(connector, row).isoformat()
        event_id = f"sweep:{self.system}:{row_id(self.system, row)}:{stamp}"
        return NewEvent(self.system, event_id, self.event_type, self.payload(row))


def row_id(system: str, row: Row) -> str:
    return str(row["name"] if system == "erpnext" else row["id"])


def _iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _invoiceninja_modified(_conn: Any, row: Row) -> datetime:
    return datetime.fromtimestamp(int(row.get("updated_at") or row.get("created_at") or 0), tz=UTC)


def _erpnext_modified(conn: Any, row: Row) -> datetime:
    """Frappe prints naive times in the site's zone."""
    parsed = datetime.fromisoformat(str(row["modified"]))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=conn.site_timezone)


def _mautic_modified(_conn: Any, row: Row) -> datetime:
    return _iso(row.get("dateModified") or row["dateAdded"])


def _directus_modified(_conn: Any, row: Row) -> datetime:
    return _iso(row.get("date_updated") or row["date_created"])


def _directus_time(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


CONTACT_SOURCES: dict[str, Source] = {
    "invoiceninja": Source(
        "invoiceninja", "contact",
        # Offset pages in updated_at order: treated as unordered, an edit during the sweep shifts rows.
        lambda c, since, size: c.changed_since("clients", int(since.timestamp()), page_size=size),
        _invoiceninja_modified, "update_client", lambda row: row,
    ),
    "mautic": Source(
        "mautic", "contact",
        lambda c, since, size: c.iter_modified_contacts(since, page_size=size),  # by id, not by time
        _mautic_modified, "mautic.lead_post_save_update", lambda row: {"contact": row}, page_size=30,
    ),
    "erpnext": Source(
        "erpnext", "contact",
        lambda c, since, size: c.iter_modified("Customer", since, fields=("name",), page_size=size),
        _erpnext_modified, "Customer:on_update",
        lambda row: {"doctype": "Customer", "name": row["name"], "modified": row["modified"]},
        ordered=True,
    ),
    "directus": Source(
        "directus", "contact",
        lambda c, since, size: c.changed_since("contacts", _directus_time(since), page_size=size),
        _directus_modified, "contacts.items.update",
        lambda row: {"event": "contacts.items.update", "keys": [str(row["id"])], "collection": "contacts"},
    ),
}  # fmt: skip

SOURCES: dict[tuple[str, str], Source] = {(s.system, s.kind): s for s in CONTACT_SOURCES.values()}
