"""End to end with the real ERPNext v15 (the rest simulated): a deployment made ready by `syncengine setup`
(tests/e2e_peers/conftest.py), its webhooks coming from ERPNext's own worker.

The site is shared and never reset: every name here is unique, and what ERPNext holds is read through its
API. The deployment runs no scheduler, so where a change has no webhook (an invoice turning Paid, a delete
whose webhook was lost) the test runs the sweep as the beat would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from connectors.erpnext import ERPNextConnector
from syncengine.db import session_scope
from syncengine.models import Link, Record
from tests.connectors import helpers
from tests.e2e_peers.conftest import PeerDeployment, launch
from tests.flows.test_contacts import clients_with, directus_contacts_with
from tests.support import wait_until

pytestmark = pytest.mark.peers("erpnext")

IN_HEADERS = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
INVOICE_EMAIL_ID, RECEIPT_EMAIL_ID = 1, 2  # Mautic's defaults (MAUTIC_INVOICE_EMAIL_ID, …_RECEIPT_…)
ISSUED = date.today().isoformat()
DUE = (date.today() + timedelta(days=30)).isoformat()


@pytest.fixture(scope="module")
def erp_env() -> dict[str, str]:
    """The peer's variables, with the company's accounts named as an operator names them."""
    from tests import peers

    env = peers.erpnext()
    abbr = _connector(env).get("Company", env["ERPNEXT_COMPANY"])["abbr"]
    return {**env, "ERPNEXT_TAX_ACCOUNT": f"VAT - {abbr}", "ERPNEXT_BANK_ACCOUNT": f"Bank - {abbr}"}


@pytest.fixture(scope="module")
def deployment(erp_env) -> Iterator[PeerDeployment]:
    extra = {k: v for k, v in erp_env.items() if k in ("ERPNEXT_TAX_ACCOUNT", "ERPNEXT_BANK_ACCOUNT")}
    with launch("erpnext", extra_env=extra) as running:
        mautic = running.sims["mautic"]
        for name in ("Invoice", "Receipt"):  # the two transactional emails, ids 1 and 2
            mautic.add_email(name, subject=f"Your {name.lower()} {{invoice_number}}")
        try:
            yield running
        finally:
            _remove_our_webhooks(erp_env, running.receiver)


def _connector(env: dict[str, str]) -> ERPNextConnector:
    return ERPNextConnector(
        env["ERPNEXT_URL"], api_key=env["ERPNEXT_API_KEY"], api_secret=env["ERPNEXT_API_SECRET"],
        company=env.get("ERPNEXT_COMPANY"), breaker=helpers.breaker("erpnext"),
    )  # fmt: skip


def _remove_our_webhooks(env: dict[str, str], receiver: str) -> None:
    """The shared site would go on posting to this run's receiver, long gone, for every change."""
    erp = _connector(env)
    for hook in list(erp.iter_webhooks()):
        if str(hook.get("request_url", "")).startswith(receiver):
            erp.delete_webhook(hook["name"])


@pytest.fixture(scope="module")
def erp(erp_env) -> ERPNextConnector:
    return _connector(erp_env)


def customers_with(erp: ERPNextConnector, email: str) -> list[dict[str, Any]]:
    rows = erp.list_page("Customer", filters=[["email_id", "=", email]], fields=("name",))
    return [erp.get("Customer", row["name"]) for row in rows]


def mautic_leads(deployment: PeerDeployment, email: str) -> list[dict[str, Any]]:
    leads = deployment.sims["mautic"].db["leads"].values()
    return [lead for lead in leads if (lead["fields"].get("email") or "").lower() == email]


def everywhere(deployment: PeerDeployment, erp: ERPNextConnector, email: str) -> tuple[int, int, int, int]:
    sims = deployment.sims
    found = (clients_with(sims["invoiceninja"], email), customers_with(erp, email),
             mautic_leads(deployment, email), directus_contacts_with(sims["directus"], email))  # fmt: skip
    return tuple(len(f) for f in found)  # type: ignore[return-value]


