"""Reconciliation end to end (issue 6): with every simulator dropping a tenth of its webhooks and one system
down for a while, one sweep of every kind leaves each system holding every contact and product exactly
once, as the hub does (counted from the simulators' own stores, and by content in the drift report); a
change seen by webhook and by sweep is stored once; lost deletes, archives and sent invoices arrive by
sweep."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent, Link, Record
from tasks import drift, reconcile
from tasks.sweep_sources import SOURCES
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with, mautic_contact
from tests.flows.test_deletes import hub_deleted
from tests.flows.test_drift import run_drift
from tests.flows.test_invoices import (
    INVOICE_EMAIL_ID,
    directus_invoices,
    invoice_emails,
    invoice_ninja,
    sales_invoices,
)
from tests.flows.test_sweeps import mautic_contacts_with
from tests.flows.test_sweeps import run_sweep as sweep_by_hand
from tests.support import wait_until

IN_HEADERS = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
ERP_HEADERS = {"Authorization": "token erp-api-key:erp-api-secret"}
DIRECTUS_HEADERS = {"Authorization": "Bearer directus-static-token"}

CONTACT_COUNTS: dict[str, Callable[[Any, str], list]] = {
    "invoiceninja": clients_with,
    "erpnext": customers_with,
    "mautic": mautic_contacts_with,
    "directus": directus_contacts_with,
}
PRODUCT_STORES = {"invoiceninja": ("products", "product_key"), "erpnext": ("Item", "item_code"),
                  "directus": ("products", "sku")}  # fmt: skip


@pytest.fixture(autouse=True)
def swept_until_now(deployment) -> None:
    """Every cursor at the test's start, as if the beat had been sweeping all along: the sweeps under test
    list this test's changes, not what earlier tests seeded into the simulators behind the hub's back."""
    now = datetime.now(UTC)
    for system, kind in SOURCES:
        reconcile.set_cursor(system, kind, now)


def run_sweep(deployment: Any, *args: str) -> str:
    return sweep_by_hand(deployment, *args, lookback=0)


def products_with(sim: Any, system: str, sku: str) -> list:
    collection, key = PRODUCT_STORES[system]
    return [p for p in sim.db.get(collection, {}).values() if p.get(key) == sku]


def create_contact(deployment: Any, system: str, email: str) -> None:
    url = deployment.servers[system].url
    if system == "mautic":
        mautic_contact(deployment, email, "Rec")
        return
    if system == "invoiceninja":
        body = {"name": f"Rec {email}", "contacts": [{"email": email, "first_name": "Rec"}]}
        response = requests.post(f"{url}/api/v1/clients", json=body, headers=IN_HEADERS, timeout=10)
    elif system == "erpnext":
        body = {"customer_name": f"Rec {email}", "customer_type": "Company", "email_id": email}
        response = requests.post(
            f"{url}/api/v2/document/Customer", json=body, headers=ERP_HEADERS, timeout=10
        )
    else:
        body = {"email": email, "name": f"Rec {email}"}
        response = requests.post(f"{url}/items/contacts", json=body, headers=DIRECTUS_HEADERS, timeout=10)
    assert response.status_code in (200, 201), response.text


def create_product(deployment: Any, system: str, sku: str) -> None:
    url = deployment.servers[system].url
    if system == "invoiceninja":
        body = {"product_key": sku, "notes": f"Product {sku}", "price": 12.5}
        response = requests.post(f"{url}/api/v1/products", json=body, headers=IN_HEADERS, timeout=10)
    elif system == "erpnext":
        body = {"item_code": sku, "item_name": f"Product {sku}", "item_group": "Products", "stock_uom": "Nos",
                "is_stock_item": 0, "standard_rate": 12.5}  # fmt: skip
        response = requests.post(f"{url}/api/v2/document/Item", json=body, headers=ERP_HEADERS, timeout=10)
    else:
        body = {"sku": sku, "name": f"Product {sku}", "price": 12.5}
        response = requests.post(f"{url}/items/products", json=body, headers=DIRECTUS_HEADERS, timeout=10)
    assert response.status_code in (200, 201), response.text


def dropped(sims: dict[str, Any]) -> int:
    return sum(
        1 for sim in sims.values() for entry in list(sim.webhook_log) if entry.get("result") == "dropped"
    )


def missing(sims: dict[str, Any], emails: list[str], skus: list[str]) -> list[tuple[str, str]]:
    """(system, email or sku) not (yet) in that system."""
    return [
        (name, e) for e in emails for name, found in CONTACT_COUNTS.items() if not found(sims[name], e)
    ] + [(name, s) for s in skus for name in PRODUCT_STORES if not products_with(sims[name], name, s)]


def hub_count(kind: str, key: str) -> tuple[int, set[str]]:
    """Records with this natural key, and the systems linked to them."""
    with session_scope() as s:
        records = s.execute(
            select(func.count()).where(Record.kind == kind, Record.match_key == key)
        ).scalar_one()
        systems = set(
            s.execute(
                select(Link.system).join(Record, Record.id == Link.record_id)
                .where(Record.kind == kind, Record.match_key == key)
            ).scalars()
        )  # fmt: skip
    return records, systems


def test_one_sweep_of_every_kind_repairs_lost_webhooks_and_an_outage(deployment):
    sims, tag = deployment.sims, uuid.uuid4().hex[:6]
    emails: list[str] = []
    skus: list[str] = []
    before = dropped(sims)
    for n, sim in enumerate(sims.values()):
        sim.set_faults(drop_webhooks=0.1, seed=n)
    try:
        # Invoice Ninja down for a while: its API answers 503 and nothing it would send arrives. Few
        # enough pushes fail meanwhile that its circuit breaker stays closed and they simply retry.
        sims["invoiceninja"].set_faults(outage=True, drop_webhooks=1.0)
        calls = len(sims["invoiceninja"].requests_log())
        for system in ("mautic", "erpnext"):
            emails.append(f"rec-down-{system}-{tag}@example.test")
            create_contact(deployment, system, emails[-1])
        skus.append(f"REC-DOWN-{tag}")
        sims["directus"].set_faults(drop_webhooks=1.0)  # and this product's Flow run lost for sure
        create_product(deployment, "directus", skus[-1])
        sims["directus"].flush_webhooks(timeout=10)
        sims["directus"].set_faults(drop_webhooks=0.1)
        wait_until(lambda: len(sims["invoiceninja"].requests_log()) > calls, timeout=30)  # it was tried
        sims["invoiceninja"].set_faults(outage=False, drop_webhooks=0.1)

        for system in CONTACT_COUNTS:
            for n in range(3):
                emails.append(f"rec-{system}-{n}-{tag}@example.test")
                create_contact(deployment, system, emails[-1])
        for system in PRODUCT_STORES:
            for n in range(2):
                skus.append(f"REC-{system[:3].upper()}-{n}-{tag}")
                create_product(deployment, system, skus[-1])
        for sim in sims.values():
            sim.flush_webhooks(timeout=10)
    finally:
        for sim in sims.values():
            sim.clear_faults()
    deployment.settle(timeout=120)
    assert dropped(sims) > before

    assert ("erpnext", skus[0]) in missing(sims, emails, skus)  # the sweep has something to repair
    run_sweep(deployment)
    deployment.settle(timeout=120)

    contacts = {
        e: {name: len(found(sims[name], e)) for name, found in CONTACT_COUNTS.items()} for e in emails
    }
    products = {s: {name: len(products_with(sims[name], name, s)) for name in PRODUCT_STORES} for s in skus}
    assert contacts == {e: dict.fromkeys(CONTACT_COUNTS, 1) for e in emails}  # zero missed, zero duplicated
    assert products == {s: dict.fromkeys(PRODUCT_STORES, 1) for s in skus}
    assert {e: hub_count("contact", e) for e in emails} == {e: (1, set(CONTACT_COUNTS)) for e in emails}
    assert {s: hub_count("product", s) for s in skus} == {s: (1, set(PRODUCT_STORES)) for s in skus}

    # And by content: the drift report finds each system holding what the hub holds for every one of them.
    run_drift(deployment)
    ours = record_ids("contact", emails) | record_ids("product", skus)
    report = drift.last_report()
    assert [(k["system"], k["kind"], d) for k in report["kinds"] for d in k["differences"]
            if d["record_id"] in ours] == []  # fmt: skip


def record_ids(kind: str, keys: list[str]) -> set[int]:
    with session_scope() as s:
        return set(
            s.execute(select(Record.id).where(Record.kind == kind, Record.match_key.in_(keys))).scalars()
        )


def inbox_rows(source: str, prefix: str) -> int:
    with session_scope() as s:
        return s.execute(
            select(func.count()).where(InboxEvent.source == source, InboxEvent.event_id.startswith(prefix))
        ).scalar_one()


@pytest.mark.parametrize("system", ["invoiceninja", "erpnext", "mautic"])
def test_a_change_seen_by_its_webhook_and_by_a_sweep_is_stored_once(deployment, system):
    email = f"twice-{system}-{uuid.uuid4().hex[:6]}@example.test"
    create_contact(deployment, system, email)
    deployment.settle()
    obj = CONTACT_COUNTS[system](deployment.sims[system], email)[0]
    prefix = {
        "invoiceninja": f"invoiceninja:client:{obj.get('id')}:",
        "erpnext": f"erpnext:Customer:{obj.get('name')}:",
        "mautic": f"mautic:contact:{obj.get('id')}:",
    }[system]
    seen = inbox_rows(system, prefix)
    assert seen >= 1  # the webhooks were keyed by the change

    run_sweep(deployment, system, "contact")
    deployment.settle()
    assert inbox_rows(system, prefix) == seen


def _remove(deployment: Any, system: str, address: str) -> None:
    """Delete (ERPNext), archive (Invoice Ninja) or flag archived (Directus) the contact, by hand."""
    sims, url = deployment.sims, deployment.servers[system].url
    if system == "invoiceninja":
        client = clients_with(sims[system], address)[0]
        body = {"action": "archive", "ids": [client["id"]]}
        response = requests.post(f"{url}/api/v1/clients/bulk", json=body, headers=IN_HEADERS, timeout=10)
    elif system == "erpnext":
        name = customers_with(sims[system], address)[0]["name"]
        response = requests.delete(f"{url}/api/v2/document/Customer/{name}", headers=ERP_HEADERS, timeout=10)
    else:
        key = directus_contacts_with(sims[system], address)[0]["id"]
        body = {"archived": True}
        response = requests.patch(
            f"{url}/items/contacts/{key}", json=body, headers=DIRECTUS_HEADERS, timeout=10
        )
    assert response.status_code in (200, 202, 204), response.text


@pytest.mark.parametrize("system", ["invoiceninja", "erpnext", "directus"])
def test_a_delete_or_archive_whose_webhook_was_lost_arrives_by_sweep(deployment, system):
    # A first name of its own: ERPNext names a Customer after it, and reuses the name of a deleted one.
    address, sims = f"gone-{system}-{uuid.uuid4().hex[:6]}@example.test", deployment.sims
    mautic_contact(deployment, address, f"Gone{uuid.uuid4().hex[:6]}")
    wait_until(lambda: all(found(sims[name], address) for name, found in CONTACT_COUNTS.items()), timeout=60)
    deployment.settle()
    sims[system].set_faults(drop_webhooks=1.0)
    try:
        _remove(deployment, system, address)
        sims[system].flush_webhooks(timeout=10)
    finally:
        sims[system].clear_faults()
    deployment.settle()
    assert not hub_deleted(address), "the webhook was not lost"

    run_sweep(deployment, system)
    deployment.settle()

    assert hub_deleted(address)
    archived = {
        "invoiceninja": lambda: clients_with(sims["invoiceninja"], address)[0].get("archived_at"),
        "erpnext": lambda: customers_with(sims["erpnext"], address)[0].get("disabled"),
        "directus": lambda: directus_contacts_with(sims["directus"], address)[0].get("archived"),
    }
    assert {o: bool(archived[o]()) for o in archived if o != system} == {
        o: True for o in archived if o != system
    }
    assert mautic_contacts_with(sims["mautic"], address)  # Mautic keeps the contact and its history


def test_a_sent_invoice_whose_webhooks_were_lost_arrives_by_sweep_and_is_emailed_once(deployment):
    sims = deployment.sims
    if INVOICE_EMAIL_ID not in sims["mautic"].db["emails"]:
        sims["mautic"].add_email("Invoice", subject="Your invoice {invoice_number}")
    email, sku = f"inv-sweep-{uuid.uuid4().hex[:8]}@example.test", f"SKU-{uuid.uuid4().hex[:6].upper()}"
    mautic_contact(deployment, email, f"Inv{uuid.uuid4().hex[:6]}")
    invoice_ninja(deployment, "POST", "products", {"product_key": sku, "notes": "Widget", "price": 100})
    in_erpnext = lambda: sku in sims["erpnext"].db.get("Item", {})  # noqa: E731
    wait_until(lambda: clients_with(sims["invoiceninja"], email) and in_erpnext(), timeout=60)
    deployment.settle()
    client = clients_with(sims["invoiceninja"], email)[0]
    sims["invoiceninja"].set_faults(drop_webhooks=1.0)
    try:
        line = {"product_key": sku, "notes": "Widget", "cost": 100, "quantity": 1, "type_id": "1"}
        body = {
            "client_id": client["id"],
            "date": "2026-11-02",
            "due_date": "2026-12-02",
            "line_items": [line],
        }
        invoice = invoice_ninja(deployment, "POST", "invoices", body)
        invoice_ninja(deployment, "POST", "invoices/bulk", {"action": "mark_sent", "ids": [invoice["id"]]})
        sims["invoiceninja"].flush_webhooks(timeout=10)
    finally:
        sims["invoiceninja"].clear_faults()
    deployment.settle()
    number = invoice["number"]
    assert not sales_invoices(sims["erpnext"], number), "the webhooks were not lost"

    run_sweep(deployment, "invoiceninja", "invoice")
    deployment.settle()
    run_sweep(deployment, "invoiceninja", "invoice")  # again: nothing new, nothing sent twice
    deployment.settle()

    assert len(sales_invoices(sims["erpnext"], number)) == 1
    assert len(directus_invoices(sims["directus"], number)) == 1
    assert len(invoice_emails(sims["mautic"], number)) == 1
