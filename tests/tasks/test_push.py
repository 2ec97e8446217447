"""The push task's retry rule for a record waiting on another: it waits with a growing backoff, and gives
up after WAIT_RETRIES instead of retrying forever when the other record never arrives. And the one rule that
says whether the vendor holds what a push sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.exceptions import Retry

from syncengine.db import session_scope
from syncengine.errors import Permanent
from syncengine.models import Record
from tasks.push import WAIT_RETRIES, Target, held_by, push, refusal


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


# --- a push is done when the vendor holds what we sent (tasks.push.held_by) ---------------------------


def target(system: str, kind: str, fields: dict, adapter: Any = None) -> Target:
    from connectors.adapters import adapter_for

    adapter = adapter or adapter_for(system, kind)
    return Target(12, system, kind, 3, adapter, adapter.carried(fields), "x", None, False, False)


def test_a_field_the_vendor_answers_otherwise_is_refused_with_system_record_and_field():
    from connectors.erpnext_mapping import CustomerAdapter

    paris = CustomerAdapter(site_timezone=ZoneInfo("Europe/Paris"))  # ERPNext stamps are its site's time
    fields = {"name": "Ann Lee", "email": "new@example.test", "phone": "+33 1"}
    sent = target("erpnext", "contact", fields, paris)
    answer = {"name": "Ann Lee", "customer_name": "Ann Lee", "email_id": "OLD@example.test",
              "mobile_no": "+33 1", "modified": "2026-11-25 10:00:00.123456"}  # fmt: skip
    held = held_by(sent, answer, creating=False)
    assert held.refused == {"email": ("new@example.test", "old@example.test")}
    assert held.fields["email"] == "old@example.test" and held.fields["phone"] == "+33 1"
    assert held.at == datetime(2026, 11, 25, 9, 0, 0, 123456, tzinfo=UTC)  # 10:00 in Paris
    assert refusal(sent, held) == (
        "erpnext kept email='old@example.test' (sent 'new@example.test') for contact 12"
    )


def test_values_compare_as_the_mappers_normalise_them_and_a_dropped_field_is_refused():
    sent = target("directus", "product", {"sku": "SKU-1", "name": "Tea", "price": 12.5, "currency": "eur"})
    answer = {
        "id": 7,
        "sku": " SKU-1 ",
        "name": "Tea",
        "price": "12.50",
        "currency": "EUR",
    }  # "12.50": a decimal
    assert held_by(sent, answer, creating=False).refused == {}
    sent = target("directus", "contact", {"email": "a@example.test", "city": "Gdansk"})
    dropped = held_by(sent, {"id": 7, "email": "a@example.test"}, creating=False)  # an unknown field
    assert dropped.refused == {"city": ("Gdansk", None)}


def test_a_create_sends_no_blanks_and_a_group_the_target_owns_is_not_compared():
    sent = target(
        "mautic", "contact", {"email": "a@example.test", "first_name": "Ann", "marketing_consent": True}
    )
    answer = {"id": 5, "dateModified": "2026-11-25T10:00:00+00:00", "doNotContact": [{"channel": "email"}],
              "fields": {"all": {"email": "a@example.test", "firstname": "Ann", "city": "Lyon"}}}  # fmt: skip
    assert held_by(sent, answer, creating=True).refused == {}  # consent is Mautic's; no city sent on a create
    assert held_by(sent, answer, creating=False).refused == {"city": (None, "Lyon")}  # an update clears it


def test_an_answer_the_adapter_cannot_read_is_taken_as_sent():
    sent = target("invoiceninja", "activity", {"ref": "r1", "contact_id": 3, "type": "open"})
    held = held_by(sent, {"id": "c1:r1", "client_id": "c1"}, creating=True)
    assert held.refused == {} and held.fields == sent.fields and held.at is None


def test_a_change_is_pushed_only_to_the_systems_this_deployment_is_connected_to(monkeypatch):
    # given: a business with Mautic but no ERPNext
    from syncengine.records import Merged
    from syncengine.settings import get_settings
    from tasks.dispatch import HandlerContext
    from tasks.sync import defer_pushes

    monkeypatch.delenv("ERPNEXT_URL", raising=False)
    monkeypatch.setenv("MAUTIC_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    ctx = HandlerContext(session=None, event=None)  # type: ignore[arg-type]
    try:
        # when
        defer_pushes(ctx, Merged(record_id=7, version=2, changed=["phone"], targets=["erpnext", "mautic"]))
    finally:
        get_settings.cache_clear()
    # then: one push, to Mautic; none staged for the system that is not there (it could only fail)
    assert [sig.args for sig in ctx.deferred] == [(7, "mautic")]


# --- a create that answers an existing object (tasks.push._own) --------------------------------------------


def test_an_object_a_create_answers_that_is_another_live_records_is_refused_not_linked_twice():
    """Created first where the vendor keeps the marker unique, the answer may be the object another record
    holds (two records of one email): the push fails naming both, rather than link it twice; a deleted
    record's object is taken over, as the look-up would; one of nobody's is this record's."""
    from connectors.adapters import adapter_for
    from syncengine.models import Link
    from tasks.push import _own

    address = f"{uuid.uuid4().hex[:8]}@example.test"
    external_id = str(uuid.uuid4().int % 10**9)
    with session_scope() as session:
        theirs, ours = (
            Record(kind="contact", data={"email": address}, field_meta={}, version=1) for _ in "ab"
        )
        session.add_all([theirs, ours])
        session.flush()
        session.add(Link(record_id=theirs.id, system="mautic", kind="contact", external_id=external_id))
        theirs_id, ours_id = theirs.id, ours.id
    adapter = adapter_for("mautic", "contact")
    pushed = Target(ours_id, "mautic", "contact", 1, adapter, adapter.carried({"email": address}), None, None,
                    False, False)  # fmt: skip

    with pytest.raises(Permanent) as refused:
        _own(pushed, {"id": int(external_id)})
    assert str(refused.value) == (
        f"mautic contact {external_id} holds this contact's marker ({address}) and is record {theirs_id}'s; "
        f"mautic keeps one per marker, so record {ours_id} cannot have its own there: merge the two records"
    )
    nobodys = {"id": uuid.uuid4().int % 10**9 + 10**9}
    assert _own(pushed, nobodys) is nobodys
    with session_scope() as session:
        session.get(Record, theirs_id).deleted_at = datetime.now(UTC)
    assert _own(pushed, {"id": int(external_id)}) == {"id": int(external_id)}
