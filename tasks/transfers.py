"""F7 (opt-in): a submitted ERPNext Purchase Invoice is paid to its supplier from our Revolut account, once.

Off unless SYNCENGINE_PAY_SUPPLIERS=true; the account paid from is REVOLUT_ACCOUNT_ID. The signal is ERPNext's
own approval step: submitting the Purchase Invoice (docstatus 1, `Purchase Invoice:on_submit`); a site with
an approval workflow submits at its end. `on_update_after_submit` is handled too (e.g. after a review, once
the supplier's IBAN is fixed, through `/webhooks/erpnext/on_update_after_submit`); an invoice already paid,
cancelled, a return or with nothing outstanding is left alone. The supplier's bank details are the Supplier's
custom fields `custom_iban` and `custom_bic` (syncengine.vendors.erpnext; `syncengine setup` creates them).

The handler only reads the invoice back and defers one `pay_supplier`; each step then runs under its own key:

counterparty:revolut:<supplier>:<iban>  the Revolut counterparty for the supplier's bank details (found first)
plan:transfer:<invoice>        the decision (account, counterparty, amount, currency, reference), stored, so a
                               re-run pays exactly what was decided even if the invoice changed meanwhile
transfer:revolut:<invoice>     POST /pay, request_id = UUID5 of this key; an ambiguous answer is never resent:
                               the next attempt reads the transaction back by request_id first (and 3020 =
                               already done, read back), both in `RevolutConnector.pay`. The hub's `transfer`
                               record is written in the transaction that finishes the key.
transfer:directus:<invoice>    the Directus `transfers` item (ext_id transfer:<invoice>)
review:directus:transfer:<invoice>:<cause>   why an invoice was not paid (no IBAN, currency, configuration)

Nothing is marked paid in ERPNext here: a transfer sent is not a transfer completed (an IBAN payment is
`pending` at Revolut and may still be declined or reverted), so the Payment Entry (Pay) belongs to the moment
the bank line comes back (ERPNext's bank reconciliation, or a later flow booking our completed outgoing
transactions with reference_no = the Revolut transaction id, as F5 does for incoming ones).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import connector_for
from syncengine.celery_app import app
from syncengine.db import session_scope
from syncengine.errors import Permanent
from syncengine.idempotency import Effect, once
from syncengine.models import IdempotencyKey, IdempotencyPhase
from syncengine.records import Change, merge, record_id_for
from syncengine.settings import get_settings
from syncengine.vendors.erpnext import BIC_FIELD, IBAN_FIELD

from .dispatch import HandlerContext, handles, run_or_review

log = logging.getLogger(__name__)

DOCTYPE = "Purchase Invoice"
TRANSFERS = "transfers"  # the Directus collection
MAX_TRANSFER_RETRIES = 12  # then a human is asked (an ambiguous transfer stays recoverable by read-back)
REFERENCE_MAX = 140  # Revolut's limit on `reference`


class NotPayable(Exception):
    """A reason not to move money that a human should see: `cause` names it in the review's key."""

    def __init__(self, cause: str, reason: str) -> None:
        super().__init__(reason)
        self.cause = cause
        self.reason = reason


# --- the trigger ------------------------------------------------------------------------------------------


@handles("erpnext", f"{DOCTYPE}:on_submit", f"{DOCTYPE}:on_update_after_submit")
def on_purchase_invoice(ctx: HandlerContext) -> None:
    if not get_settings().pay_suppliers:
        log.info("erpnext %s: supplier payments are off (SYNCENGINE_PAY_SUPPLIERS)", DOCTYPE)
        return
    payload = ctx.event.payload or {}
    doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
    name = payload.get("name") or doc.get("name")
    if not name:
        return
    current = connector_for("erpnext").get(DOCTYPE, str(name))  # Frappe sends only what we templated
    if (why := not_due(current)) is not None and not _finished(f"plan:transfer:{name}", ctx.session):
        log.info("erpnext %s %s: not paid (%s)", DOCTYPE, name, why)
        return
    ctx.defer(pay_supplier.s(str(name)))


def not_due(doc: dict[str, Any]) -> str | None:
    """Why this invoice is not (or no longer) to be paid, for reasons that need no human."""
    if doc.get("docstatus") != 1:
        return "not submitted" if not doc.get("docstatus") else "cancelled"
    if doc.get("is_return"):
        return "a return (debit note)"
    if str(doc.get("status") or "") == "Paid" or _decimal(doc.get("outstanding_amount")) <= 0:
        return "nothing outstanding"
    return None


# --- the task ---------------------------------------------------------------------------------------------


@app.task(name="tasks.transfers.pay_supplier", bind=True, acks_late=True, max_retries=None)
def pay_supplier(self, invoice: str) -> str:  # type: ignore[no-untyped-def]
    return run_or_review(
        self, lambda: pay(invoice), lambda reason: review_failure(invoice, reason),
        limit=MAX_TRANSFER_RETRIES, what=f"purchase invoice {invoice} not paid",
    )  # fmt: skip


def pay(invoice: str) -> str:
    """Pay the Purchase Invoice's outstanding amount once; returns what happened."""
    if not get_settings().pay_suppliers:
        log.info("purchase invoice %s: supplier payments are off, nothing sent", invoice)
        return "disabled"
    try:
        plan = _plan(invoice)
    except NotPayable as exc:
        _review(invoice, exc.cause, exc.reason)
        return "review"
    if plan is None:
        return "not due"
    result = _pay(invoice, plan)
    _directus(invoice, plan, result)
    if result.get("state") in ("declined", "failed", "reverted"):
        reason = f"Revolut {result['state']} the transfer {result.get('id')} ({result.get('reason_code')})"
        _review(invoice, "declined", reason)
        return str(result["state"])
    return "sent"


