"""A sweep's cost follows the changes, not the records (issue 6): over 10,000 unchanged records in each
system one list request per (system, kind) and nothing stored; with 100 of them changed through the
vendor's API, exactly those 100 stored and handed on.

Fresh simulators seeded in bulk (bench/sweep_scale.py), the production connectors, the real store.
Publishing is recorded instead of sent: the dispatch path of swept events is tests/flows/test_reconcile.py's
business, and a worker here would chase records that live in these simulators only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from bench import sweep_scale as scale
from bench.sweep_scale import LIST_PATHS, Vendor, change, list_requests, seeded
from syncengine.db import session_scope
from syncengine.models import InboxEvent, SyncCursor
from tasks import reconcile

RECORDS, CHANGED = 10_000, 100


@pytest.fixture(scope="module")
def vendors() -> Iterator[dict[tuple[str, str], Vendor]]:
    with scale.vendors() as out:
        yield out


@pytest.fixture()
def swept_here(monkeypatch) -> Iterator[list[int]]:
    """Publishing recorded; the store's cursors of these kinds set aside and put back afterwards, and the
    events this test stored removed (no worker will take them)."""
    published: list[int] = []
    monkeypatch.setattr(reconcile, "_publish", published.extend)
    keys = list(LIST_PATHS)
    with session_scope() as s:
        saved = [
            dict(r._mapping) for r in s.execute(select(SyncCursor.__table__)) if (r.system, r.kind) in keys
        ]
    try:
        yield published
    finally:
        with session_scope() as s:
            if published:
                s.execute(delete(InboxEvent).where(InboxEvent.id.in_(published)))
            for system, kind in keys:
                s.execute(delete(SyncCursor).where(SyncCursor.system == system, SyncCursor.kind == kind))
            if saved:
                s.execute(insert(SyncCursor.__table__), saved)


@pytest.mark.slow  # 20 s: `pytest -m slow` (CI's second step) or naming this file runs it
def test_sweeps_over_ten_thousand_records_cost_what_changed(vendors, swept_here):
    published = swept_here
    ids = {key: seeded(key[0], v.sim, RECORDS) for key, v in vendors.items()}
    assert {key: len(found) for key, found in ids.items()} == dict.fromkeys(vendors, RECORDS)
    for system, kind in vendors:
        reconcile.set_cursor(system, kind, datetime.now(UTC) - timedelta(hours=1))

    for (system, kind), vendor in vendors.items():
        before = list_requests(vendor, LIST_PATHS[(system, kind)])
        result = reconcile.sweep(system, kind, connector=vendor.connector)
        assert (system, result.listed, result.new) == (system, 0, 0)
        assert list_requests(vendor, LIST_PATHS[(system, kind)]) - before <= 1, system
    assert published == []

    changed: dict[tuple[str, str], set[str]] = {}
    for key, vendor in vendors.items():
        step = RECORDS // CHANGED
        changed[key] = {str(change(key[0], vendor, ids[key][i * step], i)) for i in range(CHANGED)}

    for (system, kind), vendor in vendors.items():
        result = reconcile.sweep(system, kind, connector=vendor.connector)
        assert (system, result.new) == (system, CHANGED)
        with session_scope() as s:
            stored = list(
                s.execute(select(InboxEvent).where(InboxEvent.id.in_(published[-CHANGED:]))).scalars()
            )
        named = {_named_id(system, event.payload) for event in stored}
        assert named == changed[(system, kind)], system
    assert len(published) == len(set(published)) == CHANGED * len(vendors)


def _named_id(system: str, payload: dict[str, Any]) -> str:
    """The vendor id a stored event names, read as its handler reads it."""
    if system == "invoiceninja":
        return str(payload["id"])
    if system == "erpnext":
        return str(payload["name"])
    if system == "mautic":
        return str(payload["contact"]["id"])
    if system == "directus":
        return str(payload["keys"][0])
    return str(payload["data"]["id"])
