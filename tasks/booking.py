"""F5's booking, step by step, each external effect once under a key derived from the Revolut id.

match:payment:<tx>      the decision (invoice, amount applied, surplus), stored, so a re-run after the
                        invoice got paid books against the same invoice instead of matching again
pay:invoiceninja:<tx>   the Invoice Ninja payment (its `idempotency_key` = our vendor key)
pay:erpnext:<tx>        the Payment Entry against the Sales Invoice (found again by reference_no = <tx>)
pay:directus:<tx>       the `payments` item (ext_id = payment:<tx>)
receipt:mautic:<tx>     the receipt email, at most once
review:directus:<tx>…   review items (no match, over-payment, a permanent failure)

Open invoices are read from Invoice Ninja at match time (`client_status=unpaid`), not from the hub: the
vendor that records payments is the truth about balances, and the hub may lag behind its webhooks.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from connectors import connector_for
from connectors.erpnext import REMARKS
from syncengine.db import session_scope
from syncengine.errors import Permanent, Retryable
from syncengine.idempotency import Effect, once
from syncengine.matching import Decision, Incoming, OpenInvoice, match, money
from syncengine.models import Record
from syncengine.settings import get_settings
from syncengine.vendors import invoiceninja
from syncengine.vendors.mautic import RECEIPT_EMAIL

log = logging.getLogger(__name__)

DEFAULT_CURRENCY = "EUR"  # Invoice Ninja keeps currencies on client settings; none set = the company's
BANK_TRANSFER = "1"  # Invoice Ninja payment type_id


def receipt_email_id() -> int:
    """MAUTIC_RECEIPT_EMAIL_ID: the Mautic email (template) sent once per booked payment."""
    return RECEIPT_EMAIL.email_id(get_settings().services["mautic"].options)


def book(record_id: int) -> str:
    payment = _payment(record_id)
    if payment is None or payment.get("state") != "completed":
        return "not completed"
    tx = str(payment["bank_transaction_id"])
    decision = _decide(record_id, tx, payment)
    if not decision.matched:
        _review(tx, "", "unmatched payment", decision.reason, payment)
        return "review"
    _invoiceninja(tx, payment, decision)
    _erpnext(tx, payment, decision)
    _directus(tx, payment, decision)
    _receipt(tx, payment, decision)
    if decision.surplus > 0:
        reason = (
            f"over-payment of {decision.surplus} {payment['currency']} on invoice "
            f"{decision.invoice.number}; the balance was applied, the surplus is not booked"
        )
        _review(tx, ":surplus", "over-payment", reason, payment)
    return "booked"


def review_failure(record_id: int, reason: str) -> str:
    """A permanent failure goes to a human with its reason (once per payment)."""
    payment = _payment(record_id) or {}
    tx = str(payment.get("bank_transaction_id") or f"record-{record_id}")
    _review(tx, ":failed", "payment not booked", reason, payment)
    return "failed"


def _payment(record_id: int) -> dict[str, Any] | None:
    with session_scope() as session:
        record = session.get(Record, record_id)
        return dict(record.data or {}) if record is not None and record.kind == "payment" else None


def _decide(record_id: int, tx: str, payment: dict[str, Any]) -> Decision:
    def decide(_attempt: Any) -> dict[str, Any]:
        incoming = Incoming(
            money(payment["amount"]),
            str(payment.get("currency") or ""),
            payment.get("reference") or "",
            payment.get("description") or "",
            payment.get("payer_name") or "",
        )
        return match(incoming, open_invoices()).to_json()

    def note(session: Any, decision: dict[str, Any]) -> None:
        record = session.execute(select(Record).where(Record.id == record_id).with_for_update()).scalar_one()
        invoice = decision.get("invoice") or {}
        record.data = {
            **(record.data or {}),
            "invoice_id": invoice.get("id"),
            "allocated": float(decision["apply"]),
        }

    effect = Effect(f"match:payment:{tx}", "syncengine", "match_payment", tx)
    return Decision.from_json(once(effect, decide, on_finish=note))


def open_invoices() -> list[OpenInvoice]:
    """Invoice Ninja's sent or partly paid invoices with a balance, with their clients."""
    connector = connector_for("invoiceninja")
    params = {"client_status": "unpaid", "status": "active", "include": "client"}
    return [_open_invoice(inv) for inv in connector.paginate("invoices", params)]


def _open_invoice(inv: dict[str, Any]) -> OpenInvoice:
    client = inv.get("client") or {}
    settings = client.get("settings") or {}
    currency = invoiceninja.CURRENCIES.get(str(settings.get("currency_id") or ""), DEFAULT_CURRENCY)
    email = next((c.get("email") for c in client.get("contacts") or [] if c.get("email")), None)
    return OpenInvoice(
        str(inv["id"]),
        str(inv.get("number") or ""),
        str(inv.get("client_id") or ""),
        str(client.get("name") or client.get("display_name") or ""),
        money(inv.get("balance")),
        currency,
        email,
    )


