"""Contact sweeps (issue 6): changes whose webhooks were lost reach every system once, an idle sweep costs
one list request and writes nothing, and a sweep that dies mid-listing resumes from its cursor."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from syncengine.change_keys import change_key
from syncengine.db import session_scope
from syncengine.inbox import NewEvent
from syncengine.models import InboxEvent, SyncCursor
from tasks import reconcile
from tasks.sweep_sources import Source
from tests.flows.test_contacts import (
    clients_with,
    customers_with,
    directus_contacts_with,
    mautic_contact,
    writes,
)
from tests.support import wait_until


def mautic_contacts_with(sim, email: str) -> list:
    return [
        c
        for c in sim.db.get("leads", {}).values()
        if (c.get("fields", {}).get("email") or "").lower() == email
    ]


def change_listings(mautic) -> list:
    """The sweep's list requests (`where date_modified`), not a push's look-up of one email meanwhile."""
    return [
        e for e in mautic.requests_log("GET", path="/api/contacts") if "date_modified" in e["query_string"]
    ]


def run_sweep(deployment, *args: str, lookback: int | None = None) -> str:
    """`syncengine sweep …`; `lookback=0` re-lists nothing before the cursor (the clocks are one host's)."""
    env = (
        deployment.env if lookback is None else {**deployment.env, "SYNCENGINE_SWEEP_LOOKBACK": str(lookback)}
    )
    done = subprocess.run(
        [sys.executable, "-m", "syncengine", "sweep", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def cursor(system: str, kind: str) -> str | None:
    with session_scope() as s:
        return s.execute(
            select(SyncCursor.cursor).where(SyncCursor.system == system, SyncCursor.kind == kind)
        ).scalar_one_or_none()


def test_contacts_whose_webhooks_were_lost_arrive_by_sweep_once(deployment):
    sims, mautic = deployment.sims, deployment.sims["mautic"]
    emails = [f"swept-{uuid.uuid4().hex[:8]}@example.test" for _ in range(3)]
    mautic.set_faults(drop_webhooks=1.0)
    try:
        for n, email in enumerate(emails):
            mautic_contact(deployment, email, f"Swept{n}")
        mautic.flush_webhooks(timeout=10)
    finally:
        mautic.clear_faults()
    deployment.settle()
    assert not any(clients_with(sims["invoiceninja"], e) for e in emails), "a webhook was not dropped"
    before = cursor("mautic", "contact")

    run_sweep(deployment, "mautic", "contact")

    def everywhere() -> bool:
        return all(clients_with(sims["invoiceninja"], e) and customers_with(sims["erpnext"], e)
                   and directus_contacts_with(sims["directus"], e) for e in emails)  # fmt: skip

    wait_until(everywhere, timeout=60)
    deployment.settle()
    for email in emails:
        assert len(clients_with(sims["invoiceninja"], email)) == 1
        assert len(customers_with(sims["erpnext"], email)) == 1
        assert len(directus_contacts_with(sims["directus"], email)) == 1
        assert len(mautic_contacts_with(mautic, email)) == 1
    after = cursor("mautic", "contact")
    assert after is not None and (before is None or after > before)

    lists = len(change_listings(mautic))
    written = {name: writes(sim) for name, sim in sims.items()}
    # Nothing changed since the cursor: one list request, nothing written. (Without lookback: earlier
    # tests' contacts changed within the default two minutes would be listed again, harmlessly.)
    run_sweep(deployment, "mautic", "contact", lookback=0)
    deployment.settle()
    assert len(change_listings(mautic)) == lists + 1
    assert {name: writes(sim) for name, sim in sims.items()} == written
    assert cursor("mautic", "contact") == after


# --- a sweep that dies mid-listing (no deployment: a listing in memory, publishing recorded) -------------

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
START = T0 - timedelta(minutes=1)


class Crash(Exception):
    pass


class FakeVendor:
    """Rows changed one minute apart; listed oldest first in pages, optionally dying after the first."""

    def __init__(self, count: int) -> None:
        self.rows = [{"id": i, "modified": T0 + timedelta(minutes=i)} for i in range(count)]
        self.crash_after_first_page = True
        self.requests = 0

    def list_changes(self, since: datetime, size: int) -> Iterator[dict[str, Any]]:
        rows = [r for r in self.rows if r["modified"] >= since]
        for start in range(0, len(rows), size):
            if start and self.crash_after_first_page:
                raise Crash("connection reset during page 2")
            self.requests += 1
            yield from rows[start : start + size]


@pytest.fixture()
def fake_source(monkeypatch, request) -> Iterator[tuple[str, FakeVendor, list[int]]]:
    system = f"fake{uuid.uuid4().hex[:6]}"
    vendor, published = FakeVendor(5), []

    def shape(_conn: Any, row: dict[str, Any]) -> NewEvent:
        key = change_key(system, "contact", row["id"], row["modified"])
        return NewEvent(system, key, "update_client", {"id": row["id"]})

    source = Source(
        system, "contact", lambda c, since, size: c.list_changes(since, size), lambda c, row: row["modified"],
        shape, ordered=request.param, page_size=2,
    )  # fmt: skip
    monkeypatch.setitem(reconcile.SOURCES, (system, "contact"), source)
    monkeypatch.setattr(reconcile, "_publish", published.extend)
    yield system, vendor, published
    with session_scope() as s:  # no worker here: leave no 'received' rows for the flow tests' settle()
        s.execute(delete(InboxEvent).where(InboxEvent.source == system))
        s.execute(delete(SyncCursor).where(SyncCursor.system == system))


@pytest.mark.parametrize("fake_source", [True, False], ids=["ordered", "unordered"], indirect=True)
def test_a_sweep_that_crashes_mid_listing_resumes_from_its_cursor_without_loss(fake_source):
    system, vendor, published = fake_source
    reconcile.set_cursor(system, "contact", START)  # where the previous sweep got to
    with pytest.raises(Crash):
        reconcile.sweep(system, "contact", connector=vendor, lookback=0)
    stored = event_ids(system)
    assert stored == [f"{system}:contact:{i}:{(T0 + timedelta(minutes=i)).isoformat()}" for i in (0, 1)]
    assert len(published) == 2  # the first page was committed and published before the crash
    ordered = reconcile.SOURCES[(system, "contact")].ordered
    assert cursor(system, "contact") == (T0 + timedelta(minutes=1) if ordered else START).isoformat()

    vendor.crash_after_first_page = False
    result = reconcile.sweep(system, "contact", connector=vendor, lookback=0)
    assert event_ids(system) == [
        f"{system}:contact:{i}:{(T0 + timedelta(minutes=i)).isoformat()}" for i in range(5)
    ]
    assert len(published) == 5  # each change published once: the re-listed ones collapsed in the inbox
    assert result.new == 3
    assert cursor(system, "contact") == (T0 + timedelta(minutes=4)).isoformat()

    vendor.requests = 0
    again = reconcile.sweep(system, "contact", connector=vendor, lookback=0)
    assert (again.new, vendor.requests) == (0, 1)  # nothing changed: one list request, nothing stored


@pytest.mark.parametrize("fake_source", [False], ids=["unordered"], indirect=True)
def test_an_edit_during_a_listing_by_id_is_listed_by_the_next_sweep(fake_source):
    """A listing by id (Mautic, Directus) meets an edit of a row it listed already; a row listed later was
    edited later still. The cursor is the newest stamp seen, but never past the listing's start: the first
    edit is listed by the next sweep, not left behind the cursor."""
    system, vendor, _published = fake_source
    vendor.crash_after_first_page = False
    base = datetime.now(UTC) - timedelta(minutes=10)
    for i, row in enumerate(vendor.rows):
        row["modified"] = base + timedelta(minutes=i)
    listing = vendor.list_changes

    def edited_meanwhile(since: datetime, size: int) -> Iterator[dict[str, Any]]:
        for n, row in enumerate(listing(since, size)):
            if n == size:  # the first page is stored: row 0 is edited, then row 4, before it is listed
                vendor.rows[0]["modified"] = datetime.now(UTC)
                vendor.rows[4]["modified"] = datetime.now(UTC) + timedelta(seconds=1)
            yield row

    vendor.list_changes = edited_meanwhile  # type: ignore[method-assign]
    reconcile.sweep(system, "contact", connector=vendor, lookback=0, since=base)
    vendor.list_changes = listing  # type: ignore[method-assign]
    again = reconcile.sweep(system, "contact", connector=vendor, lookback=0)
    edit = f"{system}:contact:0:{vendor.rows[0]['modified'].isoformat()}"
    assert edit in event_ids(system) and again.new == 1


def event_ids(system: str) -> list[str]:
    with session_scope() as s:
        return list(
            s.execute(
                select(InboxEvent.event_id).where(InboxEvent.source == system).order_by(InboxEvent.id)
            ).scalars()
        )


def _create_contact(deployment, system: str, email: str) -> None:
    import requests

    url = deployment.servers[system].url
    if system == "invoiceninja":
        response = requests.post(
            f"{url}/api/v1/clients", timeout=10,
            json={"name": f"Sweep {email}", "contacts": [{"email": email, "first_name": "Sweep"}]},
            headers={"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"},
        )  # fmt: skip
    elif system == "erpnext":
        response = requests.post(
            f"{url}/api/v2/document/Customer", timeout=10,
            json={"customer_name": f"Sweep {email}", "customer_type": "Company", "email_id": email},
            headers={"Authorization": "token erp-api-key:erp-api-secret"},
        )  # fmt: skip
    else:
        response = requests.post(
            f"{url}/items/contacts", timeout=10, json={"email": email, "name": f"Sweep {email}"},
            headers={"Authorization": "Bearer directus-static-token"},
        )  # fmt: skip
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("system", ["invoiceninja", "erpnext", "directus"])
def test_a_contact_created_while_its_webhooks_were_lost_arrives_by_sweep(deployment, system):
    sims = deployment.sims
    email = f"swept-{system}-{uuid.uuid4().hex[:8]}@example.test"
    sims[system].set_faults(drop_webhooks=1.0)
    try:
        _create_contact(deployment, system, email)
        sims[system].flush_webhooks(timeout=10)
    finally:
        sims[system].clear_faults()
    deployment.settle()
    found = {
        "invoiceninja": lambda: clients_with(sims["invoiceninja"], email),
        "erpnext": lambda: customers_with(sims["erpnext"], email),
        "directus": lambda: directus_contacts_with(sims["directus"], email),
        "mautic": lambda: mautic_contacts_with(sims["mautic"], email),
    }
    others = [name for name in found if name != system]
    assert not any(found[name]() for name in others), "a webhook was not dropped"

    reads = len(sims["erpnext"].requests_log("GET", path_prefix="/api/v2/document/Customer/"))
    run_sweep(deployment, system, "contact")

    wait_until(lambda: all(found[name]() for name in others), timeout=60)
    deployment.settle()
    assert {name: len(found[name]()) for name in found} == dict.fromkeys(found, 1)
    if system == "erpnext":  # listed whole, in order: merged as listed, no Customer read back
        assert len(sims["erpnext"].requests_log("GET", path_prefix="/api/v2/document/Customer/")) == reads


@pytest.mark.parametrize("fake_source", [True], ids=["ordered"], indirect=True)
def test_a_first_sweep_catches_up_on_a_day_and_a_backfill_goes_further(fake_source):
    """No cursor yet: the last day, not all history (a year of bank transactions would each be booked or
    reviewed); `since` (`syncengine sweep --since`) reaches back on purpose."""
    system, vendor, _published = fake_source
    vendor.crash_after_first_page = False
    now = datetime.now(UTC)
    vendor.rows.append({"id": 99, "modified": now - timedelta(hours=2)})

    first = reconcile.sweep(system, "contact", connector=vendor, lookback=0)
    assert (first.listed, first.new) == (1, 1)  # the 2024 rows are older than a day

    backfill = reconcile.sweep(system, "contact", connector=vendor, lookback=0, since=START)
    assert (backfill.listed, backfill.new) == (6, 5)
