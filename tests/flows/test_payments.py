"""F5 end to end: money lands in the Revolut simulator, its signed webhook reaches the receiver, and the
worker books it once in Invoice Ninja, ERPNext, Directus and Mautic (receipt), however often it is told."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import dumps, sign, wait_until

RECEIPT_EMAIL_ID = 2


def seed_invoice(deployment, amount: float = 250.0) -> dict:
    """A client with a sent invoice in Invoice Ninja, its Customer and submitted Sales Invoice in ERPNext
    (as F1/F4 would have made them) and its Mautic contact; seeded, so no webhooks fire."""
    sims, tag = deployment.sims, uuid.uuid4().hex[:8]
    email, name, number = f"pay-{tag}@example.test", f"Payer {tag} Ltd", f"INV-{tag.upper()}"
    client_id = sims["invoiceninja"].seed({"clients": [{"name": name, "contacts": [{"email": email}]}]})[
        "clients"
    ][0]
    line = {"product_key": "SVC", "notes": "Work", "cost": amount, "quantity": 1, "type_id": "2"}
    invoice_id = sims["invoiceninja"].seed(
        {"invoices": [{"client_id": client_id, "number": number, "line_items": [line], "mark_sent": True}]}
    )["invoices"][0]
    erp = sims["erpnext"]
    erp.seed({"Customer": [{"customer_name": name, "customer_type": "Company"}]})
    if "SVC" not in erp.db["Item"]:
        erp.seed(
            {
                "Item": [
                    {"item_code": "SVC", "item_name": "Work", "item_group": "Services", "stock_uom": "Nos"}
                ]
            }
        )
    sinv = erp.seed(
        {"Sales Invoice": [{"customer": name, "custom_syncengine_id": number, "set_posting_time": 1,
                            "items": [{"item_code": "SVC", "qty": 1, "rate": amount}], "docstatus": 1}]}
    )["Sales Invoice"][0]  # fmt: skip
    mautic = sims["mautic"]
    while len(mautic.db["emails"]) < RECEIPT_EMAIL_ID:
        mautic.add_email(name=f"template {len(mautic.db['emails']) + 1}")
    mautic.seed({"contacts": [{"email": email, "firstname": "Pat", "lastname": tag}]})
    return {"email": email, "name": name, "number": number, "invoice_id": invoice_id, "sinv": sinv}


def in_payments(deployment, tx_id: str) -> list:
    return [p for p in deployment.sims["invoiceninja"].db["payments"].values()
            if p.get("transaction_reference") == tx_id]  # fmt: skip


def payment_entries(deployment, tx_id: str) -> list:
    return [d for d in deployment.sims["erpnext"].db["Payment Entry"].values()
            if d.get("reference_no") == tx_id and d.get("docstatus") == 1]  # fmt: skip


def directus_rows(deployment, collection: str, tx_id: str) -> list:
    rows = deployment.sims["directus"].db.get(collection, {}).values()
    return [r for r in rows if str(r.get("ext_id") or "").startswith(f"payment:{tx_id}")]


def receipts(deployment, email: str) -> list:
    sent = deployment.sims["mautic"].sent_emails(email_id=RECEIPT_EMAIL_ID)
    return [s for s in sent if s["email_address"] == email]


def counts(deployment, tx_id: str, email: str) -> tuple[int, int, int, int]:
    return (len(in_payments(deployment, tx_id)), len(payment_entries(deployment, tx_id)),
            len(directus_rows(deployment, "payments", tx_id)), len(receipts(deployment, email)))  # fmt: skip


def deliver(deployment, payload: dict) -> int:
    body = dumps(payload)
    response = requests.post(f"{deployment.receiver}/webhooks/revolut", data=body,
                             headers=sign("revolut", body), timeout=10)  # fmt: skip
    return response.status_code


def test_an_incoming_payment_is_booked_once_everywhere_however_often_it_is_announced(deployment):
    seeded = seed_invoice(deployment, 250.0)
    tx = deployment.sims["revolut"].receive_payment(
        250.0, reference=f"Invoice {seeded['number'].lower().replace('-', ' ')}", payer=seeded["name"]
    )
    wait_until(lambda: counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1), timeout=90)
    deployment.settle()

    invoice = deployment.sims["invoiceninja"].db["invoices"][seeded["invoice_id"]]
    assert invoice["balance"] == 0 and invoice["status_id"] == "4"  # paid
    (payment,) = in_payments(deployment, tx["id"])
    assert payment["invoices"][0]["invoice_id"] == seeded["invoice_id"] and payment["idempotency_key"]
    assert deployment.sims["erpnext"].db["Sales Invoice"][seeded["sinv"]]["status"] == "Paid"

    created = {"event": "TransactionCreated", "timestamp": "2026-01-01T00:00:00Z", "data": tx}
    changed = {"event": "TransactionStateChanged", "timestamp": "2026-01-01T00:00:01Z",
               "data": {"id": tx["id"], "old_state": "pending", "new_state": "completed"}}  # fmt: skip
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda p: deliver(deployment, p), [created] * 5 + [changed] * 3))
    statuses += [deliver(deployment, created) for _ in range(3)]
    assert all(s in (200, 202) for s in statuses), statuses
    deployment.settle()
    assert counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1)
    assert directus_rows(deployment, "reviews", tx["id"]) == []


def test_a_partial_payment_leaves_the_invoice_partly_paid(deployment):
    seeded = seed_invoice(deployment, 300.0)
    tx = deployment.sims["revolut"].receive_payment(100.0, reference=seeded["number"], payer="Someone")
    wait_until(lambda: counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1), timeout=90)
    deployment.settle()
    invoice = deployment.sims["invoiceninja"].db["invoices"][seeded["invoice_id"]]
    assert invoice["balance"] == 200.0 and invoice["status_id"] == "3"  # partial
    assert deployment.sims["erpnext"].db["Sales Invoice"][seeded["sinv"]]["status"] == "Partly Paid"


def test_an_over_payment_books_the_balance_and_asks_about_the_surplus(deployment):
    seeded = seed_invoice(deployment, 80.0)
    tx = deployment.sims["revolut"].receive_payment(100.0, reference=seeded["number"], payer="Someone")
    wait_until(lambda: directus_rows(deployment, "reviews", tx["id"]), timeout=90)
    deployment.settle()
    assert counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1)
    assert float(in_payments(deployment, tx["id"])[0]["amount"]) == 80.0
    (review,) = directus_rows(deployment, "reviews", tx["id"])
    assert "over-payment of 20.00" in review["details"]


def test_a_payment_matching_no_invoice_becomes_one_review_and_nothing_is_booked(deployment):
    tx = deployment.sims["revolut"].receive_payment(
        987.65, reference=f"mystery {uuid.uuid4().hex[:6]}", payer="Nobody Known"
    )
    wait_until(lambda: directus_rows(deployment, "reviews", tx["id"]), timeout=90)
    deployment.settle()
    (review,) = directus_rows(deployment, "reviews", tx["id"])
    assert "no matching open invoice" in review["details"]
    assert counts(deployment, tx["id"], "nobody") == (0, 0, 0, 0)


def test_a_pending_payment_is_booked_when_its_state_changes_to_completed(deployment):
    seeded = seed_invoice(deployment, 60.0)
    sim = deployment.sims["revolut"]
    tx = sim.receive_payment(60.0, reference=seeded["number"], payer=seeded["name"], state="pending")
    deployment.settle()
    assert counts(deployment, tx["id"], seeded["email"]) == (0, 0, 0, 0)  # not completed: nothing booked
    with sim.lock:
        sim._set_state(sim.db["transactions"][tx["id"]], "completed")  # what POST /sandbox/.../complete does
    wait_until(lambda: counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1), timeout=90)
    deployment.settle()
    assert counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1)