def _invoiceninja(tx: str, payment: dict[str, Any], decision: Decision) -> dict[str, Any]:
    invoice = decision.invoice
    assert invoice is not None
    amount = float(decision.apply)
    body = {
        "client_id": invoice.client_id,
        "amount": amount,
        "date": payment.get("date") or None,
        "type_id": BANK_TRANSFER,
        "transaction_reference": tx,
        "invoices": [{"invoice_id": invoice.id, "amount": amount}],
    }
    effect = Effect(f"pay:invoiceninja:{tx}", "invoiceninja", "create_payment", body)
    return connector_for("invoiceninja").create_payment(effect, body)


def _erpnext(tx: str, payment: dict[str, Any], decision: Decision) -> dict[str, Any]:
    invoice = decision.invoice
    assert invoice is not None
    erp = connector_for("erpnext")
    amount = float(decision.apply)
    date = payment.get("date") or None
    request = {"invoice": invoice.number, "amount": amount, "date": date}
    effect = Effect(f"pay:erpnext:{tx}", "erpnext", "payment_entry", request)
    name = _sales_invoice(erp, invoice.number)
    return erp.ensure_payment_entry(effect, invoice=name, reference_no=tx, reference_date=date, amount=amount)


def _sales_invoice(erp: Any, number: str) -> str:
    """The Sales Invoice F4 made for this Invoice Ninja invoice (marked with its number)."""
    if erp.invoice_marker == REMARKS:
        tag = f"[syncengine:{number}]"
        found = erp.find_one(
            "Sales Invoice", [[REMARKS, "like", f"%{tag}%"]], lambda row: tag in str(row.get(REMARKS) or "")
        )
    else:
        found = erp.find_one("Sales Invoice", [[erp.invoice_marker, "=", number]])
    if found is None:
        raise Retryable(f"erpnext: no Sales Invoice for invoice {number} yet", 30.0)
    if found.get("docstatus") != 1:
        raise Retryable(f"erpnext: Sales Invoice {found['name']} for {number} is not submitted yet", 30.0)
    return str(found["name"])


def _directus(tx: str, payment: dict[str, Any], decision: Decision) -> dict[str, Any]:
    invoice = decision.invoice
    assert invoice is not None
    item = {
        "ext_id": f"payment:{tx}",
        "bank_transaction_id": tx,
        "amount": float(money(payment["amount"])),
        "applied": float(decision.apply),
        "currency": payment.get("currency"),
        "date": payment.get("date"),
        "reference": payment.get("reference"),
        "payer_name": payment.get("payer_name"),
        "invoice_number": invoice.number,
        "matched_by": decision.by,
        "status": "partial" if decision.partial else "paid",
    }
    effect = Effect(f"pay:directus:{tx}", "directus", "create_payment_item", item)
    return connector_for("directus").create_item(effect, "payments", item)


def _receipt(tx: str, payment: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """The receipt goes to the Mautic contact with the client's email; the inner send is Mautic's own
    at-most-once effect (ref receipt:<tx>), so a re-run of this step never sends a second email."""
    invoice = decision.invoice
    assert invoice is not None
    email_id = receipt_email_id()
    tokens = {
        "invoice_number": invoice.number,
        "payment_amount": f"{decision.apply:.2f}",
        "payment_currency": str(payment.get("currency") or ""),
        "payment_date": str(payment.get("date")),
    }

    def send(_attempt: Any) -> dict[str, Any]:
        mautic = connector_for("mautic")
        contact = mautic.find_contact(invoice.email) if invoice.email else None
        if contact is None:
            log.info("payment %s: no Mautic contact for %s, no receipt", tx, invoice.email)
            return {"skipped": "no contact"}
        return mautic.send_email(email_id, int(contact["id"]), ref=f"receipt:{tx}", tokens=tokens)

    effect = Effect(f"receipt:mautic:{tx}", "mautic", "send_receipt", {"email": email_id, "tx": tx})
    return once(effect, send)


def _review(tx: str, suffix: str, title: str, reason: str, payment: dict[str, Any]) -> dict[str, Any]:
    review = {
        "ext_id": f"payment:{tx}{suffix}",
        "kind": "payment",
        "title": f"{title}: {tx}",
        "details": reason,
        "amount": payment.get("amount"),
        "currency": payment.get("currency"),
        "reference": payment.get("reference"),
        "payer_name": payment.get("payer_name"),
    }
    # One review per payment and cause, whatever the reason's wording on a later try.
    effect = Effect(f"review:directus:{tx}{suffix}", "directus", "create_review", review["ext_id"])
    try:
        return connector_for("directus").create_review(effect, review)
    except Permanent:
        log.error("payment %s: review item could not be created: %s", tx, reason)
        raise
