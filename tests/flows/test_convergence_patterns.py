"""Issue 15's patterns, each reproduced on purpose: webhooks held back, dropped or arriving in the wrong order
by the webhook proxy (simulators.webhook_proxy) between the simulators and the receiver, and every system
asserted to end on the winner of the conflict rule, with nothing lost and nothing deleted come back."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from celery import Celery

from connectors.adapters import adapter_for
from connectors.erpnext_mapping import CUSTOMER_KEYS
from connectors.normalise import canonical
from simulators.convergence.contacts import Contacts
from simulators.webhook_proxy import WebhookProxy, matching
from syncengine import inbox
from syncengine.db import get_engine
from syncengine.vendors import directus, erpnext
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with, mautic_contact
from tests.flows.test_restores import DIRECTUS_HEADERS, IN_HEADERS, MAUTIC_AUTH, set_archived
from tests.flows.test_sweeps import mautic_contacts_with, run_sweep
from tests.support import wait_until

ERP_AUTH = {"Authorization": "token erp-api-key:erp-api-secret"}


@pytest.fixture(scope="module")
def proxy(deployment) -> Iterator[WebhookProxy]:
    """Every simulator's webhooks go through the proxy for this module's tests, and straight back after."""
    proxy = WebhookProxy(deployment.receiver)
    running = proxy.serve()
    _point(deployment, deployment.receiver, running.url)
    try:
        yield proxy
    finally:
        _point(deployment, running.url, deployment.receiver)
        running.stop()


def _point(deployment: Any, old: str, new: str) -> None:
    for sim in deployment.sims.values():
        with sim.lock:
            for target in sim.webhook_targets:
                target["url"] = target["url"].replace(old, new)
            for op in sim.db.get("directus_operations", {}).values():  # Directus Flows' request operations
                options = op.get("options") or {}
                if isinstance(options.get("url"), str):
                    options["url"] = options["url"].replace(old, new)


def settle(deployment: Any, proxy: WebhookProxy) -> None:
    proxy.flush()
    deployment.settle()
    proxy.flush()
    deployment.settle()


# --- each system's copy of one contact, by email --------------------------------------------------------


def mautic_lead(deployment: Any, address: str) -> dict[str, Any]:
    return mautic_contacts_with(deployment.sims["mautic"], address)[0]


def copies(deployment: Any, address: str) -> dict[str, list[dict[str, Any]]]:
    """Each system's objects with this email, as its API answers them."""
    sims = deployment.sims
    return {
        "invoiceninja": [
            sims["invoiceninja"].out("clients", c) for c in clients_with(sims["invoiceninja"], address)
        ],
        "erpnext": customers_with(sims["erpnext"], address),
        "mautic": [sims["mautic"].contact(lead) for lead in mautic_contacts_with(sims["mautic"], address)],
        "directus": directus_contacts_with(sims["directus"], address),
    }


def fields(deployment: Any, address: str, name: str) -> dict[str, Any]:
    """The canonical value of one field in each system that carries it (as its mapper reads it), or
    "missing". ERPNext's by its key alone: its mapper's stamp needs the site's time zone."""
    found = {}
    for system, objects in copies(deployment, address).items():
        if system == "erpnext" and name not in CUSTOMER_KEYS:
            continue
        if not objects:
            found[system] = "missing"
        elif system == "erpnext":
            found[system] = canonical("contact", (name,), {name: objects[0].get(CUSTOMER_KEYS[name])})[name]
        else:
            found[system] = adapter_for(system, "contact").to_change(objects[0]).fields.get(name)
    return found


def phones(deployment: Any, address: str) -> dict[str, Any]:
    return fields(deployment, address, "phone")


def phone(value: str) -> str:
    return canonical("contact", ("phone",), {"phone": value})["phone"]


def everywhere(value: Any) -> dict[str, Any]:
    return dict.fromkeys(("invoiceninja", "erpnext", "mautic", "directus"), value)


def present(deployment: Any, address: str) -> dict[str, int]:
    sims = deployment.sims
    return {
        "invoiceninja": len(
            [c for c in clients_with(sims["invoiceninja"], address) if not c.get("is_deleted")]
        ),
        "erpnext": len(customers_with(sims["erpnext"], address)),
        "mautic": len(mautic_contacts_with(sims["mautic"], address)),
        "directus": len(directus_contacts_with(sims["directus"], address)),
    }


