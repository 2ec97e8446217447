"""F9 reversed end to end: an object archived and then restored in one system brings the hub record back
and is un-archived once in every other system (counted from the simulators' request logs), by webhook or,
when the webhook is lost, by sweep; the echoes of those writes fan out nothing; an edit of a copy that is
still archived never resurrects the record; a copy hard-deleted elsewhere is created again, once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import Link, Record
from tasks import reconcile
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with, writes
from tests.flows.test_deletes import assert_no_ping_pong, hub_deleted, synced_contact
from tests.flows.test_sweeps import mautic_contacts_with, run_sweep
from tests.support import wait_until

IN_HEADERS = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
ERP_HEADERS = {"Authorization": "token erp-api-key:erp-api-secret"}
DIRECTUS_HEADERS = {"Authorization": "Bearer directus-static-token"}
MAUTIC_AUTH = ("admin", "sim-mautic-pass")
ARCHIVING = ("invoiceninja", "erpnext", "directus")  # the systems that can archive a contact


def _call(deployment: Any, system: str, method: str, path: str, body: dict[str, Any]) -> None:
    headers = {"invoiceninja": IN_HEADERS, "erpnext": ERP_HEADERS, "directus": DIRECTUS_HEADERS}[system]
    url = deployment.servers[system].url + path
    response = requests.request(method, url, json=body, headers=headers, timeout=10)
    assert response.status_code in (200, 201, 202, 204), response.text


def set_archived(deployment: Any, system: str, address: str, archived: bool) -> None:
    """Archive or un-archive the contact's copy by hand, the way each vendor's UI does it."""
    sims = deployment.sims
    if system == "invoiceninja":
        client = clients_with(sims[system], address)[0]
        # Invoice Ninja stamps whole seconds and the change key is the stamp and the content: a client
        # created, archived and restored within one second is its create again, byte for byte.
        wait_until(lambda: time.time() >= client["updated_at"] + 1, timeout=5)
        body = {"action": "archive" if archived else "restore", "ids": [client["id"]]}
        _call(deployment, system, "POST", "/api/v1/clients/bulk", body)
    elif system == "erpnext":
        name = customers_with(sims[system], address)[0]["name"]
        _call(deployment, system, "PUT", f"/api/v2/document/Customer/{name}", {"disabled": int(archived)})
    else:
        key = directus_contacts_with(sims[system], address)[0]["id"]
        _call(deployment, system, "PATCH", f"/items/contacts/{key}", {"archived": archived})


def archived_in(deployment: Any, address: str, systems: Iterable[str] = ARCHIVING) -> dict[str, bool]:
    """Whether each of `systems` holds the contact archived (leave out one where it was deleted)."""
    sims = deployment.sims
    checks = {
        "invoiceninja": lambda: clients_with(sims["invoiceninja"], address)[0].get("archived_at"),
        "erpnext": lambda: customers_with(sims["erpnext"], address)[0].get("disabled"),
        "directus": lambda: directus_contacts_with(sims["directus"], address)[0].get("archived"),
    }
    return {system: bool(checks[system]()) for system in systems}


def unarchive_writes(deployment: Any, address: str) -> dict[str, int]:
    """Requests that un-archive this contact's copy: Invoice Ninja's bulk restore, ERPNext `disabled: 0`,
    Directus `archived: false`."""
    sims = deployment.sims
    client = clients_with(sims["invoiceninja"], address)[0]["id"]
    customer = customers_with(sims["erpnext"], address)[0]["name"]
    items = {str(item["id"]) for item in directus_contacts_with(sims["directus"], address)}
    return {
        "invoiceninja": sum(
            1 for r in sims["invoiceninja"].requests_log(method="POST", path="/api/v1/clients/bulk")
            if (r["json"] or {}).get("action") == "restore" and client in (r["json"] or {}).get("ids", [])
        ),
        "erpnext": sum(
            1 for r in sims["erpnext"].requests_log()
            if r["method"] in ("PUT", "PATCH") and r["path"].endswith(f"/Customer/{customer}")
            and (r["json"] or {}).get("disabled") == 0
        ),
        "directus": sum(
            1 for r in sims["directus"].requests_log(method="PATCH")
            if r["path"].rsplit("/", 1)[-1] in items and (r["json"] or {}).get("archived") is False
        ),
    }  # fmt: skip


def linked_id(address: str, system: str) -> str:
    """The object of `system` the hub links the contact to."""
    with session_scope() as s:
        return s.execute(
            select(Link.external_id)
            .join(Record, Record.id == Link.record_id)
            .where(Record.match_key == address, Link.system == system)
        ).scalar_one()


def archived_by(deployment: Any, system: str, prefix: str) -> str:
    """A contact synced everywhere, then archived by hand in `system` and so everywhere else."""
    address = synced_contact(deployment, prefix)
    set_archived(deployment, system, address, True)
    wait_until(lambda: all(archived_in(deployment, address).values()), timeout=60)
    deployment.settle()
    assert hub_deleted(address)
    return address


def all_writes(deployment: Any) -> dict[str, int]:
    return {name: writes(sim) for name, sim in deployment.sims.items()}


def assert_restored_everywhere_once(deployment: Any, address: str, before: dict[str, int]) -> None:
    wait_until(lambda: not any(archived_in(deployment, address).values()), timeout=60)
    deployment.settle()
    assert not hub_deleted(address)
    # One un-archive per system: the hand-made one in the source, ours in each other system.
    assert unarchive_writes(deployment, address) == dict.fromkeys(ARCHIVING, 1)
    # And nothing else: no update, no create; Mautic, which cannot archive, is not written to at all.
    assert all_writes(deployment) == {**before, **{s: before[s] + 1 for s in ARCHIVING}}
    sims = deployment.sims
    assert [len(clients_with(sims["invoiceninja"], address)), len(customers_with(sims["erpnext"], address)),
            len(directus_contacts_with(sims["directus"], address))] == [1, 1, 1]  # fmt: skip
    assert_no_ping_pong(deployment)


@pytest.mark.parametrize("system", ARCHIVING)
def test_a_contact_restored_where_it_was_archived_is_restored_everywhere_once(deployment, system):
    address = archived_by(deployment, system, f"rst-{system[:3]}")
    before = all_writes(deployment)

    set_archived(deployment, system, address, False)

    assert_restored_everywhere_once(deployment, address, before)


@pytest.mark.parametrize("system", ARCHIVING)
def test_a_restore_whose_webhook_was_lost_arrives_by_sweep(deployment, system):
    address = archived_by(deployment, system, f"rsw-{system[:3]}")
    before = all_writes(deployment)
    reconcile.set_cursor(system, "contact", datetime.now(UTC))  # the sweep lists this test's change only
    sims = deployment.sims
    sims[system].set_faults(drop_webhooks=1.0)
    try:
        set_archived(deployment, system, address, False)
        sims[system].flush_webhooks(timeout=10)
    finally:
        sims[system].clear_faults()
    deployment.settle()
    assert hub_deleted(address), "the webhook was not lost"
    assert unarchive_writes(deployment, address) == {
        s: int(s == system) for s in ARCHIVING
    }  # nobody else knows yet

    run_sweep(deployment, system, "contact", lookback=0)

    assert_restored_everywhere_once(deployment, address, before)


def _hub_data(address: str) -> dict[str, Any]:
    with session_scope() as s:
        return s.execute(
            select(Record.data).where(Record.kind == "contact", Record.match_key == address)
        ).scalar_one()


def test_an_edit_of_an_archived_copy_does_not_resurrect_the_record(deployment):
    address = archived_by(deployment, "invoiceninja", "rst-edit")
    sims = deployment.sims
    client = clients_with(sims["invoiceninja"], address)[0]
    customer = customers_with(sims["erpnext"], address)[0]["name"]
    lead = next(
        lead for lead in sims["mautic"].db["leads"].values() if lead["fields"].get("email") == address
    )

    # The archived client and the disabled Customer edited in place, and the Mautic contact (Mautic cannot
    # archive, so its copy stayed live): none of them is an un-archive.
    client_url, customer_url = f"/api/v1/clients/{client['id']}", f"/api/v2/document/Customer/{customer}"
    _call(deployment, "invoiceninja", "PUT", client_url, {"vat_number": "GB999"})
    # A Customer's mobile is its primary Contact's, fetched when the Customer is saved (as in ERPNext).
    contact = (
        f"/api/v2/document/Contact/{sims['erpnext'].db['Customer'][customer]['customer_primary_contact']}"
    )
    _call(
        deployment,
        "erpnext",
        "PUT",
        contact,
        {"phone_nos": [{"phone": "+441234567890", "is_primary_mobile_no": 1}]},
    )
    _call(deployment, "erpnext", "PUT", customer_url, {})
    response = requests.patch(
        f"{deployment.servers['mautic'].url}/api/contacts/{lead['id']}/edit",
        json={"city": "Leeds"}, auth=MAUTIC_AUTH, timeout=10,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    wait_until(lambda: _hub_data(address).get("city") == "Leeds", timeout=60)
    wait_until(lambda: _hub_data(address).get("phone") == "+441234567890", timeout=60)
    wait_until(lambda: _hub_data(address).get("vat_number") == "GB999", timeout=60)
    deployment.settle()

    assert hub_deleted(address)
    assert archived_in(deployment, address) == dict.fromkeys(ARCHIVING, True)
    assert unarchive_writes(deployment, address) == dict.fromkeys(ARCHIVING, 0)
    assert_no_ping_pong(deployment)

    # The edits were kept for the day the record comes back: a restore then carries them everywhere.
    set_archived(deployment, "invoiceninja", address, False)
    wait_until(lambda: not any(archived_in(deployment, address).values()), timeout=60)
    deployment.settle()
    assert not hub_deleted(address)
    assert unarchive_writes(deployment, address) == dict.fromkeys(ARCHIVING, 1)
    item = directus_contacts_with(sims["directus"], address)[0]
    assert (item["city"], item["phone"], item["vat_number"]) == ("Leeds", "+441234567890", "GB999")
    assert clients_with(sims["invoiceninja"], address)[0]["contacts"][0]["phone"] == "+441234567890"
    assert_no_ping_pong(deployment)


def test_a_restore_creates_again_once_a_copy_hard_deleted_elsewhere(deployment):
    address = synced_contact(deployment, "rst-gone")
    sims = deployment.sims
    item = directus_contacts_with(sims["directus"], address)[0]
    _call(deployment, "directus", "DELETE", f"/items/contacts/{item['id']}", {})
    kept = ("invoiceninja", "erpnext")  # the copies archived, not deleted
    wait_until(lambda: all(archived_in(deployment, address, kept).values()), timeout=60)
    deployment.settle()
    assert hub_deleted(address) and not directus_contacts_with(sims["directus"], address)
    creates = len(sims["directus"].requests_log(method="POST", path="/items/contacts"))

    set_archived(deployment, "invoiceninja", address, False)  # un-archived in Invoice Ninja

    wait_until(lambda: directus_contacts_with(sims["directus"], address), timeout=60)
    wait_until(lambda: not customers_with(sims["erpnext"], address)[0].get("disabled"), timeout=60)
    deployment.settle()
    assert not hub_deleted(address)
    (again,) = directus_contacts_with(sims["directus"], address)
    assert not again.get("archived") and str(again["id"]) != str(item["id"])
    assert len(sims["directus"].requests_log(method="POST", path="/items/contacts")) == creates + 1
    assert unarchive_writes(deployment, address) == {"invoiceninja": 1, "erpnext": 1, "directus": 0}
    assert linked_id(address, "directus") == str(again["id"])
    assert_no_ping_pong(deployment)


def test_a_client_created_again_instead_of_restored_becomes_the_live_copy(deployment):
    """A client archived in Invoice Ninja, then created anew there with the same email: the new client is
    linked, the record lives again and the other copies are un-archived; nothing is duplicated."""
    address = archived_by(deployment, "invoiceninja", "rst-again")
    sims = deployment.sims
    old = clients_with(sims["invoiceninja"], address)[0]
    before = all_writes(deployment)
    body = {"name": "Again", "contacts": [{"email": address, "first_name": "Again"}]}
    _call(deployment, "invoiceninja", "POST", "/api/v1/clients", body)

    wait_until(lambda: not customers_with(sims["erpnext"], address)[0].get("disabled"), timeout=60)
    wait_until(lambda: not directus_contacts_with(sims["directus"], address)[0].get("archived"), timeout=60)
    deployment.settle()
    assert not hub_deleted(address)
    live = [c for c in clients_with(sims["invoiceninja"], address) if not c.get("archived_at")]
    assert len(live) == 1 and live[0]["id"] != old["id"]  # the old client stays archived
    assert linked_id(address, "invoiceninja") == str(live[0]["id"])
    assert [
        len(customers_with(sims["erpnext"], address)),
        len(directus_contacts_with(sims["directus"], address)),
    ] == [1, 1]
    # The test's own create in Invoice Ninja; in ERPNext and Directus the un-archive and the new name.
    after = all_writes(deployment)
    assert after["invoiceninja"] == before["invoiceninja"] + 1 and after["mautic"] == before["mautic"] + 1
    assert_no_ping_pong(deployment)


def test_a_contact_deleted_in_mautic_is_not_recreated_there_by_a_restore(deployment):
    """A Mautic delete may be an erasure the person asked for: a restore elsewhere leaves it deleted."""
    address = synced_contact(deployment, "rst-erased")
    sims = deployment.sims
    [lead] = mautic_contacts_with(sims["mautic"], address)
    url = f"{deployment.servers['mautic'].url}/api/contacts/{lead['id']}/delete"
    assert requests.delete(url, auth=MAUTIC_AUTH, timeout=10).ok
    wait_until(lambda: clients_with(sims["invoiceninja"], address)[0].get("archived_at"), timeout=60)
    deployment.settle()
    assert hub_deleted(address)
    mautic_writes = writes(sims["mautic"])

    set_archived(deployment, "invoiceninja", address, False)  # un-archived in Invoice Ninja

    wait_until(lambda: not customers_with(sims["erpnext"], address)[0].get("disabled"), timeout=60)
    wait_until(lambda: not directus_contacts_with(sims["directus"], address)[0].get("archived"), timeout=60)
    deployment.settle()
    assert not hub_deleted(address)
    assert writes(sims["mautic"]) == mautic_writes  # no contact created again, nothing sent to Mautic
    assert mautic_contacts_with(sims["mautic"], address) == []
    assert_no_ping_pong(deployment)


def _product(sim: Any, collection: str, key: str, sku: str) -> dict[str, Any]:
    return next((p for p in sim.db.get(collection, {}).values() if p.get(key) == sku), {})


def test_a_product_restored_in_erpnext_is_restored_in_invoice_ninja_and_directus_once(deployment):
    sims, sku = deployment.sims, f"RST-{uuid.uuid4().hex[:6].upper()}"
    body = {"product_key": sku, "notes": "Lamp", "price": 9}
    _call(deployment, "invoiceninja", "POST", "/api/v1/products", body)
    ninja = lambda: _product(sims["invoiceninja"], "products", "product_key", sku)  # noqa: E731
    item = lambda: _product(sims["erpnext"], "Item", "item_code", sku)  # noqa: E731
    entry = lambda: _product(sims["directus"], "products", "sku", sku)  # noqa: E731
    wait_until(lambda: item() and entry(), timeout=60)
    deployment.settle()
    _call(deployment, "erpnext", "PUT", f"/api/v2/document/Item/{sku}", {"disabled": 1})
    wait_until(lambda: ninja()["archived_at"] and entry().get("archived"), timeout=60)
    deployment.settle()
    before = all_writes(deployment)

    _call(deployment, "erpnext", "PUT", f"/api/v2/document/Item/{sku}", {"disabled": 0})

    wait_until(lambda: not ninja()["archived_at"] and not entry().get("archived"), timeout=60)
    deployment.settle()
    assert not item()["disabled"]
    bulk = sims["invoiceninja"].requests_log(method="POST", path="/api/v1/products/bulk")
    restores = [r for r in bulk if r["json"]["action"] == "restore" and ninja()["id"] in r["json"]["ids"]]
    assert len(restores) == 1
    # One write each: the hand-made enable in ERPNext, the bulk restore, the Directus flag; Mautic none.
    assert all_writes(deployment) == {**before, **{s: before[s] + 1 for s in ARCHIVING}}
    assert_no_ping_pong(deployment)
