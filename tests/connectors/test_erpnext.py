"""The ERPNext connector over loopback HTTP, with the real store (idempotency keys, marker locks) and Redis
(breakers). Tests taking `target` run against the simulator and the real server alike (with -m peers or
SYNCENGINE_TEST_PEERS=erpnext); those taking `sim` need the simulator's faults, seeded stamps or request log.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from connectors.erpnext import ERPNextConnector, FrappeError, frappe_error
from connectors.erpnext_mapping import CustomerAdapter
from syncengine.breaker import CLOSED, OPEN, BreakerPolicy
from syncengine.db import session_scope
from syncengine.errors import AuthExpired, CircuitOpen, Permanent, Retryable
from syncengine.models import IdempotencyKey
from tests.connectors import helpers
from tests.connectors.conftest import ERPNEXT_TEST_KEY as KEY
from tests.connectors.conftest import ERPNEXT_TEST_SECRET as SECRET
from tests.connectors.erpnext_targets import TARGETS, Target, target_for
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


@pytest.fixture(params=TARGETS)
def target(request) -> Iterator[Target]:
    yield from target_for(request.param)


# --- listing -----------------------------------------------------------------------------------------


def test_lists_three_pages_with_limit_and_start(target):
    conn, prefix = target.connector(), target.unique("Page")
    for i in range(1, 7):
        conn.create("Customer", {"customer_name": f"{prefix} C{i}"})
    mine = [["customer_name", "like", f"{prefix}%"]]
    listing = conn.iter_documents("Customer", filters=mine, fields=["name", "modified"], page_size=3)
    rows = [next(listing) for _ in range(2)]
    conn.update("Customer", f"{prefix} C1", {"tax_id": "FR1"})  # listed: moves no other row
    rows += list(listing)
    assert [r["name"] for r in rows] == [f"{prefix} C{i}" for i in range(1, 7)]  # by name, each once
    if target.sim is not None:  # keyed by name, a short page ends it
        pages = [
            json.loads(e["query"]["filters"]) for e in target.sim.requests_log("GET", f"{DOCS}/Customer")
        ]
        assert [p[1:] for p in pages] == [
            [],
            [["name", ">", f"{prefix} C3"]],
            [["name", ">", f"{prefix} C6"]],
        ]
        first = target.sim.requests_log("GET", f"{DOCS}/Customer")[0]
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


def test_the_sweep_lists_every_row_of_a_shared_timestamp_while_rows_of_it_are_edited(sim, erp):
    # An import stamps many rows with one `modified`: 25 rows in one tie, pages of 10. Edits during the sweep
    # move a listed row and an unlisted one to the end; an offset inside the tie would skip a row here.
    tied = [{"customer_name": f"Tie{i:02d}", "modified": "2024-05-01 09:00:00"} for i in range(25)]
    sim.seed({"Customer": tied})
    conn = erp()
    sweep = conn.iter_modified("Customer", "2024-05-01 00:00:00", fields=["name"], page_size=10)
    seen = [next(sweep)["name"] for _ in range(12)]
    conn.update("Customer", "Tie03", {"tax_id": "DE3"})  # listed already: comes again at the end
    conn.update("Customer", "Tie20", {"tax_id": "DE20"})  # not listed yet: listed once, at the end
    seen += [r["name"] for r in sweep]
    assert set(seen) >= {f"Tie{i:02d}" for i in range(25)}
    assert seen.count("Tie03") == 2 and seen.count("Tie20") == 1 and seen.count("Tie11") == 1
    pages = [
        json.loads(e["query"].get("or_filters") or "null")
        for e in sim.requests_log("GET", f"{DOCS}/Customer")
    ]
    assert pages[0] is None and pages[1] == [["modified", ">", "2024-05-01 09:00:00"], ["name", ">", "Tie09"]]


def test_the_keyed_sweep_pages_past_the_last_modified_and_name_on_both_servers(target):
    # The (modified, name) key as Frappe takes it: `filters` and `or_filters` together, ANDed as one group.
    conn, prefix = target.connector(), target.unique("Keyed")
    since = datetime.now(UTC) - timedelta(seconds=1)
    names = [conn.create("Customer", {"customer_name": f"{prefix} {i}"})["name"] for i in range(5)]
    mine = [["customer_name", "like", f"{prefix}%"]]
    rows = conn.iter_modified("Customer", since, fields=["name"], filters=mine, page_size=2)
    sweep = (r["name"] for r in rows)
    listed = [next(sweep) for _ in range(3)]
    conn.update("Customer", names[1], {"tax_id": "FR1"})  # listed: moves to the end, listed again there
    listed += list(sweep)
    assert listed == [*names, names[1]]


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


def test_a_customers_group_is_dated_by_the_version_that_set_its_value(target):
    """A Customer read back carries the `modified` of its newest save; its Version log (Customer tracks
    changes) says when each value came, so a name set before a later VAT edit keeps its own date."""
    conn = target.connector()
    adapter = CustomerAdapter(conn.site_timezone)
    name = conn.create("Customer", {"customer_name": target.unique("Versions"), "customer_type": "Individual",
                                    "tax_id": "FR00000000001"})["name"]  # fmt: skip
    time.sleep(0.05)
    renamed = target.unique("Versions renamed")
    phoned = adapter.to_change(conn.update("Customer", name, {"customer_name": renamed}))
    time.sleep(0.05)
    later = adapter.to_change(conn.update("Customer", name, {"tax_id": "FR00000000002"}))
    assert later.remote_updated_at > phoned.remote_updated_at
    groups = {"identity": {n: later.fields[n] for n in ("name", "email", "phone")},
              "tax": {"vat_number": later.fields["vat_number"]}}  # fmt: skip
    dates = adapter.dates(conn, name, groups)
    assert phoned.remote_updated_at <= dates["identity"] < later.remote_updated_at
    assert dates["tax"] >= later.remote_updated_at


def test_validation_error_is_permanent_with_its_message_and_not_retried(target):
    conn = target.connector()
    customer = conn.create("Customer", {"customer_name": target.unique("Bad Invoice Co")})["name"]
    bad = {**INVOICE, "customer": customer, "items": [{"item_code": "NOPE-404", "qty": 1, "rate": 1}]}
    eff = effect("create_invoice")
    with pytest.raises(FrappeError) as caught:
        conn.ensure_sales_invoice(eff, bad, number=target.unique("INV-BAD"))
    # ERPNext reads the row's Item before it checks links: 404, not a 417 LinkValidationError.
    assert isinstance(caught.value, Permanent) and caught.value.status == 404
    assert caught.value.exc_type == "DoesNotExistError" and "Item NOPE-404 not found" in str(caught.value)
    if target.sim is not None:
        assert count(target.sim, "POST", f"{DOCS}/Sales Invoice") == 1
    assert phase(eff.key) == "failed"


def test_frappe_error_shapes_v1_and_v2():
    v1 = {
        "exc_type": "ValidationError",
        "_server_messages": json.dumps([json.dumps({"message": "Due Date cannot be <b>before</b> Posting"})]),
    }
    assert frappe_error(v1) == ("ValidationError", "Due Date cannot be before Posting")
    v2 = {"errors": [{"type": "DuplicateEntryError", "message": "Item SKU1 already exists"}]}
    assert frappe_error(v2) == ("DuplicateEntryError", "Item SKU1 already exists")
    # As the real server answered a Sales Invoice whose tax row had no account: the error is linked with an
    # unrelated alert, the reason is in `messages`.
    mandatory = {
        "errors": [{"type": "MandatoryError", "title": "Message", "alert": 1,
                    "message": "Item Price added for SKU1 in Price List Standard Selling"}],
        "messages": [{"title": "Message", "message": "Error: <strong>Sales Taxes and Charges</strong> "
                                                    "Row #1: Value missing for: Account Head"}],
    }  # fmt: skip
    assert frappe_error(mandatory) == (
        "MandatoryError",
        "Error: Sales Taxes and Charges Row #1: Value missing for: Account Head",
    )
    assert frappe_error({"errors": [{"type": "TypeError"}]}) == ("TypeError", "")  # a 500 has no message


def test_wrong_secret_is_auth_expired(target):
    conn = target.connector()
    conn._secret = type(conn._secret)("wrong")
    with pytest.raises(AuthExpired):
        conn.get("Company", target.company)
    if target.sim is not None:
        assert count(target.sim, "GET") == 1


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


def an_invoice(target: Target, conn: ERPNextConnector) -> dict[str, Any]:
    """INVOICE for a new customer and item of this target."""
    customer = conn.create("Customer", {"customer_name": target.unique("Invoice Co")})["name"]
    code = target.unique("SKU").replace(" ", "-")
    conn.create("Item", {"item_code": code, "item_group": "Products", "stock_uom": "Nos", "is_stock_item": 0})
    today = datetime.now(UTC).date()
    dates = {"posting_date": today.isoformat(), "due_date": (today + timedelta(days=30)).isoformat()}
    return {**INVOICE, **dates, "customer": customer, "items": [{"item_code": code, "qty": 2, "rate": 50}]}


def test_sales_invoice_marker_in_remarks_is_found_by_a_second_effect(target):
    conn = target.connector(invoice_marker="remarks")
    invoice, number = an_invoice(target, conn), target.unique("INV")
    first = conn.ensure_sales_invoice(effect("create_invoice"), invoice, number=number, submit=False)
    second = conn.ensure_sales_invoice(effect("create_invoice"), invoice, number=number, submit=False)
    assert first["name"] == second["name"] and f"[syncengine:{number}]" in first["remarks"]
    assert first["docstatus"] == 0
    if target.sim is not None:
        assert count(target.sim, "POST", f"{DOCS}/Sales Invoice") == 1
    submitted = conn.submit("Sales Invoice", first["name"])
    assert submitted["docstatus"] == 1
    assert conn.submit("Sales Invoice", first["name"])["docstatus"] == 1  # a repeat answers it too


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


def test_duplicate_entry_on_insert_means_it_exists(target, monkeypatch):
    conn = target.connector()
    code = target.unique("SKU").replace(" ", "-")
    item = {"item_code": code, "item_name": "Widget", "item_group": "Products", "stock_uom": "Nos"}
    conn.create("Item", item)
    real, calls = conn.find_one, []

    def raced(*args: Any, **kwargs: Any) -> Any:  # someone creates the Item between our look-up and insert
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(conn, "find_one", raced)
    found = conn.ensure_item(effect("create_item"), {**item, "item_name": "Other"})
    assert found["name"] == code and found["item_name"] == "Widget" and len(calls) == 2


def test_webhook_documents_are_installed_once(target):
    conn = target.connector()
    hook = {
        "webhook_doctype": "Customer",
        "webhook_docevent": "on_update",
        "request_url": f"http://127.0.0.1:9/webhooks/erpnext/{uuid.uuid4().hex}",
        "request_structure": "JSON",
        "webhook_json": '{"name": "{{ doc.name }}"}',
        "enable_security": 1,
        "webhook_secret": "hook-secret",
    }
    first = conn.ensure_webhook(effect("install_webhook"), hook)
    second = conn.ensure_webhook(effect("install_webhook"), hook)
    assert first["name"] == second["name"]
    assert [h["name"] for h in conn.iter_webhooks() if h.get("request_url") == hook["request_url"]] == [
        first["name"]
    ]
    assert conn.delete_webhook(first["name"]) is True


# --- secrets --------------------------------------------------------------------------------------------


def test_no_secret_in_logs_or_errors(target, raw_logs):
    conn = target.connector()
    list(conn.iter_documents("Customer", page_size=1, filters=[["name", "=", "Nobody"]]))
    name = target.unique("Beta")
    conn.ensure_customer(
        effect("create_customer"), {"customer_name": name}, record_id=f"rec-{uuid.uuid4().hex}"
    )
    wrong = target.connector()
    wrong._secret = type(wrong._secret)("x" + target.secret)
    errors = []
    for call in (lambda: conn.get("Customer", "Nobody 404"), lambda: wrong.get("Customer", name)):
        with pytest.raises(Exception) as caught:
            call()
        errors.append(f"{caught.value!s} {caught.value!r}")
    assert any("erpnext GET" in r.getMessage() for r in raw_logs.records)
    for text in (raw_logs.text, *errors, repr(conn.__dict__)):
        assert target.secret not in text


def test_a_customer_is_looked_up_by_marker_or_email_in_one_request_preferring_the_marker(target):
    from connectors.erpnext_mapping import CustomerAdapter
    from connectors.normalise import contact_marker

    email = f"dana-{uuid.uuid4().hex[:8]}@example.test"
    fields = {"email": email, "name": "Dana"}
    conn, adapter = target.connector(), CustomerAdapter()
    by_email = conn.create(
        "Customer", {"customer_name": target.unique("Dana by email"), "email_id": email.upper()}
    )
    by_marker = conn.create("Customer", {"customer_name": target.unique("Dana by marker"),
                                         "custom_syncengine_id": contact_marker(fields)})  # fmt: skip
    before = len(target.sim.requests_log("GET", path_prefix=f"{DOCS}/Customer")) if target.sim else 0
    found = adapter.find(conn, fields)
    assert found["name"] == by_marker["name"]
    if target.sim is not None:  # both look-ups in one list request; the one found is not read again
        assert len(target.sim.requests_log("GET", path_prefix=f"{DOCS}/Customer")) - before == 1
    # found as listed (`*`), it reads as the whole document does
    read, dated = conn.get("Customer", by_marker["name"]), CustomerAdapter(site_timezone=conn.site_timezone)
    assert dated.to_change(found) == dated.to_change(read)

    conn.delete("Customer", by_marker["name"])
    assert adapter.find(conn, fields)["name"] == by_email["name"]  # email matched case-insensitively
    assert adapter.find(conn, {"email": f"nobody-{uuid.uuid4().hex}@example.test", "name": "No"}) is None


def test_many_customers_are_looked_up_in_one_request_as_each_would_be_alone(target, monkeypatch):
    """The look-up of a batch of creates (tasks.push_batch): one list request, and for each the answer it
    would get alone: the marker first, else the email whatever its case, else none."""
    from connectors.erpnext_mapping import CustomerAdapter
    from connectors.normalise import contact_marker

    tag = uuid.uuid4().hex[:8]
    conn, adapter = target.connector(), CustomerAdapter()
    many = [{"email": f"{who}-{tag}@example.test", "name": who} for who in ("ann", "bob", "cy", "dee")]
    ann = {"customer_name": target.unique("Ann"), "email_id": many[0]["email"].upper()}
    by_email = conn.create("Customer", ann)
    marked = conn.create("Customer", {"customer_name": target.unique("Bob"),
                                      "custom_syncengine_id": contact_marker(many[1])})  # fmt: skip
    conn.create("Customer", {"customer_name": target.unique("Bob too"), "email_id": many[1]["email"]})
    sent = helpers.requests_sent(monkeypatch, conn)
    found = adapter.find_many(conn, many)
    assert len(sent) == 1 and sent[0][0] == "GET"
    assert [f and f["name"] for f in found] == [by_email["name"], marked["name"], None, None]
    assert [f and f["name"] for f in (adapter.find(conn, fields) for fields in many)] == [
        f and f["name"] for f in found
    ]


def test_a_sweep_cursor_is_the_stamp_in_utc_and_never_ahead_of_now(sim, erp):
    """ERPNext's stamps are site time (Paris here): the cursor they earn is their UTC instant, and a stamp
    ahead of our clock earns now, so the next sweep does not skip what changes meanwhile."""
    from tasks.sweep_sources import SOURCES

    conn, source = erp(), SOURCES[("erpnext", "contact")]
    winter, summer = {"modified": "2026-01-15 10:00:00.000001"}, {"modified": "2026-07-15 10:00:00"}
    assert source.modified(conn, winter) == datetime(2026, 1, 15, 9, 0, 0, 1, UTC)
    assert source.modified(conn, summer) == datetime(2026, 7, 15, 8, 0, tzinfo=UTC)
    ahead = (datetime.now(UTC) + timedelta(hours=3)).astimezone(conn.site_timezone)
    before = datetime.now(UTC)
    capped = source.modified(conn, {"modified": ahead.strftime("%Y-%m-%d %H:%M:%S.%f")})
    assert before <= capped <= datetime.now(UTC)
    assert conn.frappe_time(datetime(2026, 1, 15, 9, 0, tzinfo=UTC)) == "2026-01-15 10:00:00.000000"