def synced(deployment: Any, proxy: WebhookProxy, prefix: str) -> str:
    address = f"{prefix}-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, address, "Conv")
    wait_until(lambda: "missing" not in phones(deployment, address).values(), timeout=60)
    settle(deployment, proxy)
    return address


def edit_mautic(deployment: Any, address: str, **fields: Any) -> None:
    lead = mautic_lead(deployment, address)
    url = f"{deployment.servers['mautic'].url}/api/contacts/{lead['id']}/edit"
    response = requests.patch(url, json=fields, auth=MAUTIC_AUTH, timeout=10)
    assert response.status_code == 200, response.text


def edit_directus(deployment: Any, address: str, **fields: Any) -> None:
    item = directus_contacts_with(deployment.sims["directus"], address)[0]
    url = f"{deployment.servers['directus'].url}/items/contacts/{item['id']}"
    response = requests.patch(url, json=fields, headers=DIRECTUS_HEADERS, timeout=10)
    assert response.status_code == 200, response.text


def edit_invoiceninja_phone(deployment: Any, address: str, value: str) -> None:
    """The phone of the client's primary contact, as the Invoice Ninja UI edits it."""
    client = clients_with(deployment.sims["invoiceninja"], address)[0]
    url = f"{deployment.servers['invoiceninja'].url}/api/v1/clients/{client['id']}"
    keep = ("id", "email", "first_name", "last_name")
    contacts = [{k: c[k] for k in keep} for c in client["contacts"]]
    contacts[0]["phone"] = value
    response = requests.put(url, json={"contacts": contacts}, headers=IN_HEADERS, timeout=10)
    assert response.status_code == 200, response.text


def next_second() -> None:
    """Start at the top of a wall-clock second, so edits made at once share one whole-second stamp."""
    time.sleep(1 - time.time() % 1 + 0.01)


# --- pattern 1: a late webhook never wins over a newer edit ----------------------------------------------


def test_a_late_create_webhook_does_not_undo_the_edit_that_followed_it(deployment, proxy):
    # given: a Mautic contact whose create webhook is held back
    address = f"late-create-{uuid.uuid4().hex[:8]}@example.test"
    hold = proxy.hold_next(matching("mautic", "lead_post_save_new"))
    mautic_contact(deployment, address, "Late")
    hold.wait()
    # when: its phone is edited in Mautic, that edit reaches everyone, and the create arrives last
    edit_mautic(deployment, address, phone="+33 1 11 11 11 11")
    wait_until(lambda: phones(deployment, address)["directus"] == phone("+33 1 11 11 11 11"), timeout=60)
    settle(deployment, proxy)
    proxy.release(hold)
    settle(deployment, proxy)
    # then: every system keeps the newer phone
    assert phones(deployment, address) == everywhere(phone("+33 1 11 11 11 11"))


def test_a_late_edit_loses_to_a_newer_one_elsewhere_and_its_source_is_told(deployment, proxy):
    address = synced(deployment, proxy, "late-edit")
    # given: an edit A in Mautic whose webhook is late, and 1.5 s later an edit B in Invoice Ninja
    hold = proxy.hold_next(matching("mautic", "lead_post_save_update"))
    edit_mautic(deployment, address, phone="+33 2 22 22 22 01")
    hold.wait()
    time.sleep(1.5)
    edit_invoiceninja_phone(deployment, address, "+33 2 22 22 22 02")
    settle(deployment, proxy)
    # when: A's webhook arrives last
    proxy.release(hold)
    settle(deployment, proxy)
    # then: B, the newer, everywhere, Mautic included
    assert phones(deployment, address) == everywhere(phone("+33 2 22 22 22 02"))


def test_a_late_directus_edit_read_back_after_a_later_one_is_dated_by_its_own_revision(deployment, proxy):
    """Seen in bench/convergence.py: a Directus item read back carries the stamp of its newest write, here
    an edit of the city made after a Mautic edit of the phone; dated so, the older Directus phone beat the
    newer Mautic one everywhere. Its revision dates the phone by the write that set it."""
    address = synced(deployment, proxy, "late-revision")
    # given: Directus phone D, then Mautic phone M 1.5 s later, then Directus city C: every webhook late
    phone_held = proxy.hold_next(matching("directus", "contacts.items.update"))
    edit_directus(deployment, address, phone="+33 6 66 66 66 01")
    phone_held.wait()
    time.sleep(1.5)
    mautic_held = proxy.hold_next(matching("mautic", "lead_post_save_update"))
    edit_mautic(deployment, address, phone="+33 6 66 66 66 02")
    mautic_held.wait()
    time.sleep(1.5)
    city_held = proxy.hold_next(matching("directus", "contacts.items.update"))
    edit_directus(deployment, address, city="Brest")
    city_held.wait()
    # when: they arrive in that order
    for hold in (phone_held, city_held, mautic_held):
        proxy.release(hold)
        settle(deployment, proxy)
    # then: M, the newest phone, and C everywhere
    assert phones(deployment, address) == everywhere(phone("+33 6 66 66 66 02"))
    cities = fields(deployment, address, "city")
    assert set(cities.values()) == {"Brest"}, cities


