"""The ERPNext connector against its simulator over loopback HTTP, with the real store (idempotency keys,
marker locks) and Redis (breakers)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from connectors.erpnext import ERPNextConnector, FrappeError, StaleDocument, frappe_error
from syncengine.breaker import CLOSED, OPEN, BreakerPolicy
from syncengine.db import session_scope
from syncengine.errors import AuthExpired, CircuitOpen, Permanent, Retryable
from syncengine.models import IdempotencyKey
from tests.connectors import helpers
from tests.connectors.conftest import ERPNEXT_TEST_KEY as KEY
from tests.connectors.conftest import ERPNEXT_TEST_SECRET as SECRET
from tests.connectors.helpers import Sleeps, count, run_concurrently

effect = partial(helpers.effect, "erpnext")
breaker = partial(helpers.breaker, "erpnext")


LOST = {"count": 1, "delay": 0.6}  # the effect lands; the answer would come after the client gave up
SHORT_TIMEOUT = (2.0, 0.3)
DOCS = "/api/v2/document"
INVOICE = {
    "customer": "Acme",
    "posting_date": "2024-05-01",
    "due_date": "2024-05-31",
    "set_posting_time": 1,
    "items": [{"item_code": "SKU1", "qty": 2, "rate": 50}],
}


def phase(key: str) -> str:
    with session_scope() as session:
        return session.execute(select(IdempotencyKey.phase).where(IdempotencyKey.key == key)).scalar_one()


@pytest.fixture()
def sim(erpnext_sim):
    sim = erpnext_sim[0]
    sim.seed(
        {
            "Customer": [{"customer_name": "Acme"}],
            "Item": [
                {"item_code": "SKU1", "item_name": "Widget", "item_group": "Products", "stock_uom": "Nos"}
            ],
        }
    )
    sim.log.clear()
    return sim


@pytest.fixture()
def erp(erpnext_sim) -> Callable[..., ERPNextConnector]:
    """`erp(**kwargs)`: a connector to the simulator, with its own breaker and a recording sleep."""

    def make(**kwargs: Any) -> ERPNextConnector:
        kwargs.setdefault("breaker", breaker())
        kwargs.setdefault("sleep", Sleeps())
        kwargs.setdefault("company", "My Co")
        return ERPNextConnector(erpnext_sim[1], api_key=KEY, api_secret=SECRET, **kwargs)

    return make


def starts(sim, path: str) -> list[int]:
    return [int(e["query"]["start"]) for e in sim.requests_log("GET", path)]


# --- listing -----------------------------------------------------------------------------------------


def test_lists_three_pages_with_limit_and_start(sim, erp):
    sim.seed(
        {"Customer": [{"customer_name": f"C{i}", "modified": f"2024-05-0{i} 10:00:00"} for i in range(1, 7)]}
    )
    rows = list(erp().iter_documents("Customer", fields=["name", "modified"], page_size=3))
    assert [r["name"] for r in rows] == [f"C{i}" for i in range(1, 7)] + ["Acme"]  # modified asc
    assert starts(sim, f"{DOCS}/Customer") == [0, 3, 6]
    first = sim.requests_log("GET")[0]
    assert first["query"]["limit"] == "3" and json.loads(first["query"]["fields"]) == ["name", "modified"]
    assert first["headers"]["Authorization"] == f"token {KEY}:{SECRET}"


def test_sweep_returns_only_changed_documents_and_skips_none_when_one_changes_meanwhile(sim, erp):
    old = [{"customer_name": f"Old{i}", "modified": f"2024-04-0{i} 09:00:00"} for i in range(1, 4)]
    new = [{"customer_name": f"New{i}", "modified": f"2024-05-0{i} 09:00:00"} for i in range(1, 6)]
    new.append({"customer_name": "New6", "modified": "2024-05-05 09:00:00"})  # a tie at a page boundary
    sim.seed({"Customer": old + new})
    conn = erp()
    sweep = conn.iter_modified("Customer", "2024-05-01 00:00:00", fields=["name", "modified"], page_size=2)
    seen = [next(sweep)["name"], next(sweep)["name"]]
    conn.update("Customer", "New1", {"tax_id": "DE1"})  # moves to the end of the order mid-sweep
    seen += [r["name"] for r in sweep]
    assert set(seen) == {f"New{i}" for i in range(1, 7)} | {"Acme"}  # Acme: seeded now, also changed
    assert not any(name.startswith("Old") for name in seen)
    assert seen.count("New1") == 2  # seen again with its new `modified`, nothing skipped
    query = sim.requests_log("GET", f"{DOCS}/Customer")[0]["query"]
    assert json.loads(query["filters"]) == [["modified", ">=", "2024-05-01 00:00:00"]]
    assert query["order_by"] == "modified asc, name asc"
    assert len(sim.requests_log("GET", f"{DOCS}/Customer")) >= 3


def test_deleted_documents_are_listed_for_the_delete_sweep(sim, erp):
    conn = erp()
    since = conn.frappe_time(datetime.now(UTC))
    conn.create("Customer", {"customer_name": "Gone"})
    assert conn.delete("Customer", "Gone") is True
    assert conn.delete("Customer", "Gone") is False  # a repeat after a lost answer is harmless
    rows = list(conn.iter_deleted(since, "Customer"))
    assert [(r["deleted_doctype"], r["deleted_name"]) for r in rows] == [("Customer", "Gone")]


# --- retries, breaker, classification ----------------------------------------------------------------


def test_429_retry_after_is_waited_out(sim, erp):
    sleeps = Sleeps()
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 2})
    assert erp(sleep=sleeps).get("Customer", "Acme")["name"] == "Acme"
    assert sleeps == [2.0]
    assert count(sim, "GET", f"{DOCS}/Customer/Acme") == 2


def test_500_storm_opens_the_breaker_then_one_probe_among_8_workers_closes_it(sim, erp):
    policy = BreakerPolicy(threshold=3, window=30, cooldown=0.5)
    name = f"erpnext-test-{uuid.uuid4().hex}"
    sim.set_faults(fixed_status=500)
    conn = erp(breaker=breaker(policy, name))
    with pytest.raises(Retryable):
        conn.get("Customer", "Acme")  # 3 attempts, 3 failures: open
    with pytest.raises(CircuitOpen):
        conn.get("Customer", "Acme")  # nothing sent
    assert conn.breaker.state() == OPEN and count(sim, "GET") == 3

    sim.clear_faults()
    sim.set_faults(latency_ms=300)  # the probe is still in flight while the others try
    time.sleep(0.6)
    before = len(sim.requests_log())
    outcomes = run_concurrently(8, lambda: erp(breaker=breaker(policy, name)).get("Customer", "Acme"))
    assert sorted(outcomes) == ["CircuitOpen"] * 7 + ["ok"]
    assert len(sim.requests_log()) - before == 1
    assert conn.breaker.state() == CLOSED
    assert conn.get("Customer", "Acme")["name"] == "Acme"


def test_validation_error_is_permanent_with_its_message_and_not_retried(sim, erp):
    bad = {**INVOICE, "items": [{"item_code": "NOPE", "qty": 1, "rate": 1}]}
    eff = effect("create_invoice")
    with pytest.raises(FrappeError) as caught:
        erp().ensure_sales_invoice(eff, bad, number="INV-BAD")
    assert isinstance(caught.value, Permanent) and caught.value.status == 417
    assert caught.value.exc_type == "LinkValidationError"
    assert "Could not find Row #1: Item Code: NOPE" in str(caught.value)
    assert count(sim, "POST") == 1
    assert phase(eff.key) == "failed"


def test_frappe_error_shapes_v1_and_v2():
    v1 = {
        "exc_type": "ValidationError",
        "_server_messages": json.dumps([json.dumps({"message": "Due Date cannot be <b>before</b> Posting"})]),
    }
    assert frappe_error(v1) == ("ValidationError", "Due Date cannot be before Posting")
    v2 = {"errors": [{"type": "DuplicateEntryError", "message": "Item SKU1 already exists"}]}
    assert frappe_error(v2) == ("DuplicateEntryError", "Item SKU1 already exists")


def test_wrong_secret_is_auth_expired(sim, erpnext_sim):
    conn = ERPNextConnector(
        erpnext_sim[1], api_key=KEY, api_secret="wrong", breaker=breaker(), sleep=Sleeps()
    )
    with pytest.raises(AuthExpired):
        conn.get("Customer", "Acme")
    assert count(sim, "GET") == 1


def test_stale_update_is_retryable_with_the_current_document(sim, erp):
    conn = erp()
    read = conn.get("Customer", "Acme")
    conn.update("Customer", "Acme", {"tax_id": "DE123"})  # someone else saves in between
    with pytest.raises(StaleDocument) as caught:
        conn.update("Customer", "Acme", {"website": "https://acme.test"}, modified=read["modified"])
    assert isinstance(caught.value, Retryable) and caught.value.current["tax_id"] == "DE123"


# --- creates that happen once --------------------------------------------------------------------------


def lose_next(sim, doctype: str) -> None:
    sim.set_faults(lose_response=LOST, match_method="POST", match_path=f"{DOCS}/{doctype}")


def test_customer_create_with_a_lost_answer_is_not_duplicated(sim, erp):
    conn = erp()
    conn.timeout = SHORT_TIMEOUT
    lose_next(sim, "Customer")
    eff, body = (
        effect("create_customer"),
        {"customer_name": "Acme"},
    )  # the name is taken: ERPNext would add " - 1"
    # The answer is lost; the marker look-up right after finds what the create made.
    again = conn.ensure_customer(eff, body, record_id="rec-1")
    assert again["name"] == "Acme - 1" and again["custom_syncengine_id"] == "rec-1"
    assert sorted(sim.db["Customer"]) == ["Acme", "Acme - 1"]
    assert count(sim, "POST") == 1 and phase(eff.key) == "finished"
    calls = len(sim.requests_log())
    assert conn.ensure_customer(eff, body, record_id="rec-1") == again  # finished: nothing is called
    assert len(sim.requests_log()) == calls


def test_sales_invoice_create_with_a_lost_answer_is_not_duplicated(sim, erp):
    conn = erp()
    conn.timeout = SHORT_TIMEOUT
    lose_next(sim, "Sales Invoice")
    eff = effect("create_invoice")
    # The answer is lost; the marker look-up right after finds what the create made.
    invoice = conn.ensure_sales_invoice(eff, INVOICE, number="INV-0001")
    assert invoice["docstatus"] == 1 and invoice["custom_syncengine_id"] == "INV-0001"
    assert invoice["grand_total"] == 100
    assert len(sim.db["Sales Invoice"]) == 1 and count(sim, "POST") == 1


def test_sales_invoice_marker_in_remarks_is_found_by_a_second_effect(sim, erp):
    conn = erp(invoice_marker="remarks")
    first = conn.ensure_sales_invoice(effect("create_invoice"), INVOICE, number="INV-0002", submit=False)
    second = conn.ensure_sales_invoice(effect("create_invoice"), INVOICE, number="INV-0002", submit=False)
    assert first["name"] == second["name"] and "[syncengine:INV-0002]" in first["remarks"]
    assert first["docstatus"] == 0 and count(sim, "POST") == 1
    submitted = conn.submit("Sales Invoice", first["name"])
    assert submitted["docstatus"] == 1
    assert conn.submit("Sales Invoice", first["name"])["docstatus"] == 1  # a repeat reads it back


def test_payment_entry_with_a_lost_answer_is_recorded_once(sim, erp):
    invoice = sim.seed({"Sales Invoice": [{**INVOICE, "docstatus": 1}]})["Sales Invoice"][0]
    sim.log.clear()
    conn = erp()
    conn.timeout = SHORT_TIMEOUT
    lose_next(sim, "Payment Entry")
    eff = effect("record_payment")
    args = {"invoice": invoice, "reference_no": "rev-tx-42", "reference_date": "2024-05-02"}
    # The answer is lost; the marker look-up right after finds what the create made.
    entry = conn.ensure_payment_entry(eff, **args)
    assert entry["docstatus"] == 1 and entry["reference_no"] == "rev-tx-42" and entry["paid_amount"] == 100
    assert entry["references"][0]["reference_name"] == invoice
    assert len(sim.db["Payment Entry"]) == 1 and count(sim, "POST", f"{DOCS}/Payment Entry") == 1
    assert count(sim, "POST", "/api/v2/method/erpnext.accounts") == 1  # built once, found the second time
    assert count(sim, "GET", "/api/v2/method/") == 0  # by POST: over GET party_amount is a string (500)
    assert sim.db["Sales Invoice"][invoice]["outstanding_amount"] == 0  # allocated once


def test_duplicate_entry_on_insert_means_it_exists(sim, erp, monkeypatch):
    conn = erp()
    real, calls = conn.find_one, []

    def raced(*args: Any, **kwargs: Any) -> Any:  # someone creates SKU1 between our look-up and insert
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(conn, "find_one", raced)
    item = conn.ensure_item(
        effect("create_item"), {"item_code": "SKU1", "item_group": "Products", "stock_uom": "Nos"}
    )
    assert item["name"] == "SKU1" and item["item_name"] == "Widget"
    assert count(sim, "POST") == 1 and len(sim.db["Item"]) == 1


def test_webhook_documents_are_installed_once(sim, erp):
    conn = erp()
    hook = {
        "webhook_doctype": "Customer",
        "webhook_docevent": "on_update",
        "request_url": "http://127.0.0.1:9/webhooks/erpnext",
        "request_structure": "JSON",
        "webhook_json": '{"name": "{{ doc.name }}"}',
        "enable_security": 1,
        "webhook_secret": "hook-secret",
    }
    first = conn.ensure_webhook(effect("install_webhook"), hook)
    second = conn.ensure_webhook(effect("install_webhook"), hook)
    assert first["name"] == second["name"] and [h["name"] for h in conn.iter_webhooks()] == [first["name"]]
    assert conn.delete_webhook(first["name"]) is True


# --- secrets --------------------------------------------------------------------------------------------


def test_no_secret_in_logs_or_errors(sim, erp, erpnext_sim, raw_logs):
    conn = erp()
    list(conn.iter_documents("Customer", page_size=1))
    conn.ensure_customer(effect("create_customer"), {"customer_name": "Beta"}, record_id="rec-9")
    errors = []
    for call in (
        lambda: conn.get("Customer", "Nobody"),
        lambda: ERPNextConnector(erpnext_sim[1], api_key=KEY, api_secret="x" + SECRET, breaker=breaker()).get(
            "Customer", "Acme"
        ),
    ):
        with pytest.raises(Exception) as caught:
            call()
        errors.append(f"{caught.value!s} {caught.value!r}")
    assert any("erpnext GET" in r.getMessage() for r in raw_logs.records)
    for text in (raw_logs.text, *errors, repr(conn.__dict__)):
        assert SECRET not in text


def test_a_customer_is_looked_up_by_marker_or_email_in_one_request_preferring_the_marker(sim, erp):
    from connectors.erpnext_mapping import CustomerAdapter
    from connectors.normalise import contact_marker

    fields = {"email": "dana@example.test", "name": "Dana"}
    marker = contact_marker(fields)
    sim.seed({"Customer": [
        {"customer_name": "Dana by email", "email_id": "DANA@example.test"},
        {"customer_name": "Dana by marker", "custom_syncengine_id": marker},
    ]})  # fmt: skip
    conn, adapter = erp(), CustomerAdapter()
    lists = len(sim.requests_log("GET", path=f"{DOCS}/Customer"))
    assert adapter.find(conn, fields)["customer_name"] == "Dana by marker"
    assert len(sim.requests_log("GET", path=f"{DOCS}/Customer")) - lists == 1  # both lookups, one request

    sim.db["Customer"].pop("Dana by marker")
    assert adapter.find(conn, fields)["customer_name"] == "Dana by email"  # email matched case-insensitively
    assert adapter.find(conn, {"email": "nobody@example.test", "name": "No"}) is None
