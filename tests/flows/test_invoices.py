"""F4 end to end: an invoice created and sent in Invoice Ninja becomes one submitted Sales Invoice in ERPNext
and one Directus item, ERPNext's totals come back, and Mautic sends the invoice email exactly once, however
often the sent event arrives."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta

import requests

from tests.flows.test_contacts import clients_with, customers_with, mautic_contact, writes
from tests.support import wait_until

# Dated from today: a due date in the past would make the invoice overdue, not sent.
ISSUED = date.today().isoformat()
DUE = (date.today() + timedelta(days=30)).isoformat()
IN_HEADERS = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
INVOICE_EMAIL_ID = 1  # MAUTIC_INVOICE_EMAIL_ID's default


def invoice_ninja(deployment, method: str, path: str, body: dict | None = None) -> dict:
    url = f"{deployment.servers['invoiceninja'].url}/api/v1/{path}"
    response = requests.request(method, url, json=body, headers=IN_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def sales_invoices(sim, number: str) -> list:
    return [d for d in sim.db.get("Sales Invoice", {}).values() if d.get("custom_syncengine_id") == number]


def directus_invoices(sim, number: str) -> list:
    return [i for i in sim.db.get("invoices", {}).values() if i.get("number") == number]


def invoice_emails(sim, number: str) -> list:
    sent = sim.sent_emails(email_id=INVOICE_EMAIL_ID)
    return [s for s in sent if (s.get("tokens") or {}).get("invoice_number") == number]


def test_a_sent_invoice_reaches_erpnext_and_directus_and_is_emailed_once(deployment):
    sims = deployment.sims
    if INVOICE_EMAIL_ID not in sims["mautic"].db["emails"]:
        sims["mautic"].add_email("Invoice", subject="Your invoice {invoice_number}")
    email, sku = f"inv-{uuid.uuid4().hex[:8]}@example.test", f"SKU-{uuid.uuid4().hex[:6].upper()}"
    lead = mautic_contact(deployment, email, "Ivy")
    wait_until(lambda: clients_with(sims["invoiceninja"], email) and customers_with(sims["erpnext"], email),
               timeout=60)  # fmt: skip
    invoice_ninja(deployment, "POST", "products", {"product_key": sku, "notes": "Widget", "price": 100})
    wait_until(lambda: sku in sims["erpnext"].db.get("Item", {}), timeout=60)
    deployment.settle()

    client = clients_with(sims["invoiceninja"], email)[0]
    line = {"product_key": sku, "notes": "Widget", "cost": 100, "quantity": 2, "tax_name1": "VAT",
            "tax_rate1": 20, "type_id": "1"}  # fmt: skip
    invoice = invoice_ninja(deployment, "POST", "invoices", {
        "client_id": client["id"], "date": ISSUED, "due_date": DUE, "line_items": [line],
    })  # fmt: skip
    number = invoice["number"]
    invoice_ninja(deployment, "POST", "invoices/bulk", {"action": "mark_sent", "ids": [invoice["id"]]})

    wait_until(lambda: sales_invoices(sims["erpnext"], number) and invoice_emails(sims["mautic"], number)
               and any(i.get("total") == 240 for i in directus_invoices(sims["directus"], number)),
               timeout=90)  # fmt: skip
    deployment.settle()

    [doc] = sales_invoices(sims["erpnext"], number)
    assert doc["docstatus"] == 1
    assert doc["customer"] == customers_with(sims["erpnext"], email)[0]["name"]
    assert [(r["item_code"], r["qty"], r["rate"]) for r in doc["items"]] == [(sku, 2.0, 100.0)]
    assert (doc["net_total"], doc["total_taxes_and_charges"], doc["grand_total"]) == (200.0, 40.0, 240.0)
    assert (doc["posting_date"], doc["due_date"]) == (ISSUED, DUE)
    [item] = directus_invoices(sims["directus"], number)
    assert (item["status"], float(item["balance"]), item["due_date"]) == ("sent", 240.0, DUE)
    [sent] = invoice_emails(sims["mautic"], number)
    assert sent["lead_id"] == lead["id"]
    assert sent["tokens"]["invoice_due_date"] == DUE

    # The same sent_invoice webhook again (Invoice Ninja's secret header is static), then a newer one.
    sent_events = [d for d in sims["invoiceninja"].webhook_log if d["event"] == "sent_invoice"]
    delivery = next(d for d in reversed(sent_events) if json.loads(d["body"])["id"] == invoice["id"])
    url = f"{deployment.receiver}/webhooks/invoiceninja/sent_invoice"
    again = requests.post(url, data=delivery["body"], headers=delivery["headers"], timeout=10)
    assert again.status_code in (200, 202), again.text
    newer = {**json.loads(delivery["body"]), "updated_at": json.loads(delivery["body"])["updated_at"] + 1}
    later = requests.post(url, json=newer, headers=delivery["headers"], timeout=10)
    assert later.status_code == 202, later.text
    deployment.settle()
    assert len(invoice_emails(sims["mautic"], number)) == 1
    assert len(sales_invoices(sims["erpnext"], number)) == 1

    before = {name: writes(sim) for name, sim in sims.items()}
    time.sleep(3)  # any ping-pong would show up as further writes now
    deployment.settle()
    assert {name: writes(sim) for name, sim in sims.items()} == before
