"""The push task's retry rule for a record waiting on another: it waits with a growing backoff, and gives
up after WAIT_RETRIES instead of retrying forever when the other record never arrives."""

from __future__ import annotations

import uuid

import pytest
from celery.exceptions import Retry

from syncengine.db import session_scope
from syncengine.models import Record
from tasks.push import WAIT_RETRIES, push


@pytest.fixture()
def invoice_without_its_contact() -> int:
    """An invoice whose contact exists in the hub but is linked to no Invoice Ninja client."""
    with session_scope() as session:
        email = f"{uuid.uuid4().hex[:8]}@example.test"
        contact = Record(kind="contact", data={"email": email}, field_meta={}, version=1)
        session.add(contact)
        session.flush()
        invoice = Record(
            kind="invoice", field_meta={}, version=1,
            data={"number": f"INV-{uuid.uuid4().hex[:6]}", "date": "2026-11-25", "contact_id": contact.id,
                  "lines": [{"description": "Work", "quantity": 1, "unit_price": 100}]},
        )  # fmt: skip
        session.add(invoice)
        session.flush()
        return invoice.id


def test_a_push_waiting_for_its_contact_retries_with_backoff_then_gives_up(invoice_without_its_contact):
    with pytest.raises(Retry) as waiting:
        push.apply((invoice_without_its_contact, "invoiceninja"), retries=0, throw=True)
    assert "not in Invoice Ninja yet" in str(waiting.value.exc)
    assert waiting.value.when is not None and float(waiting.value.when) <= 5  # the first backoff step

    result = push.apply((invoice_without_its_contact, "invoiceninja"), retries=WAIT_RETRIES, throw=True)
    assert result.get() == "gave up"