def invoice_ninja(deployment: PeerDeployment, method: str, path: str, body: dict | None = None) -> Any:
    url = f"{deployment.env['INVOICENINJA_URL']}/api/v1/{path}"
    response = requests.request(method, url, json=body, headers=IN_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def no_failures(deployment: PeerDeployment) -> None:
    """`syncengine status` shows nothing failed or stuck, and the hub never linked one object twice."""
    shown = deployment.cli("status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    with session_scope() as session:
        twice = session.execute(
            select(Link.system, Link.external_id).group_by(Link.system, Link.kind, Link.external_id)
            .having(func.count() > 1)
        ).all()  # fmt: skip
    assert twice == []


def hub_record(email: str) -> Record:
    with session_scope() as session:
        return session.execute(
            select(Record).where(Record.kind == "contact", Record.match_key == email)
        ).scalar_one()


# --- setup ------------------------------------------------------------------------------------------------


def test_setup_check_is_clean_after_setup(deployment):
    check = deployment.cli("setup", "--check", "--system", "erpnext", "--verbose")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "everything the engine needs is in place" in check.stdout
    assert "Custom Field Customer.custom_syncengine_id" in check.stdout


# --- contacts ---------------------------------------------------------------------------------------------


def test_a_customer_created_in_erpnext_arrives_once_in_the_others(deployment, erp):
    email = f"erp-new-{uuid.uuid4().hex[:8]}@example.test"
    erp.create("Customer", {"customer_name": f"Made In ERPNext {email[8:16]}", "email_id": email,
                            "mobile_no": "+33610000001"})  # fmt: skip
    wait_until(lambda: everywhere(deployment, erp, email) == (1, 1, 1, 1), timeout=90)
    deployment.settle()
    assert everywhere(deployment, erp, email) == (1, 1, 1, 1)
    [item] = directus_contacts_with(deployment.sims["directus"], email)
    assert item["phone"] == "+33610000001"
    no_failures(deployment)


def test_a_client_from_invoice_ninja_arrives_once_and_its_email_and_phone_edit_holds(deployment, erp):
    email = f"in-new-{uuid.uuid4().hex[:8]}@example.test"
    client = invoice_ninja(deployment, "POST", "clients", {
        "name": f"From Invoice Ninja {email[7:15]}",
        "contacts": [{"email": email, "first_name": "Ina", "last_name": "Ninja", "phone": "+33620000001"}],
    })  # fmt: skip
    wait_until(lambda: everywhere(deployment, erp, email) == (1, 1, 1, 1), timeout=90)
    deployment.settle()
    [customer] = customers_with(erp, email)
    assert customer["mobile_no"] == "+33620000001"

    moved = email.replace("in-new-", "in-moved-")
    contact = {"id": client["contacts"][0]["id"], "email": moved, "phone": "+33620000002",
               "first_name": "Ina", "last_name": "Ninja"}  # fmt: skip
    invoice_ninja(deployment, "PUT", f"clients/{client['id']}", {"contacts": [contact]})
    wait_until(lambda: customers_with(erp, moved), timeout=90)
    deployment.settle()
    held = erp.get("Customer", customer["name"])
    assert (held["email_id"], held["mobile_no"]) == (moved, "+33620000002")
    # ERPNext's echo of our write is no edit: Invoice Ninja and the others keep the new values.
    [in_contact] = clients_with(deployment.sims["invoiceninja"], moved)[0]["contacts"]
    assert (in_contact["email"], in_contact["phone"]) == (moved, "+33620000002")
    assert [i["phone"] for i in directus_contacts_with(deployment.sims["directus"], moved)] == [
        "+33620000002"
    ]
    assert everywhere(deployment, erp, email) == (0, 0, 0, 0)
    no_failures(deployment)


def test_two_customers_of_the_same_name_in_erpnext_stay_two_everywhere(deployment, erp):
    """ERPNext names the second "X - 1"; each is its own record, pushed without a crash."""
    name = f"Twin {uuid.uuid4().hex[:8]}"
    emails = [f"twin-{uuid.uuid4().hex[:8]}@example.test" for _ in "ab"]
    made = [erp.create("Customer", {"customer_name": name, "email_id": e}) for e in emails]
    assert [m["name"] for m in made] == [name, f"{name} - 1"]
    wait_until(lambda: all(everywhere(deployment, erp, e) == (1, 1, 1, 1) for e in emails), timeout=90)
    deployment.settle()
    assert [everywhere(deployment, erp, e) for e in emails] == [(1, 1, 1, 1)] * 2
    no_failures(deployment)


# --- deletes and archives ---------------------------------------------------------------------------------


def synced_in_erpnext(deployment: PeerDeployment, erp: ERPNextConnector, prefix: str) -> tuple[str, str]:
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.test"
    made = erp.create("Customer", {"customer_name": f"{prefix} {email[-21:-13]}", "email_id": email})
    wait_until(lambda: everywhere(deployment, erp, email) == (1, 1, 1, 1), timeout=90)
    deployment.settle()
    return email, made["name"]


def archived_elsewhere(deployment: PeerDeployment, email: str) -> bool:
    sims = deployment.sims
    client = clients_with(sims["invoiceninja"], email)[0]
    item = directus_contacts_with(sims["directus"], email)[0]
    return bool(client.get("archived_at")) and bool(item.get("archived"))


def test_a_customer_disabled_in_erpnext_is_archived_elsewhere(deployment, erp):
    email, name = synced_in_erpnext(deployment, erp, "erp-off")
    erp.update("Customer", name, {"disabled": 1})
    wait_until(lambda: archived_elsewhere(deployment, email), timeout=90)
    deployment.settle()
    assert hub_record(email).deleted_at is not None
    no_failures(deployment)


def test_a_customer_deleted_in_erpnext_is_archived_elsewhere(deployment, erp):
    email, name = synced_in_erpnext(deployment, erp, "erp-del")
    assert erp.delete("Customer", name) is True
    wait_until(lambda: archived_elsewhere(deployment, email), timeout=90)
    deployment.settle()
    assert hub_record(email).deleted_at is not None
    no_failures(deployment)


@contextmanager
def webhooks_off(deployment: PeerDeployment, erp: ERPNextConnector, field: str, value: str) -> Iterator[None]:
    """Our ERPNext Webhooks whose `field` is `value` disabled meanwhile: what happens then is never heard."""
    hooks = [h for h in erp.iter_webhooks() if h.get(field) == value
             and str(h.get("request_url", "")).startswith(deployment.receiver)]  # fmt: skip
    for hook in hooks:
        erp.update("Webhook", hook["name"], {"enabled": 0})
    try:
        yield
    finally:
        for hook in hooks:
            erp.update("Webhook", hook["name"], {"enabled": 1})


def test_a_delete_whose_webhook_was_lost_is_archived_by_the_sweep(deployment, erp):
    email, name = synced_in_erpnext(deployment, erp, "erp-lost")
    since = datetime.now(UTC) - timedelta(seconds=5)
    with webhooks_off(deployment, erp, "webhook_docevent", "on_trash"):
        erp.delete("Customer", name)
    deployment.settle()
    assert not archived_elsewhere(deployment, email)  # nothing told us yet
    swept = deployment.cli("sweep", "erpnext", "deleted", "--since", since.isoformat())
    assert swept.returncode == 0, swept.stdout + swept.stderr
    wait_until(lambda: archived_elsewhere(deployment, email), timeout=90)
    deployment.settle()
    no_failures(deployment)


def test_a_customer_whose_webhook_was_lost_arrives_everywhere_by_the_sweep_as_listed(deployment, erp):
    """The Customer sweep lists every field (`*`) of the real server's rows, and the handler merges each as
    listed, with no read-back: the contact reaches every system once, with its name and phone."""
    email = f"erp-swept-{uuid.uuid4().hex[:8]}@example.test"
    since = datetime.now(UTC) - timedelta(seconds=5)
    name = f"Swept {uuid.uuid4().hex[:6]}"
    with webhooks_off(deployment, erp, "webhook_doctype", "Customer"):
        erp.create("Customer", {"customer_name": name, "customer_type": "Individual", "email_id": email,
                                "mobile_no": "+33 6 55 44 33 22"})  # fmt: skip
    deployment.settle()
    assert everywhere(deployment, erp, email) == (0, 1, 0, 0)  # nothing told us yet
    swept = deployment.cli("sweep", "erpnext", "contact", "--since", since.isoformat())
    assert swept.returncode == 0, swept.stdout + swept.stderr
    wait_until(lambda: everywhere(deployment, erp, email) == (1, 1, 1, 1), timeout=90)
    deployment.settle()
    assert everywhere(deployment, erp, email) == (1, 1, 1, 1)
    assert hub_record(email).data.get("name") == name
    assert hub_record(email).data.get("phone") == "+33 6 55 44 33 22"
    no_failures(deployment)


# --- invoices and payments --------------------------------------------------------------------------------


def sales_invoices(erp: ERPNextConnector, number: str) -> list[dict[str, Any]]:
    rows = erp.list_page("Sales Invoice", filters=[["custom_syncengine_id", "=", number]], fields=("name",))
    return [erp.get("Sales Invoice", row["name"]) for row in rows]


@pytest.fixture(scope="module")
def sent_invoice(deployment, erp) -> dict[str, Any]:
    """A client, a product and a sent invoice of 2 x 100 + 20% VAT made in Invoice Ninja."""
    email, sku = f"inv-{uuid.uuid4().hex[:8]}@example.test", f"SKU-{uuid.uuid4().hex[:6].upper()}"
    client = invoice_ninja(deployment, "POST", "clients", {
        "name": f"Invoiced {email[4:12]} Ltd", "contacts": [{"email": email, "first_name": "Ivo"}],
    })  # fmt: skip
    invoice_ninja(deployment, "POST", "products", {"product_key": sku, "notes": "Widget", "price": 100})
    wait_until(
        lambda: customers_with(erp, email) and erp.find_one("Item", [["item_code", "=", sku]]), timeout=90
    )
    deployment.settle()
    line = {"product_key": sku, "notes": "Widget", "cost": 100, "quantity": 2, "tax_name1": "VAT",
            "tax_rate1": 20, "type_id": "1"}  # fmt: skip
    # A number of its own: the site keeps the Sales Invoices of earlier runs, marked with their numbers.
    invoice = invoice_ninja(deployment, "POST", "invoices", {
        "client_id": client["id"], "number": f"E2E-{uuid.uuid4().hex[:10].upper()}", "date": ISSUED,
        "due_date": DUE, "line_items": [line],
    })  # fmt: skip
    invoice_ninja(deployment, "POST", "invoices/bulk", {"action": "mark_sent", "ids": [invoice["id"]]})
    number = invoice["number"]
    wait_until(lambda: sales_invoices(erp, number), timeout=90)
    deployment.settle()
    return {"email": email, "sku": sku, "client": client, "invoice": invoice, "number": number}


def test_an_invoice_ninja_invoice_becomes_a_submitted_sales_invoice_with_the_right_totals(
    deployment, erp, erp_env, sent_invoice
):
    [doc] = sales_invoices(erp, sent_invoice["number"])
    assert (doc["docstatus"], doc["status"]) == (1, "Unpaid")
    assert doc["customer"] == customers_with(erp, sent_invoice["email"])[0]["name"]
    assert [(r["item_code"], r["qty"], r["rate"]) for r in doc["items"]] == [
        (sent_invoice["sku"], 2.0, 100.0)
    ]
    assert (doc["net_total"], doc["total_taxes_and_charges"], doc["grand_total"]) == (200.0, 40.0, 240.0)
    assert [t["account_head"] for t in doc["taxes"]] == [erp_env["ERPNEXT_TAX_ACCOUNT"]]
    assert (doc["posting_date"], doc["due_date"]) == (ISSUED, DUE)
    no_failures(deployment)


def test_a_revolut_payment_becomes_one_payment_entry_and_the_invoice_shows_paid_everywhere(
    deployment, erp, erp_env, sent_invoice
):
    sims, number = deployment.sims, sent_invoice["number"]
    before = datetime.now(UTC) - timedelta(seconds=5)
    tx = sims["revolut"].receive_payment(240.0, reference=f"Invoice {number}", payer="Invoiced Ltd")

    def entries() -> list[dict[str, Any]]:
        return erp.list_page("Payment Entry", filters=[["reference_no", "=", tx["id"]]],
                             fields=("name", "docstatus", "paid_to", "paid_amount"))  # fmt: skip

    def receipts() -> list[dict[str, Any]]:
        sent = sims["mautic"].sent_emails(email_id=RECEIPT_EMAIL_ID)
        return [s for s in sent if s["email_address"] == sent_invoice["email"]]

    wait_until(lambda: entries() and receipts(), timeout=120)
    deployment.settle()
    [entry] = entries()
    assert (entry["docstatus"], entry["paid_to"], entry["paid_amount"]) == (
        1,
        erp_env["ERPNEXT_BANK_ACCOUNT"],
        240,
    )
    [doc] = sales_invoices(erp, number)
    assert (doc["status"], doc["outstanding_amount"]) == ("Paid", 0)
    assert len(receipts()) == 1
    in_invoice = sims["invoiceninja"].db["invoices"][sent_invoice["invoice"]["id"]]
    assert in_invoice["balance"] == 0 and in_invoice["status_id"] == "4"  # paid
    # ERPNext sends no webhook when a payment makes the invoice Paid; the invoice sweep sees it.
    swept = deployment.cli("sweep", "erpnext", "invoice", "--since", before.isoformat())
    assert swept.returncode == 0, swept.stdout + swept.stderr
    wait_until(
        lambda: [i.get("status") for i in _directus_invoices(deployment, number)] == ["paid"], timeout=90
    )
    deployment.settle()
    assert len(entries()) == 1 and len(receipts()) == 1
    no_failures(deployment)


def _directus_invoices(deployment: PeerDeployment, number: str) -> list[dict[str, Any]]:
    return [
        i for i in deployment.sims["directus"].db.get("invoices", {}).values() if i.get("number") == number
    ]


def test_two_customers_of_the_same_name_without_email_stay_two_everywhere(deployment, erp):
    """Without an email nothing but our own links tells them apart: ERPNext names the second "X - 1" and the
    engine never finds a Customer by its name; the echo of our client create waits for its link, and the
    namesake's push does not take the first one's client, found by name, for its own."""
    name = f"Twin NoMail {uuid.uuid4().hex[:8]}"
    made = [erp.create("Customer", {"customer_name": name, "mobile_no": f"+3363000000{i}"}) for i in (1, 2)]
    assert [m["name"] for m in made] == [name, f"{name} - 1"]

    def clients() -> list[dict[str, Any]]:
        return [c for c in deployment.sims["invoiceninja"].db["clients"].values() if c.get("name") == name]

    wait_until(lambda: len(clients()) >= 2, timeout=90)
    deployment.settle()
    assert len(clients()) == 2
    no_failures(deployment)
