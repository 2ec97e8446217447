"""Transactional emails through Mautic, each sent at most once per business object and template.

The key is Mautic's `email_effect` (template + contact + `invoice:<record id>`): a retried task, a duplicate
webhook or a second event about the same sent invoice returns the stored result without sending, and a
send whose answer was lost is never repeated (EmailMaybeSent, for an operator to check)."""

from __future__ import annotations

import logging
import random
from typing import Any

from sqlalchemy import select

from connectors import connector_for
from connectors.normalise import gross_total, lines
from syncengine import outbox
from syncengine.celery_app import MAX_COUNTDOWN, app
from syncengine.db import session_scope
from syncengine.errors import Permanent, Retryable
from syncengine.idempotency import InProgress
from syncengine.models import Link, Record
from syncengine.settings import get_settings
from syncengine.vendors.mautic import INVOICE_EMAIL

log = logging.getLogger(__name__)

# Two events about one sent invoice defer two sends; the second finds the first holding the key and looks
# again this soon (it then returns the stored result) rather than after the whole lease.
RECHECK_SECONDS = 3.0


def invoice_email_id() -> int:
    """MAUTIC_INVOICE_EMAIL_ID: the Mautic email (template) an invoice is sent with."""
    return INVOICE_EMAIL.email_id(get_settings().services["mautic"].options)


@app.task(name="tasks.emails.send_invoice_email", bind=True, acks_late=True, max_retries=None)
def send_invoice_email(self, record_id: int) -> str:  # type: ignore[no-untyped-def]
    try:
        return send_invoice(record_id)
    except InProgress as exc:
        raise self.retry(countdown=min(exc.retry_after or RECHECK_SECONDS, RECHECK_SECONDS)) from exc
    except Retryable as exc:
        countdown = exc.retry_after or random.uniform(0, 5 * 2 ** min(self.request.retries, 8))
        raise self.retry(countdown=min(countdown, MAX_COUNTDOWN), max_retries=None) from exc
    except Permanent as exc:  # EmailMaybeSent included: never sent twice, an operator decides
        log.error("invoice email for record %s not sent: %s", record_id, exc)
        return outbox.failed(f"invoice email for record {record_id} not sent: {exc}")


def send_invoice(record_id: int) -> str:
    """Send the invoice email to the Mautic contact of the invoice's contact; none linked: skip."""
    with session_scope() as session:
        record = session.get(Record, record_id)
        if record is None or record.kind != "invoice":
            return "gone"
        data: dict[str, Any] = dict(record.data or {})
        mautic_id = session.execute(
            select(Link.external_id).where(Link.record_id == data.get("contact_id"), Link.system == "mautic")
        ).scalar_one_or_none()
    if mautic_id is None:
        log.info("invoice %s: contact %s not in Mautic, no email", record_id, data.get("contact_id"))
        return "no contact"
    connector_for("mautic").send_email(
        invoice_email_id(), int(mautic_id), ref=f"invoice:{record_id}", tokens=invoice_tokens(data)
    )
    return "sent"


def invoice_tokens(data: dict[str, Any]) -> dict[str, str]:
    """What the template shows; the total is ERPNext's once it has reported, else the lines' own sum."""
    total = data.get("total")
    if total is None:
        total = gross_total(lines(data.get("lines")))
    return {
        "invoice_number": str(data.get("number") or ""),
        "invoice_total": f"{float(total):.2f}",
        "invoice_currency": str(data.get("currency") or ""),
        "invoice_due_date": str(data.get("due_date") or ""),
    }
