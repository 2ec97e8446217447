"""F5: an incoming Revolut transaction, once completed, is matched to an open invoice and booked.

The webhook handler only merges the bank's facts into a `payment` record (match key = the Revolut
transaction id) and defers one `book_payment`; the booking (tasks.booking) calls the vendors, each effect
under its own key. `TransactionStateChanged` carries only id and state: the full transaction is the one
`TransactionCreated` stored in the hub; when the change arrives first, it is read back from Revolut if the
connector is configured, else the event fails and the inbox retries it (by then TransactionCreated is in).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from connectors import connector_for
from syncengine.canonical import SCHEMA
from syncengine.celery_app import app
from syncengine.errors import Retryable
from syncengine.models import InboxEvent, Record
from syncengine.records import Change, merge
from syncengine.settings import get_settings
from syncengine.vendors import revolut

from .booking import book, review_failure
from .dispatch import HandlerContext, handles, run_or_review

log = logging.getLogger(__name__)

# Retries of a booking (a vendor down, the Sales Invoice not yet in ERPNext) before a human is asked.
MAX_BOOKING_RETRIES = 12


@handles("revolut", "TransactionCreated", "TransactionStateChanged")
def on_transaction(ctx: HandlerContext) -> None:
    payload = ctx.event.payload or {}
    data = payload.get("data") or {}
    at = _time(payload.get("timestamp"))
    if ctx.event.event_type == "TransactionCreated":
        fields = bank_fields(data)
    else:
        fields = _known_fields(ctx, str(data["id"]))
        if fields is not None:
            fields = {**fields, "state": data.get("new_state") or fields.get("state")}
    if fields is None:
        log.info("revolut transaction %s: not an incoming payment, ignored", data.get("id"))
        return
    tx_id = fields["bank_transaction_id"]
    merged = merge(ctx.session, Change("revolut", "payment", tx_id, fields, at, match_key=tx_id))
    if fields.get("state") == "completed":
        ctx.defer(book_payment.s(merged.record_id))


def bank_fields(tx: dict[str, Any]) -> dict[str, Any] | None:
    """The bank's facts of a transaction into our account (REVOLUT_ACCOUNT_ID when set), else None."""
    return revolut.bank_fields(tx, get_settings().services["revolut"].options.get("account_id"))


def _known_fields(ctx: HandlerContext, tx_id: str) -> dict[str, Any] | None:
    record = ctx.session.execute(
        select(Record).where(Record.kind == "payment", Record.match_key == tx_id)
    ).scalar_one_or_none()
    if record is not None and record.data:
        return {name: record.data.get(name) for name in SCHEMA["payment"]["bank"]}
    if get_settings().services["revolut"].configured:
        return bank_fields(connector_for("revolut").transaction(tx_id))
    created = ctx.session.execute(
        select(InboxEvent.status).where(
            InboxEvent.source == "revolut", InboxEvent.event_id.like(f"TransactionCreated:{tx_id}:%")
        )
    ).scalars()
    if any(status in ("done", "ignored") for status in created):
        return None  # TransactionCreated was handled and made no payment: not incoming money
    raise Retryable(f"revolut transaction {tx_id}: state changed before TransactionCreated arrived")


@app.task(name="tasks.payments.book_payment", bind=True, acks_late=True, max_retries=None)
def book_payment(self, record_id: int) -> str:  # type: ignore[no-untyped-def]
    return run_or_review(
        self, lambda: book(record_id), lambda reason: review_failure(record_id, reason),
        limit=MAX_BOOKING_RETRIES, what=f"payment record {record_id} not booked",
    )  # fmt: skip


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