def test_a_late_erpnext_edit_read_back_after_a_later_one_is_dated_by_the_document_it_sent(deployment, proxy):
    """The same with ERPNext, whose webhooks are always read back: the document the webhook carries (our
    template sends it whole, with `modified`) dates the groups that still hold its values."""
    address = synced(deployment, proxy, "late-erpnext")
    users = Contacts(deployment.sims, {name: server.url for name, server in deployment.servers.items()})
    # given: ERPNext phone E, then Invoice Ninja phone I 1.5 s later, then ERPNext VAT: every webhook late
    phone_held = proxy.hold_next(matching("erpnext", "on_update"))
    users.edit("erpnext", address, "phone", "+33 7 77 77 77 01")
    phone_held.wait()
    time.sleep(1.5)
    client_held = proxy.hold_next(matching("invoiceninja", "update_client"))
    users.edit("invoiceninja", address, "phone", "+33 7 77 77 77 02")
    client_held.wait()
    time.sleep(1.5)
    vat_held = proxy.hold_next(matching("erpnext", "on_update"))
    users.edit("erpnext", address, "vat", "FR77777777701")
    vat_held.wait()
    # when: they arrive in that order
    for hold in (phone_held, vat_held, client_held):
        proxy.release(hold)
        settle(deployment, proxy)
    # then: I, the newest phone, and the VAT everywhere
    assert phones(deployment, address) == everywhere(phone("+33 7 77 77 77 02"))
    vats = {system: value for system, value in fields(deployment, address, "vat_number").items()
            if system != "mautic"}  # fmt: skip
    assert set(vats.values()) == {"FR77777777701"}, vats


def test_an_erpnext_edit_whose_webhook_was_lost_is_dated_by_its_version(deployment, proxy):
    """ERPNext's next save carries the phone of an edit whose webhook was lost, stamped with that save's
    `modified`: the Customer's Version log dates the phone by the save that set it."""
    address = synced(deployment, proxy, "lost-erpnext")
    users = Contacts(deployment.sims, {name: server.url for name, server in deployment.servers.items()})
    # given: ERPNext phone E (webhook lost), Invoice Ninja phone I 1.5 s later (webhook late), then ERPNext
    # VAT, whose webhook brings the ERPNext document, phone E and all
    proxy.drop_next(matching("erpnext", "on_update"))
    users.edit("erpnext", address, "phone", "+33 8 88 88 88 01")
    time.sleep(1.5)
    client_held = proxy.hold_next(matching("invoiceninja", "update_client"))
    users.edit("invoiceninja", address, "phone", "+33 8 88 88 88 02")
    client_held.wait()
    time.sleep(1.5)
    users.edit("erpnext", address, "vat", "FR88888888801")
    settle(deployment, proxy)
    # when: I arrives last
    proxy.release(client_held)
    settle(deployment, proxy)
    # then: I, the newest phone, everywhere
    assert phones(deployment, address) == everywhere(phone("+33 8 88 88 88 02"))


def test_a_mautic_edit_whose_webhook_was_lost_is_dated_by_its_audited_save(deployment, proxy):
    """Mautic's next payload carries the phone of an edit whose webhook was lost, stamped with that save's
    dateModified: the audit log dates the phone by the save that set it (seen in bench/convergence.py)."""
    address = synced(deployment, proxy, "lost-mautic")
    # given: Mautic phone M (webhook lost), Invoice Ninja phone I 1.5 s later (webhook late), then a Mautic
    # city edit, whose webhook brings the whole contact, phone M and all
    proxy.drop_next(matching("mautic", "lead_post_save_update"))
    edit_mautic(deployment, address, phone="+33 9 99 99 99 01")
    time.sleep(1.5)
    client_held = proxy.hold_next(matching("invoiceninja", "update_client"))
    edit_invoiceninja_phone(deployment, address, "+33 9 99 99 99 02")
    client_held.wait()
    time.sleep(1.5)
    edit_mautic(deployment, address, city="Quimper")
    settle(deployment, proxy)
    # when: I arrives last
    proxy.release(client_held)
    settle(deployment, proxy)
    # then: I, the newest phone, everywhere
    assert phones(deployment, address) == everywhere(phone("+33 9 99 99 99 02"))


