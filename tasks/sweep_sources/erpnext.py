"""ERPNext's sweeps: `modified >= since` paged by key, and `Deleted Document` for what was trashed. The
events are shaped in its home (syncengine.vendors.erpnext.swept, swept_deleted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncengine.vendors import erpnext

from .source import Row, Source


def _modified(conn: Any, row: Row) -> datetime:
    """Frappe prints naive times in the site's zone (the connector reads it from the site). A stamp ahead of
    our clock (a server clock ahead of ours) earns a cursor of now, never one in the future: the next
    sweep would skip what changes until then."""
    return min(conn.aware(row["modified"]), datetime.now(UTC))


def _source(kind: str, doctype: str, filters: list | None = None, *, whole: bool = False) -> Source:
    """`whole`: listed with every field, which its handler then takes as listed instead of reading each
    document back (a doctype whose mapped fields are all in its own table; Sales Invoice lines are not)."""
    fields = ("*",) if whole else ("name", "docstatus")
    return Source(
        "erpnext", kind,
        lambda c, since, size: c.iter_modified(
            doctype, since, fields=fields, filters=filters, page_size=size
        ),
        _modified, lambda _c, row: erpnext.swept(doctype, row), ordered=True,
    )  # fmt: skip


DELETED = Source(
    "erpnext", "deleted",
    lambda c, since, size: c.iter_modified(
        "Deleted Document", since, fields=("deleted_doctype", "deleted_name", "data"),
        filters=[["deleted_doctype", "in", list(erpnext.TRASH_HANDLED)]], page_size=size,
    ),
    _modified, lambda _c, row: erpnext.swept_deleted(row), ordered=True,
)  # fmt: skip

SOURCES: tuple[Source, ...] = (
    _source("contact", "Customer", whole=True),
    _source("product", "Item", whole=True),
    _source("invoice", "Sales Invoice"),
    _source("transfer", "Purchase Invoice", [["docstatus", "=", 1]]),  # F7's trigger: submitted ones only
    DELETED,
)
