"""F9 end to end: a contact deleted in one system is a tombstone in the hub and archived (never deleted)
in the others, and the archives' own webhooks start no ping-pong."""

from __future__ import annotations

import time
import uuid

import requests
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import Record
from tests.flows.test_contacts import (
    clients_with,
    customers_with,
    directus_contacts_with,
    mautic_contact,
    writes,
)
from tests.support import wait_until


def deletes(sim) -> int:
    return len(sim.requests_log(method="DELETE"))


def synced_contact(deployment, prefix: str) -> str:
    address = f"{prefix}-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, address, "Del")
    sims = deployment.sims
    wait_until(
        lambda: (
            clients_with(sims["invoiceninja"], address)
            and customers_with(sims["erpnext"], address)
            and directus_contacts_with(sims["directus"], address)
        ),
        timeout=60,
    )
    deployment.settle()
    return address


def hub_deleted(address: str) -> bool:
    with session_scope() as s:
        record = s.execute(
            select(Record).where(Record.kind == "contact", Record.match_key == address)
        ).scalar_one()
        return record.deleted_at is not None


def mautic_has(sim, address: str) -> bool:
    return any((lead["fields"].get("email") or "").lower() == address for lead in sim.db["leads"].values())


def assert_no_ping_pong(deployment) -> None:
    before = {name: writes(sim) for name, sim in deployment.sims.items()}
    time.sleep(3)
    deployment.settle()
    assert {name: writes(sim) for name, sim in deployment.sims.items()} == before


def test_a_client_deleted_in_invoice_ninja_is_archived_everywhere_else(deployment):
    address = synced_contact(deployment, "del-in")
    sims = deployment.sims
    before = {name: deletes(sim) for name, sim in sims.items()}
    client = clients_with(sims["invoiceninja"], address)[0]
    url = f"{deployment.servers['invoiceninja'].url}/api/v1/clients/{client['id']}"
    headers = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
    assert requests.delete(url, headers=headers, timeout=10).status_code == 200

    wait_until(
        lambda: (
            customers_with(sims["erpnext"], address)[0].get("disabled")
            and directus_contacts_with(sims["directus"], address)[0].get("archived")
        ),
        timeout=60,
    )
    deployment.settle()
    assert hub_deleted(address)
    assert len(customers_with(sims["erpnext"], address)) == 1
    assert len(directus_contacts_with(sims["directus"], address)) == 1
    assert mautic_has(sims["mautic"], address)  # Mautic keeps the contact and its marketing history
    after = {name: deletes(sim) for name, sim in sims.items()}
    assert after == {**before, "invoiceninja": before["invoiceninja"] + 1}  # only the test's own DELETE
    assert_no_ping_pong(deployment)


def test_an_item_deleted_in_directus_archives_the_client_and_disables_the_customer(deployment):
    address = synced_contact(deployment, "del-dx")
    sims = deployment.sims
    before = {name: deletes(sim) for name, sim in sims.items()}
    item = directus_contacts_with(sims["directus"], address)[0]
    url = f"{deployment.servers['directus'].url}/items/contacts/{item['id']}"
    headers = {"Authorization": "Bearer directus-static-token"}
    assert requests.delete(url, headers=headers, timeout=10).status_code == 204

    wait_until(
        lambda: (
            customers_with(sims["erpnext"], address)[0].get("disabled")
            and clients_with(sims["invoiceninja"], address)[0].get("archived_at")
        ),
        timeout=60,
    )
    deployment.settle()
    assert hub_deleted(address)
    client = clients_with(sims["invoiceninja"], address)[0]
    assert not client["is_deleted"]  # archived, not deleted
    assert mautic_has(sims["mautic"], address)
    after = {name: deletes(sim) for name, sim in sims.items()}
    assert after == {**before, "directus": before["directus"] + 1}
    assert_no_ping_pong(deployment)


def test_a_customer_trashed_in_erpnext_is_archived_from_its_on_trash_payload(deployment):
    address = synced_contact(deployment, "del-erp")
    sims = deployment.sims
    before = {name: deletes(sim) for name, sim in sims.items()}
    customer = customers_with(sims["erpnext"], address)[0]
    url = f"{deployment.servers['erpnext'].url}/api/v2/document/Customer/{customer['name']}"
    headers = {"Authorization": "token erp-api-key:erp-api-secret"}
    assert requests.delete(url, headers=headers, timeout=10).status_code in (200, 202, 204)

    wait_until(
        lambda: (
            clients_with(sims["invoiceninja"], address)[0].get("archived_at")
            and directus_contacts_with(sims["directus"], address)[0].get("archived")
        ),
        timeout=60,
    )
    deployment.settle()
    assert hub_deleted(address)
    assert not clients_with(sims["invoiceninja"], address)[0]["is_deleted"]
    after = {name: deletes(sim) for name, sim in sims.items()}
    assert after == {**before, "erpnext": before["erpnext"] + 1}
    assert_no_ping_pong(deployment)