# --- pattern 2: a push never overwrites a newer edit whose webhook was lost ------------------------------


def test_a_push_merges_the_newer_edit_it_would_overwrite_first(deployment, proxy):
    address = synced(deployment, proxy, "overwrite")
    # given: a Directus edit D whose webhook is late, and 1.5 s later a Mautic edit M whose webhook is lost
    hold = proxy.hold_next(matching("directus", "contacts.items.update"))
    edit_directus(deployment, address, phone="+33 3 33 33 33 08")
    hold.wait()
    time.sleep(1.5)
    proxy.drop_next(matching("mautic", "lead_post_save_update"))
    edit_mautic(deployment, address, phone="+33 3 33 33 33 07")
    # when: D arrives, and is pushed to Mautic
    proxy.release(hold)
    settle(deployment, proxy)
    # then: the push read Mautic first and took M, the newer: M everywhere, without any sweep
    assert phones(deployment, address) == everywhere(phone("+33 3 33 33 33 07"))


# --- pattern 3: a deleted contact never comes back -------------------------------------------------------


def test_a_create_arriving_after_its_delete_is_dropped_and_the_contact_stays_deleted(deployment, proxy):
    # given: a Mautic contact created (webhook held back) and deleted (that webhook arrives first)
    address = f"revived-{uuid.uuid4().hex[:8]}@example.test"
    hold = proxy.hold_next(matching("mautic", "lead_post_save_new"))
    lead = mautic_contact(deployment, address, "Gone")
    hold.wait()
    url = f"{deployment.servers['mautic'].url}/api/contacts/{lead['id']}/delete"
    assert requests.delete(url, auth=MAUTIC_AUTH, timeout=10).status_code == 200
    settle(deployment, proxy)
    # when: the create arrives late, and then the sweeps run
    proxy.release(hold)
    settle(deployment, proxy)
    run_sweep(deployment, "mautic")
    settle(deployment, proxy)
    # then: the person exists nowhere
    assert present(deployment, address) == everywhere(0)


# --- pattern 4: same-second edits end on one winner everywhere --------------------------------------------


def test_edits_in_one_whole_second_in_two_systems_end_on_the_tie_break_winner(deployment, proxy):
    address = synced(deployment, proxy, "same-second")
    # given: Mautic and Invoice Ninja (both stamp whole seconds) edited in one second, Mautic's webhook late
    hold = proxy.hold_next(matching("mautic", "lead_post_save_update"))
    next_second()
    edit_mautic(deployment, address, phone="+33 4 44 44 44 07")
    edit_invoiceninja_phone(deployment, address, "+33 4 44 44 44 09")
    hold.wait()
    settle(deployment, proxy)
    proxy.release(hold)
    settle(deployment, proxy)
    # then: one winner everywhere: a tie goes to the system whose name sorts last (records._wins)
    assert phones(deployment, address) == everywhere(phone("+33 4 44 44 44 07"))


# --- Directus: a value set back is a change, not a duplicate ----------------------------------------------


def test_a_directus_value_set_back_after_another_systems_edit_is_not_a_duplicate(deployment, proxy):
    address = synced(deployment, proxy, "aba")
    edit_directus(deployment, address, phone="+33 5 55 55 55 01")
    wait_until(lambda: phones(deployment, address) == everywhere(phone("+33 5 55 55 55 01")), timeout=60)
    settle(deployment, proxy)
    next_second()  # Invoice Ninja's whole-second stamp must not fall before Directus's edit
    edit_invoiceninja_phone(deployment, address, "+33 5 55 55 55 02")
    wait_until(lambda: phones(deployment, address) == everywhere(phone("+33 5 55 55 55 02")), timeout=60)
    settle(deployment, proxy)
    # when: Directus is set back to A, with the very request (and so the very Flow body) of the first time
    edit_directus(deployment, address, phone="+33 5 55 55 55 01")
    settle(deployment, proxy)
    assert phones(deployment, address) == everywhere(phone("+33 5 55 55 55 01"))


# --- field groups: a restore never nulls the owner's group ------------------------------------------------