def review_failure(invoice: str, reason: str) -> str:
    """A permanent failure, or too many retries, goes to a human with its reason (once per invoice)."""
    _review(invoice, "failed", reason)
    return "failed"


# --- the steps --------------------------------------------------------------------------------------------


def _plan(invoice: str) -> dict[str, Any] | None:
    """The stored decision; made now, after the checks, when there is none yet."""
    key = f"plan:transfer:{invoice}"
    effect = Effect(key, "syncengine", "plan_transfer", invoice)
    if _finished(key):
        return once(effect, _never)  # the stored answer, whatever the invoice says now
    settings = get_settings().services["revolut"]
    account_id = settings.options.get("account_id")
    if not settings.configured or not account_id:
        raise NotPayable("config", "Revolut is not configured for payments (REVOLUT_URL, REVOLUT_ACCOUNT_ID)")
    erp = connector_for("erpnext")
    doc = erp.get(DOCTYPE, invoice)
    if (why := not_due(doc)) is not None:
        log.info("purchase invoice %s: not paid (%s)", invoice, why)
        return None
    supplier = erp.get("Supplier", str(doc["supplier"]))
    iban = "".join(str(supplier.get(IBAN_FIELD) or "").split()).upper()
    if not iban:
        raise NotPayable("bank", f"supplier {doc['supplier']} has no IBAN ({IBAN_FIELD}) in ERPNext")
    revolut = connector_for("revolut")
    account = next((a for a in revolut.accounts() if a.get("id") == account_id), None)
    if account is None or account.get("state", "active") != "active":
        raise NotPayable("config", f"REVOLUT_ACCOUNT_ID {account_id} is not an active Revolut account")
    currency = str(doc.get("currency") or "")
    if currency != account.get("currency"):
        raise NotPayable(
            "currency", f"invoice is in {currency or '?'}, the Revolut account in {account.get('currency')}"
        )
    counterparty = _counterparty(revolut, supplier, iban, currency)
    decision = {
        "account_id": account_id,
        "counterparty_id": str(counterparty["id"]),
        "amount": str(_decimal(doc.get("outstanding_amount"))),
        "currency": currency,
        "reference": str(doc.get("bill_no") or invoice)[:REFERENCE_MAX],
        "supplier": str(doc["supplier"]),
    }
    return once(effect, lambda _attempt: decision)


def _counterparty(revolut: Any, supplier: dict[str, Any], iban: str, currency: str) -> dict[str, Any]:
    body = {
        "company_name": supplier.get("supplier_name") or supplier["name"],
        "bank_country": iban[:2],
        "currency": currency,
        "iban": iban,
        **({"bic": str(supplier[BIC_FIELD]).strip().upper()} if supplier.get(BIC_FIELD) else {}),
    }
    effect = Effect(f"counterparty:revolut:{supplier['name']}:{iban}", "revolut", "ensure_counterparty", body)
    return revolut.ensure_counterparty(effect, body)


def _pay(invoice: str, plan: dict[str, Any]) -> dict[str, Any]:
    body = {k: plan[k] for k in ("account_id", "counterparty_id", "amount", "currency", "reference")}

    def record(session: Any, result: dict[str, Any]) -> None:
        fields: dict[str, Any] = {
            "amount": float(Decimal(plan["amount"])),
            "currency": plan["currency"],
            "counterparty": plan["counterparty_id"],
            "reference": plan["reference"],
            "state": result.get("state"),
            "request_id": result.get("request_id"),
        }
        expense = record_id_for(session, "erpnext", "expense", invoice)
        if expense is not None:
            fields["expense_id"] = expense
        tx = str(result["id"])
        merge(session, Change("revolut", "transfer", tx, fields, datetime.now(UTC), match_key=tx))

    effect = Effect(f"transfer:revolut:{invoice}", "revolut", "pay", body)
    return connector_for("revolut").pay(effect, **body, on_finish=record)


def _directus(invoice: str, plan: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    item = {
        "ext_id": f"transfer:{invoice}",
        "bank_transaction_id": result.get("id"),
        "request_id": result.get("request_id"),
        "purchase_invoice": invoice,
        "supplier": plan.get("supplier"),
        "amount": float(Decimal(plan["amount"])),
        "currency": plan["currency"],
        "reference": plan["reference"],
        "counterparty_id": plan["counterparty_id"],
        "state": result.get("state"),
    }
    effect = Effect(f"transfer:directus:{invoice}", "directus", "create_transfer_item", item)
    return connector_for("directus").create_item(effect, TRANSFERS, item)


def _review(invoice: str, cause: str, reason: str) -> dict[str, Any]:
    review = {
        "ext_id": f"transfer:{invoice}:{cause}",
        "kind": "transfer",
        "title": f"supplier invoice not paid: {invoice}",
        "details": reason,
    }
    # One review per invoice and cause, whatever the reason's wording on a later try.
    effect = Effect(
        f"review:directus:transfer:{invoice}:{cause}", "directus", "create_review", review["ext_id"]
    )
    log.warning("purchase invoice %s not paid: %s", invoice, reason)
    return connector_for("directus").create_review(effect, review)


# --- helpers ----------------------------------------------------------------------------------------------


def _finished(key: str, session: Session | None = None) -> bool:
    """Whether this step is done; in a handler, pass its session (SQLite has one writer at a time)."""
    if session is None:
        with session_scope() as own:
            return _finished(key, own)
    query = select(IdempotencyKey.phase).where(IdempotencyKey.key == key)
    return session.execute(query).scalar_one_or_none() == IdempotencyPhase.FINISHED


def _never(_attempt: Any) -> Any:
    raise Permanent("a finished plan was asked to run again")


def _decimal(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value if value is not None else 0))
    except InvalidOperation:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)
