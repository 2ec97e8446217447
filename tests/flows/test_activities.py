"""F8 end to end: an email opened in Mautic on a known contact becomes one Directus activity item and one
line in the Invoice Ninja client's notes, however often Mautic reports it."""

from __future__ import annotations

import time
import uuid

import requests
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.flows.test_contacts import clients_with, directus_contacts_with, mautic_contact, writes
from tests.support import dumps, sign, wait_until


def activities_with(sim, ref: str) -> list:
    return [i for i in sim.db.get("activities", {}).values() if i.get("ext_id") == ref]


def note_lines(sim, email: str, ref: str) -> list[str]:
    notes = clients_with(sim, email)[0].get("private_notes") or ""
    return [line for line in notes.splitlines() if line.startswith(f"[{ref}]")]


def open_email(deployment, contact_id: int) -> dict:
    """Send a Mautic email to the contact through the API, then load its tracking pixel."""
    mautic = deployment.sims["mautic"]
    email = mautic.add_email(f"news-{uuid.uuid4().hex[:6]}", subject="Our autumn news")
    base = deployment.servers["mautic"].url
    sent = requests.post(f"{base}/api/emails/{email['id']}/contact/{contact_id}/send",
                         auth=("admin", "sim-mautic-pass"), json={}, timeout=10)  # fmt: skip
    assert sent.status_code == 200 and sent.json()["success"], sent.text
    stat = mautic.sent_emails(email_id=email["id"], contact_id=contact_id)[-1]
    assert requests.get(f"{base}/email/{stat['tracking_hash']}.gif", timeout=10).status_code == 200
    return stat


def test_an_opened_email_is_one_activity_item_and_one_note_line(deployment):
    address = f"open-{uuid.uuid4().hex[:8]}@example.test"
    contact = mautic_contact(deployment, address, "Ola")
    sims = deployment.sims
    wait_until(lambda: clients_with(sims["invoiceninja"], address)
               and directus_contacts_with(sims["directus"], address), timeout=60)  # fmt: skip
    deployment.settle()

    stat = open_email(deployment, contact["id"])
    ref = f"mautic:email_open:{stat['id']}"
    wait_until(
        lambda: activities_with(sims["directus"], ref) and note_lines(sims["invoiceninja"], address, ref)
    )
    deployment.settle()
    item = activities_with(sims["directus"], ref)[0]
    assert item["type"] == "email_open" and item["subject"] == "Our autumn news"
    assert str(item["contact"]) == str(directus_contacts_with(sims["directus"], address)[0]["id"])
    assert len(note_lines(sims["invoiceninja"], address, ref)) == 1

    before = {name: writes(sim) for name, sim in sims.items()}
    delivered = next(d for d in reversed(sims["mautic"].webhook_log) if d["event"] == "mautic.email_on_open")
    body = delivered["body"].encode()
    again = requests.post(f"{deployment.receiver}/webhooks/mautic", data=body, headers=sign("mautic", body),
                          timeout=10)  # fmt: skip
    assert again.status_code == 200 and again.json().get("duplicate"), again.text
    base = deployment.servers["mautic"].url
    requests.get(f"{base}/email/{stat['tracking_hash']}.gif", timeout=10)  # a second open: a new event
    time.sleep(2)
    deployment.settle()
    assert len(activities_with(sims["directus"], ref)) == 1
    assert len(note_lines(sims["invoiceninja"], address, ref)) == 1
    assert {name: writes(sim) for name, sim in sims.items()} == before


def test_an_activity_of_an_unknown_contact_is_ignored(deployment):
    stat_id = 900_000 + uuid.uuid4().int % 100_000
    at = "2026-11-25T10:00:00+00:00"
    lead = {"id": 987654321, "email": "nobody@example.test"}
    stat = {"id": stat_id, "emailAddress": lead["email"], "dateRead": at, "email": {"id": 1}, "lead": lead}
    item = {"stat": stat, "timestamp": at}
    body = dumps({"mautic.email_on_open": [item]})
    answer = requests.post(f"{deployment.receiver}/webhooks/mautic", data=body, headers=sign("mautic", body),
                           timeout=10)  # fmt: skip
    assert answer.status_code == 202, answer.text
    deployment.settle()
    with session_scope() as s:
        status = s.execute(
            select(InboxEvent.status).where(
                InboxEvent.event_id.like(f"mautic.email_on_open:stat:{stat_id}:%")
            )
        ).scalar_one()
    assert status == "done"
    assert activities_with(deployment.sims["directus"], f"mautic:email_open:{stat_id}") == []


def test_a_form_submitted_by_a_known_contact_is_one_activity(deployment):
    address = f"form-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, address, "Fay")
    sims = deployment.sims
    wait_until(lambda: clients_with(sims["invoiceninja"], address), timeout=60)
    deployment.settle()
    form = sims["mautic"].add_form(
        "Contact us", [{"alias": "email", "leadField": "email"}, {"alias": "message"}]
    )
    data = {"mauticform[email]": address, "mauticform[message]": "Call me", "mauticform[formId]": form["id"]}
    posted = requests.post(f"{deployment.servers['mautic'].url}/form/submit", data=data, timeout=10)
    assert posted.status_code == 200, posted.text
    submission = max(sims["mautic"].db["submissions"].values(), key=lambda s: s["id"])
    ref = f"mautic:form_submit:{submission['id']}"
    wait_until(
        lambda: activities_with(sims["directus"], ref) and note_lines(sims["invoiceninja"], address, ref)
    )
    deployment.settle()
    item = activities_with(sims["directus"], ref)[0]
    assert item["type"] == "form_submit" and item["details"]["results"]["message"] == "Call me"
    assert len(note_lines(sims["invoiceninja"], address, ref)) == 1