def test_a_restore_in_directus_keeps_the_consent_directus_holds(deployment, proxy):
    address = synced(deployment, proxy, "consent")
    item = directus_contacts_with(deployment.sims["directus"], address)[0]
    # given: consent set in Directus, where Mautic (its owner) has never said anything about it
    edit_directus(deployment, address, marketing_consent=True)
    settle(deployment, proxy)
    # when: the item is archived and restored in Directus
    set_archived(deployment, "directus", address, True)
    wait_until(lambda: bool(clients_with(deployment.sims["invoiceninja"], address)[0].get("archived_at")),
               timeout=60)  # fmt: skip
    settle(deployment, proxy)
    set_archived(deployment, "directus", address, False)
    wait_until(lambda: not clients_with(deployment.sims["invoiceninja"], address)[0].get("archived_at"),
               timeout=60)  # fmt: skip
    settle(deployment, proxy)
    # then: the restore's writes to Directus left the consent alone
    assert directus_contacts_with(deployment.sims["directus"], address)[0]["id"] == item["id"]
    assert directus_contacts_with(deployment.sims["directus"], address)[0].get("marketing_consent") is True
    writes = [r["json"] for r in deployment.sims["directus"].requests_log(method="PATCH")
              if r["path"].endswith(f"/contacts/{item['id']}") and isinstance(r["json"], dict)]  # fmt: skip
    assert writes and not any(
        "marketing_consent" in body and body["marketing_consent"] is None for body in writes
    )


# --- conditional pushes of invoices ----------------------------------------------------------------------


