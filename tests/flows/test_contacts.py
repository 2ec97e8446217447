"""F1 and F2 end to end: a signed webhook into the receiver, a real worker, and the simulators' own
records and request logs as the witnesses."""

from __future__ import annotations

import time
import uuid

import requests

from tests.support import wait_until


def clients_with(sim, email: str) -> list:
    return [c for c in sim.db.get("clients", {}).values()
            if any((ct.get("email") or "").lower() == email for ct in c.get("contacts", []))]  # fmt: skip


def customers_with(sim, email: str) -> list:
    return [d for d in sim.db.get("Customer", {}).values() if (d.get("email_id") or "").lower() == email]


def directus_contacts_with(sim, email: str) -> list:
    return [i for i in sim.db.get("contacts", {}).values() if (i.get("email") or "").lower() == email]


def writes(sim) -> int:
    return sum(1 for r in sim.requests_log() if r["method"] in ("POST", "PUT", "PATCH", "DELETE"))


def mautic_contact(deployment, email: str, first: str) -> dict:
    url = deployment.servers["mautic"].url + "/api/contacts/new"
    response = requests.post(url, json={"email": email, "firstname": first, "lastname": "Lee"},
                             auth=("admin", "sim-mautic-pass"), timeout=10)  # fmt: skip
    assert response.status_code in (200, 201), response.text
    return response.json()["contact"]


def test_a_mautic_lead_becomes_one_client_customer_and_directus_item(deployment):
    email = f"lead-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, email, "Ann")
    sims = deployment.sims
    wait_until(lambda: clients_with(sims["invoiceninja"], email) and customers_with(sims["erpnext"], email)
               and directus_contacts_with(sims["directus"], email), timeout=60)  # fmt: skip
    deployment.settle()
    assert len(clients_with(sims["invoiceninja"], email)) == 1
    assert len(customers_with(sims["erpnext"], email)) == 1
    assert len(directus_contacts_with(sims["directus"], email)) == 1


def test_the_echoes_of_our_creates_are_known_from_their_payloads_without_reading_back(deployment):
    """ERPNext's webhook carries the whole document and a Directus create its whole input: when that is
    exactly what we pushed, the echo is recognised as sent, with no GET of the object."""
    email = f"echo-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, email, "Cy")
    sims = deployment.sims
    wait_until(lambda: customers_with(sims["erpnext"], email)
               and directus_contacts_with(sims["directus"], email), timeout=60)  # fmt: skip
    deployment.settle()
    customer = customers_with(sims["erpnext"], email)[0]["name"]
    item = directus_contacts_with(sims["directus"], email)[0]["id"]
    erpnext_events = [
        e
        for e in _inbox("erpnext")
        if customer in (e.payload.get("name"), e.payload.get("doc", {}).get("name"))
    ]
    directus_events = [e for e in _inbox("directus") if str(e.payload.get("key")) == str(item)]
    assert erpnext_events and all(e.status == "done" for e in erpnext_events)  # the echoes did arrive
    assert directus_events and all(e.status == "done" for e in directus_events)
    assert sims["erpnext"].requests_log("GET", path=f"/api/v2/document/Customer/{customer}") == []
    assert sims["directus"].requests_log("GET", path=f"/items/contacts/{item}") == []


def _inbox(source: str) -> list:
    from sqlalchemy import select

    from syncengine.db import session_scope
    from syncengine.models import InboxEvent

    with session_scope() as session:
        return list(session.execute(select(InboxEvent).where(InboxEvent.source == source)).scalars())


def test_an_edit_in_invoice_ninja_reaches_the_others_and_its_echoes_write_nothing(deployment):
    email = f"edit-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, email, "Bo")
    sims = deployment.sims
    wait_until(lambda: clients_with(sims["invoiceninja"], email) and customers_with(sims["erpnext"], email)
               and directus_contacts_with(sims["directus"], email), timeout=60)  # fmt: skip
    deployment.settle()

    client = clients_with(sims["invoiceninja"], email)[0]
    url = f"{deployment.servers['invoiceninja'].url}/api/v1/clients/{client['id']}"
    keep = ("id", "email", "first_name", "last_name")
    body = {"city": "Lyon", "contacts": [{k: c[k] for k in keep} for c in client["contacts"]]}
    headers = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
    response = requests.put(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text

    wait_until(lambda: (customers_with(sims["erpnext"], email)[0].get("city") == "Lyon"
                        or directus_contacts_with(sims["directus"], email)[0].get("city") == "Lyon"),
               timeout=60)  # fmt: skip
    deployment.settle()
    assert directus_contacts_with(sims["directus"], email)[0]["city"] == "Lyon"
    before = {name: writes(sim) for name, sim in sims.items()}
    time.sleep(3)  # any ping-pong would show up as further writes now
    deployment.settle()
    assert {name: writes(sim) for name, sim in sims.items()} == before


def test_two_customers_of_the_same_name_without_email_stay_two_everywhere(deployment):
    """Without an email nothing but our links tells two namesakes apart: the webhook of a client our push
    is creating waits for the push to store its link (so it is no new person), and a namesake's push does
    not take the first one's client, found by name, for its own."""
    name = f"Twin NoMail {uuid.uuid4().hex[:8]}"
    url = f"{deployment.servers['erpnext'].url}/api/v2/document/Customer"
    made = []
    for i in (1, 2):
        body = {"customer_name": name, "mobile_no": f"+3363000000{i}"}
        headers = {"Authorization": "token erp-api-key:erp-api-secret"}
        answer = requests.post(url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        made.append(answer.json()["data"]["name"])
    assert made == [name, f"{name} - 1"]
    sims = deployment.sims

    def named(sim, table: str) -> list:
        return [row for row in sim.db.get(table, {}).values() if row.get("name") == name]

    wait_until(lambda: len(named(sims["invoiceninja"], "clients")) >= 2
               and len(named(sims["directus"], "contacts")) >= 2, timeout=60)  # fmt: skip
    deployment.settle()
    assert len(named(sims["invoiceninja"], "clients")) == 2
    assert len(named(sims["directus"], "contacts")) == 2
    assert len([c for c in sims["erpnext"].db["Customer"].values() if c.get("customer_name") == name]) == 2
    assert _records_named(name) == 2


def _records_named(name: str) -> int:
    from sqlalchemy import func, select

    from syncengine.db import session_scope
    from syncengine.models import Record

    with session_scope() as session:
        return session.execute(
            select(func.count()).where(Record.kind == "contact", Record.data["name"].as_string() == name)
        ).scalar_one()
