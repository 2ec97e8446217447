"""What each sweep lists in each system, and the webhook event each listed change becomes.

Each event is shaped exactly like the webhook of the same change (same source, the event type its handler
is registered for, the payload that handler reads) and keyed like it (the vendor's `change_key`), so a swept
change takes the webhook's path through dispatch, merge and echo suppression, and a change already stored
from its webhook is not stored again. Archived and deleted rows become the archive and delete events of
F9 (tasks.deletes) where the vendor lists them: Invoice Ninja rows with `is_deleted`/`archived_at`, ERPNext
`Deleted Document`, Directus items flagged archived (their update) and hard deletes from its activity log,
Mautic's deleted contacts from its audit log (the Stats API).

Where each part lives: how a listed row reads as its webhook event (which event, which key, which
payload) is a fact of the vendor, pure, in its home (syncengine.vendors.<vendor>: `swept…`); how it is
listed calls the vendor's connector, so it is declared here, above the connectors, one module per vendor
(`tasks.sweep_sources.<vendor>`: its `SOURCES`), named by the vendor's line in syncengine.vendors.REGISTRY
(`sweeps`). A new vendor's sweeps are that module and that field; nothing here changes.
"""

from __future__ import annotations

import importlib

from syncengine.vendors import REGISTRY

from .source import Row, Shape, Source, iso

__all__ = ["ALL", "SOURCES", "Row", "Shape", "Source", "iso"]

ALL: tuple[Source, ...] = tuple(
    source
    for vendor in REGISTRY.values()
    if vendor.sweeps
    for source in importlib.import_module(vendor.sweeps).SOURCES
)
SOURCES: dict[tuple[str, str], Source] = {(s.system, s.kind): s for s in ALL}
