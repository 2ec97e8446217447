"""The day the demo plays: each step is what a person does in one system, through that system's API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from .demo import Demo

EMAIL = "ada@lovelace.example"
LEAD = {"email": EMAIL, "firstname": "Ada", "lastname": "Lovelace", "company": "Analytical Ltd"}
SKU = "CONSULT-H"
STEPS = 6  # the steps `play` takes: the demo's progress bar counts them


def _mautic(demo: Demo, method: str, path: str, body: Any = None) -> dict:
    response = requests.request(
        method, demo.urls["mautic"] + path, json=body, auth=("admin", "sim-mautic-pass"), timeout=10
    )
    response.raise_for_status()
    return response.json()


def _ninja(demo: Demo, method: str, path: str, body: Any = None) -> dict:
    headers = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
    response = requests.request(
        method, demo.urls["invoiceninja"] + path, json=body, headers=headers, timeout=10
    )
    response.raise_for_status()
    return response.json()


def _erpnext(demo: Demo, method: str, path: str, body: Any = None) -> dict:
    headers = {"Authorization": "token erp-api-key:erp-api-secret"}
    response = requests.request(method, demo.urls["erpnext"] + path, json=body, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def _directus(demo: Demo, method: str, path: str, body: Any = None) -> dict:
    headers = {"Authorization": "Bearer directus-static-token"}
    response = requests.request(method, demo.urls["directus"] + path, json=body, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else {}


def _client(demo: Demo) -> dict | None:
    for client in demo.sims["invoiceninja"].db.get("clients", {}).values():
        if any((c.get("email") or "").lower() == EMAIL for c in client.get("contacts", [])):
            return client
    return None


def _customer(demo: Demo) -> dict | None:
    return next(
        (d for d in demo.sims["erpnext"].db.get("Customer", {}).values() if d.get("email_id") == EMAIL), None
    )


def _directus_contact(demo: Demo) -> dict | None:
    return next(
        (i for i in demo.sims["directus"].db.get("contacts", {}).values() if i.get("email") == EMAIL), None
    )


def _has(demo: Demo, system: str, collection: str, field: str) -> bool:
    return any(p.get(field) == SKU for p in demo.sims[system].db.get(collection, {}).values())


def play(demo: Demo) -> None:
    demo.step(
        "09:00 A visitor fills in the contact form: Mautic identifies a new lead",
        lambda: _mautic(demo, "POST", "/api/contacts/new", LEAD),
        lambda: bool(_client(demo) and _customer(demo) and _directus_contact(demo)),
    )  # fmt: skip

    def set_address() -> None:
        client = _client(demo)
        contacts = [{k: c[k] for k in ("id", "email", "first_name", "last_name")} for c in client["contacts"]]
        _ninja(demo, "PUT", f"/api/v1/clients/{client['id']}",
               {"address1": "12 St James's Square", "city": "London", "contacts": contacts})  # fmt: skip

    demo.step(
        "10:30 Sales turns the lead into a client and fills in the address in Invoice Ninja",
        set_address,
        lambda: (_directus_contact(demo) or {}).get("city") == "London",
    )
    demo.step(
        "11:00 Accounting creates a product in ERPNext",
        lambda: _erpnext(demo, "POST", "/api/v2/document/Item",
                         {"item_code": SKU, "item_name": "Consulting hour", "item_group": "Products",
                          "stock_uom": "Nos", "is_stock_item": 0, "standard_rate": 120}),
        lambda: _has(demo, "invoiceninja", "products", "product_key")
        and _has(demo, "directus", "products", "sku"),
    )  # fmt: skip

    def edit_twice() -> None:
        _erpnext(
            demo, "PATCH", f"/api/v2/document/Customer/{_customer(demo)['name']}", {"mobile_no": "+44 20 1"}
        )
        item = _directus_contact(demo)
        _directus(demo, "PATCH", f"/items/contacts/{item['id']}", {"phone": "+44 20 2"})

    def agreed() -> bool:
        phones = {(_customer(demo) or {}).get("mobile_no"), (_directus_contact(demo) or {}).get("phone")}
        return len(phones) == 1 and None not in phones

    demo.step(
        "14:00 Two people change the client's phone at the same moment, in ERPNext and in Directus",
        edit_twice,
        agreed,
    )
    phone = (_customer(demo) or {}).get("mobile_no")
    print(f"    the newer edit wins everywhere: {phone}")
    bill_and_get_paid(demo)


def _invoice(demo: Demo) -> dict | None:
    return next((i for i in demo.sims["invoiceninja"].db.get("invoices", {}).values()), None)


def _submitted(demo: Demo, doctype: str) -> list[dict]:
    return [d for d in demo.sims["erpnext"].db.get(doctype, {}).values() if d.get("docstatus") == 1]


def _emails(demo: Demo, email_id: int) -> int:
    return len(demo.sims["mautic"].sent_emails(email_id=email_id))


def bill_and_get_paid(demo: Demo) -> None:
    def send_invoice() -> None:
        body = {"client_id": _client(demo)["id"], "line_items": [
            {"product_key": SKU, "notes": "Consulting hour", "cost": 120, "quantity": 3,
             "tax_name1": "VAT", "tax_rate1": 20}]}  # fmt: skip
        invoice = _ninja(demo, "POST", "/api/v1/invoices", body)["data"]
        _ninja(demo, "POST", "/api/v1/invoices/bulk", {"action": "mark_sent", "ids": [invoice["id"]]})

    demo.step(
        "15:00 An invoice for three consulting hours is sent from Invoice Ninja",
        send_invoice,
        lambda: bool(_submitted(demo, "Sales Invoice")) and _emails(demo, 1) == 1,
    )
    invoice = _invoice(demo)
    print(f"    invoice {invoice['number']} for {invoice['amount']:.2f}: in the books, and emailed once")
    demo.step(
        "17:00 The client pays by bank transfer: the money arrives on Revolut",
        lambda: demo.sims["revolut"].receive_payment(
            invoice["amount"], reference=f"Invoice {invoice['number']}", payer="Analytical Ltd"
        ),
        lambda: (_invoice(demo) or {}).get("status_id") == "4" and bool(_submitted(demo, "Payment Entry"))
        and _emails(demo, 2) == 1,
    )  # fmt: skip
    print("    matched by the invoice number: paid in Invoice Ninja and ERPNext, receipt emailed once")