def test_an_invoice_push_merges_the_directus_edit_it_would_overwrite_first(deployment, proxy):
    """Invoices are written in three systems: a push reads its target first, as a contact's does."""
    from tests.flows.test_invoices import DUE, ISSUED, directus_invoices, invoice_ninja

    sims = deployment.sims
    address = synced(deployment, proxy, "inv-cond")
    client = clients_with(sims["invoiceninja"], address)[0]
    line = {"product_key": "COND-1", "notes": "Widget", "cost": 10, "quantity": 1, "type_id": "1"}
    invoice = invoice_ninja(deployment, "POST", "invoices", {
        "client_id": client["id"], "date": ISSUED, "due_date": DUE, "line_items": [line],
        "public_notes": "as issued",
    })  # fmt: skip
    number = invoice["number"]
    wait_until(lambda: directus_invoices(sims["directus"], number), timeout=60)
    settle(deployment, proxy)
    [item] = directus_invoices(sims["directus"], number)
    # given: the notes edited in Directus, whose webhook is lost
    proxy.drop_next(matching("directus", "invoices.items.update"))
    url = f"{deployment.servers['directus'].url}/items/invoices/{item['id']}"
    response = requests.patch(url, json={"notes": "agreed by phone"}, headers=DIRECTUS_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    time.sleep(1.5)
    # when: the lines are edited in Invoice Ninja, and pushed to Directus
    invoice_ninja(deployment, "PUT", f"invoices/{invoice['id']}", {"line_items": [{**line, "quantity": 3}]})
    wait_until(lambda: any(float(line.get("quantity") or 0) == 3
                           for line in directus_invoices(sims["directus"], number)[0].get("lines") or []),
               timeout=60)  # fmt: skip
    settle(deployment, proxy)
    # then: the push read Directus first: its notes survive there and reach Invoice Ninja, beside new lines
    assert directus_invoices(sims["directus"], number)[0]["notes"] == "agreed by phone"
    assert invoice_ninja(deployment, "GET", f"invoices/{invoice['id']}")["public_notes"] == "agreed by phone"


def test_an_erpnext_customer_listed_before_a_later_edit_is_read_back_not_taken_as_listed(deployment, proxy):
    """A sweep's event carries a Customer as the listing read it, and is merged without a read-back. One
    handled after a later edit of that Customer is out of order: it is read back, and the later edit stays."""
    address = synced(deployment, proxy, "listed-erpnext")
    users = Contacts(deployment.sims, {name: server.url for name, server in deployment.servers.items()})
    erp = deployment.sims["erpnext"]
    # given: ERPNext phone L, its webhook lost, as a sweep lists it; then phone N, its webhook delivered
    proxy.drop_next(matching("erpnext", "on_update"))
    users.edit("erpnext", address, "phone", "+33 6 12 12 12 01")
    settle(deployment, proxy)
    name = customers_with(erp, address)[0]["name"]
    answer = requests.get(
        f"{deployment.servers['erpnext'].url}/api/resource/Customer", timeout=10, headers=ERP_AUTH,
        params={"fields": '["*"]', "filters": json.dumps([["name", "=", name]])},
    )  # fmt: skip
    stale = erpnext.swept("Customer", answer.json()["data"][0])
    assert erpnext.listed(stale.payload, "Customer")  # carried whole
    users.edit("erpnext", address, "phone", "+33 6 12 12 12 02")
    settle(deployment, proxy)
    reads = len(customer_reads(erp, name))
    # when: the sweep's event of phone L is handled after it
    handle_late(deployment, proxy, stale)
    # then: read back rather than taken as listed; N everywhere
    assert len(customer_reads(erp, name)) > reads
    assert phones(deployment, address) == everywhere(phone("+33 6 12 12 12 02"))


def test_a_directus_contact_whose_webhook_was_lost_arrives_by_the_sweep_as_listed(deployment, proxy):
    """A sweep's event carries a Directus item as the listing read it (fields `*`, as reading it alone
    answers), and it is merged as listed: the contact reaches every system with no read-back of the item."""
    address = f"listed-directus-{uuid.uuid4().hex[:8]}@example.test"
    dx = deployment.sims["directus"]
    proxy.drop_next(matching("directus", "contacts.items.create"))
    url = f"{deployment.servers['directus'].url}/items/contacts"
    body = {"email": address, "name": "Listed Ltd", "phone": "+33 6 12 12 12 03"}
    response = requests.post(url, json=body, headers=DIRECTUS_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    key = response.json()["data"]["id"]
    settle(deployment, proxy)
    assert present(deployment, address) == {"invoiceninja": 0, "erpnext": 0, "mautic": 0, "directus": 1}
    reads = len(item_reads(dx, key))
    run_sweep(deployment, "directus", "contact", "--since", "2000-01-01T00:00:00+00:00")
    wait_until(lambda: present(deployment, address) == everywhere(1), timeout=60)
    settle(deployment, proxy)
    assert phones(deployment, address) == everywhere(phone("+33 6 12 12 12 03"))
    assert len(item_reads(dx, key)) == reads  # merged as listed


def test_a_directus_contact_listed_before_a_later_edit_is_read_back_not_taken_as_listed(deployment, proxy):
    """One handled after a later edit of that item is out of order: it is read back, and the edit stays."""
    address = synced(deployment, proxy, "listed-directus")
    dx = deployment.sims["directus"]
    # given: phone L in Directus, its webhook lost, as a sweep lists it; then phone N, its webhook delivered
    proxy.drop_next(matching("directus", "contacts.items.update"))
    edit_directus(deployment, address, phone="+33 6 12 12 12 04")
    settle(deployment, proxy)
    key = directus_contacts_with(dx, address)[0]["id"]
    answer = requests.get(f"{deployment.servers['directus'].url}/items/contacts", headers=DIRECTUS_HEADERS,
                          params={"filter[id][_eq]": key}, timeout=10)  # fmt: skip
    stale = directus.swept("contacts", answer.json()["data"][0])
    assert directus.listed(stale.payload, "contacts")  # carried whole
    next_second()
    edit_directus(deployment, address, phone="+33 6 12 12 12 05")
    settle(deployment, proxy)
    reads = len(item_reads(dx, key))
    # when: the sweep's event of phone L is handled after it
    handle_late(deployment, proxy, stale)
    # then: read back rather than taken as listed; N everywhere
    assert len(item_reads(dx, key)) > reads
    assert phones(deployment, address) == everywhere(phone("+33 6 12 12 12 05"))


def handle_late(deployment: Any, proxy: WebhookProxy, event: inbox.NewEvent) -> None:
    """A sweep's event stored and handled now, after the changes that followed its listing."""
    with get_engine().begin() as conn:
        ids = inbox.store(conn, [event])
    assert ids, "the sweep's event was taken for a duplicate"
    with Celery(broker=deployment.env["REDIS_URL"], set_as_current=False) as app:
        app.send_task("tasks.dispatch.process", args=ids, queue="intake")
    settle(deployment, proxy)


def item_reads(dx: Any, key: Any) -> list[dict[str, Any]]:
    """GETs of one Directus contact (not the list)."""
    return dx.requests_log("GET", f"/items/contacts/{key}")


def customer_reads(erp: Any, name: str) -> list[dict[str, Any]]:
    """GETs of one Customer document (not the list)."""
    path = "/api/v2/document/Customer/"
    return [e for e in erp.requests_log("GET", path_prefix=path) if unquote(e["path"][len(path) :]) == name]
