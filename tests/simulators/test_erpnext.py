"""ERPNext v15: token auth, v1/v2 envelopes and paging, Frappe filters, naming, invoices paid by payments."""

from __future__ import annotations

import json

import pytest
import requests

from simulators.erpnext import ERPNextSimulator

TOKEN = {"Authorization": "token erp-api-key:erp-api-secret"}
PE_METHOD = "erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry"


@pytest.fixture()
def erp(serve):
    sim = ERPNextSimulator(custom_fields={"Customer": ["custom_external_id"]})
    base = serve(sim).url

    def call(method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
        return requests.request(
            method, base + path, headers=TOKEN if headers is None else headers, timeout=5, **kw
        )

    sim.seed(
        {
            "Customer": [{"customer_name": "Acme"}],
            "Item": [
                {"item_code": "SKU1", "item_name": "Widget", "item_group": "Products", "stock_uom": "Nos"}
            ],
        }
    )
    return sim, call


def invoice(call, total: float = 100, **extra) -> dict:
    body = {
        "customer": "Acme",
        "set_posting_time": 1,
        "posting_date": "2026-11-20",
        "due_date": "2030-01-31",
        "items": [{"item_code": "SKU1", "qty": 1, "rate": total}],
        **extra,
    }
    r = call("POST", "/api/v2/document/Sales Invoice", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_auth(erp):
    _, call = erp
    assert call("GET", "/api/v2/document/Customer").status_code == 200
    bad = call("GET", "/api/v2/document/Customer", headers={"Authorization": "token erp-api-key:wrong"})
    assert bad.status_code == 401 and bad.json()["errors"][0]["type"] == "AuthenticationError"
    v1 = call("GET", "/api/resource/Customer", headers={"Authorization": "token nobody:wrong"})
    assert v1.status_code == 401 and v1.json()["exc_type"] == "AuthenticationError"
    guest = call("GET", "/api/v2/document/Customer", headers={})
    assert guest.status_code == 403 and guest.json()["errors"][0]["type"] == "PermissionError"
    basic = call("GET", "/api/v2/document/Customer", headers={}, auth=("erp-api-key", "erp-api-secret"))
    assert basic.status_code == 200


def test_permissions_per_doctype(erp):
    sim, call = erp
    sim.add_user("sales-key", "sales-secret", user="sales@example.com", doctypes=["Customer"])
    h = {"Authorization": "token sales-key:sales-secret"}
    assert call("GET", "/api/v2/document/Customer", headers=h).status_code == 200
    denied = call("GET", "/api/v2/document/Sales Invoice", headers=h)
    assert denied.status_code == 403 and denied.json()["errors"][0]["type"] == "PermissionError"


def test_naming_and_duplicates(erp):
    _, call = erp
    again = call("POST", "/api/v2/document/Customer", json={"customer_name": "Acme"}).json()["data"]
    assert again["name"] == "Acme - 1"  # ERPNext renames a taken customer name instead of failing
    explicit = call("POST", "/api/v2/document/Customer", json={"name": "CUST-X", "customer_name": "X"}).json()
    assert explicit["data"]["name"] == "CUST-X"
    dup = call("POST", "/api/v2/document/Customer", json={"name": "CUST-X", "customer_name": "Y"})
    assert dup.status_code == 409 and dup.json()["errors"][0]["type"] == "DuplicateEntryError"
    item = {"item_code": "SKU1", "item_group": "Products", "stock_uom": "Nos"}
    assert call("POST", "/api/v2/document/Item", json=item).status_code == 409
    v1 = call("POST", "/api/resource/Item", json=item)
    assert v1.status_code == 409 and v1.json()["exc_type"] == "DuplicateEntryError"
    assert "already exists" in json.loads(json.loads(v1.json()["_server_messages"])[0])["message"]


def test_an_item_code_taken_in_another_case_is_a_duplicate(erp):
    """MariaDB's collation ignores case: "sku1" names the same Item as "SKU1" (the engine creates Items
    first and reads such a conflict back, so a simulator that took it would make a second Item)."""
    _, call = erp
    item = {"item_code": "sku1", "item_group": "Products", "stock_uom": "Nos"}
    dup = call("POST", "/api/v2/document/Item", json=item)
    assert dup.status_code == 409 and dup.json()["errors"][0]["type"] == "DuplicateEntryError"
    listed = call("GET", "/api/v2/document/Item", params={"filters": '[["item_code", "=", "sku1"]]'})
    assert [row["name"] for row in listed.json()["data"]] == ["SKU1"]


def test_validation_error_shapes(erp):
    _, call = erp
    v2 = call(
        "POST",
        "/api/v2/document/Sales Invoice",
        json={"customer": "Nobody", "items": [{"item_code": "SKU1"}]},
    )
    assert v2.status_code == 417
    assert v2.json()["errors"][0]["type"] == "LinkValidationError"
    body = {"customer": "Acme", "items": [{"item_code": "SKU1"}], "taxes": [{"charge_type": "Actual"}]}
    v1 = call("POST", "/api/resource/Sales Invoice", json=body)
    assert v1.status_code == 417 and v1.json()["exc_type"] == "MandatoryError"
    assert v1.json()["exception"].startswith("frappe.exceptions.MandatoryError")
    printed = [json.loads(m)["message"] for m in json.loads(v1.json()["_server_messages"])]
    assert printed == [
        "Error: <strong>Sales Taxes and Charges</strong> Row #1: Value missing for: Account Head",
        "Error: <strong>Sales Taxes and Charges</strong> Row #1: Value missing for: Description",
    ]
    no_rows = call("POST", "/api/v2/document/Sales Invoice", json={"customer": "Acme", "items": []})
    assert no_rows.status_code == 500 and no_rows.json()["errors"][0]["type"] == "TypeError"  # as ERPNext
    late = call(
        "POST",
        "/api/v2/document/Sales Invoice",
        json={"customer": "Acme", "due_date": "2000-01-01", "items": [{"item_code": "SKU1", "rate": 1}]},
    )
    assert late.status_code == 417 and "Due Date cannot be before Posting Date" in late.text
    missing = call("GET", "/api/v2/document/Customer/Nobody")
    assert missing.status_code == 404 and missing.json()["errors"][0]["type"] == "DoesNotExistError"


def test_v2_and_v1_paging_over_several_pages(erp):
    sim, call = erp
    for i in range(6):
        sim.clock.advance(1)
        call("POST", "/api/v2/document/Customer", json={"customer_name": f"C{i}"})
    order = json.dumps(["name"])
    seen, start = [], 0
    while True:
        page = call(
            "GET",
            "/api/v2/document/Customer",
            params={"fields": order, "order_by": "creation asc", "limit": 3, "start": start},
        ).json()["data"]
        if not page:
            break
        seen += [r["name"] for r in page]
        start += 3
    assert seen == ["Acme", "C0", "C1", "C2", "C3", "C4", "C5"] and start == 9
    v1 = [
        call(
            "GET",
            "/api/resource/Customer",
            params={"limit_page_length": 2, "limit_start": s, "order_by": "creation asc"},
        ).json()["data"]
        for s in (0, 2, 4, 6)
    ]
    assert [len(p) for p in v1] == [2, 2, 2, 1]
    assert len(call("GET", "/api/v2/document/Customer").json()["data"]) == 7  # default limit 20
    assert len(call("GET", "/api/resource/Customer", params={"limit_page_length": 0}).json()["data"]) == 7


def test_sweep_filters_on_modified(erp):
    sim, call = erp
    sim.clock.advance(10)
    mark = sim.now_str()
    sim.clock.advance(1)
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Fresh"})
    fields = json.dumps(["name", "modified"])
    for filters in (
        [["modified", ">=", mark]],
        [["Customer", "modified", ">", mark]],
        {"modified": [">", mark]},
    ):
        rows = call(
            "GET",
            "/api/v2/document/Customer",
            params={"fields": fields, "filters": json.dumps(filters), "order_by": "modified asc"},
        ).json()["data"]
        assert [r["name"] for r in rows] == ["Fresh"]
    by_name = call(
        "GET", "/api/v2/document/Customer", params={"filters": json.dumps({"customer_name": "acme"})}
    )
    assert [r["name"] for r in by_name.json()["data"]] == ["Acme"]  # MariaDB compares case-insensitively
    assert call(
        "GET", "/api/v2/doctype/Customer/count", params={"filters": json.dumps([["modified", ">", mark]])}
    ).json() == {"data": 1}
    count = call("GET", "/api/method/frappe.client.get_count", params={"doctype": "Customer"})
    assert count.json() == {"message": 2}


def test_custom_fields_are_stored_unknown_ones_dropped(erp):
    _, call = erp
    doc = call(
        "POST",
        "/api/v2/document/Customer",
        json={"customer_name": "Z", "custom_external_id": "rec-1", "no_such_field": 1},
    ).json()["data"]
    assert doc["custom_external_id"] == "rec-1" and "no_such_field" not in doc
    found = call(
        "GET",
        "/api/v2/document/Customer",
        params={"filters": json.dumps([["custom_external_id", "=", "rec-1"]])},
    ).json()["data"]
    assert found == [{"name": "Z"}]
    bad = call(
        "GET", "/api/v2/document/Customer", params={"filters": json.dumps([["no_such_field", "=", 1]])}
    )
    assert bad.status_code == 417 and bad.json()["errors"][0]["type"] == "DataError"


def test_invoice_totals_submit_and_payment(erp):
    _, call = erp
    draft = invoice(
        call,
        100,
        taxes=[{"charge_type": "On Net Total", "account_head": "VAT - MC", "description": "VAT", "rate": 19}],
    )
    assert draft["name"].startswith("ACC-SINV-") and draft["status"] == "Draft"
    assert (draft["net_total"], draft["total_taxes_and_charges"], draft["grand_total"]) == (100, 19, 119)
    early = call("GET", f"/api/v2/method/{PE_METHOD}", params={"dt": "Sales Invoice", "dn": draft["name"]})
    assert early.status_code == 417
    done = call("POST", f"/api/v2/document/Sales Invoice/{draft['name']}/method/submit").json()
    assert (
        done["data"]["docstatus"] == 1
        and done["data"]["status"] == "Unpaid"
        and done["docs"][0] == done["data"]
    )

    args = {"dt": "Sales Invoice", "dn": draft["name"], "party_amount": 50}
    over_get = call("GET", f"/api/v2/method/{PE_METHOD}", params=args)  # party_amount arrives as "50"
    assert over_get.status_code == 500 and over_get.json()["errors"][0]["type"] == "TypeError"
    pe = call("POST", f"/api/v2/method/{PE_METHOD}", json=args).json()["data"]
    assert pe["paid_amount"] == 50 and pe["references"][0]["allocated_amount"] == 50 and pe["paid_to"]
    no_ref = call("POST", "/api/v2/document/Payment Entry", json={**pe, "docstatus": 1})
    assert no_ref.status_code == 417 and "Reference No" in no_ref.text
    pe.update(reference_no="rev-tx-1", reference_date="2026-11-25", docstatus=1)
    assert call("POST", "/api/v2/document/Payment Entry", json=pe).status_code == 200
    assert (
        call("GET", f"/api/v2/document/Sales Invoice/{draft['name']}").json()["data"]["status"]
        == "Partly Paid"
    )

    rest = call("GET", f"/api/method/{PE_METHOD}", params={"dt": "Sales Invoice", "dn": draft["name"]})
    pe2 = {**rest.json()["message"], "reference_no": "rev-tx-2", "reference_date": "2026-11-25"}
    saved = call("POST", "/api/v2/document/Payment Entry", json=pe2).json()["data"]
    call("POST", f"/api/v2/document/Payment Entry/{saved['name']}/method/submit")
    paid = call("GET", f"/api/v2/document/Sales Invoice/{draft['name']}").json()["data"]
    assert (paid["status"], paid["outstanding_amount"]) == ("Paid", 0)
    blocked = call("POST", f"/api/v2/document/Sales Invoice/{draft['name']}/method/cancel")
    assert blocked.status_code == 417 and blocked.json()["errors"][0]["type"] == "LinkExistsError"
    call("POST", f"/api/v2/document/Payment Entry/{saved['name']}/method/cancel")
    assert (
        call("GET", f"/api/v2/document/Sales Invoice/{draft['name']}").json()["data"]["status"]
        == "Partly Paid"
    )


def test_updates_locking_and_submitted_documents(erp):
    _, call = erp
    cust = call("GET", "/api/v2/document/Customer/Acme").json()["data"]
    changed = call("PATCH", "/api/v2/document/Customer/Acme", json={"territory": "Europe"}).json()["data"]
    assert changed["territory"] == "Europe" and changed["modified"] > cust["modified"]
    stale = call(
        "PUT", "/api/v2/document/Customer/Acme", json={"territory": "Asia", "modified": cust["modified"]}
    )
    assert stale.status_code == 417 and stale.json()["errors"][0]["type"] == "TimestampMismatchError"
    inv = invoice(call, 10, docstatus=1)
    edit = call("PATCH", f"/api/v2/document/Sales Invoice/{inv['name']}", json={"due_date": "2031-01-01"})
    assert edit.status_code == 417 and edit.json()["errors"][0]["type"] == "UpdateAfterSubmitError"
    assert call("DELETE", f"/api/v2/document/Sales Invoice/{inv['name']}").status_code == 417
    cancelled = call("PUT", f"/api/v2/document/Sales Invoice/{inv['name']}", json={"docstatus": 2}).json()[
        "data"
    ]
    assert cancelled["status"] == "Cancelled"


def test_delete_writes_deleted_document(erp):
    _, call = erp
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Gone"})
    r = call("DELETE", "/api/v2/document/Customer/Gone")
    assert r.status_code == 202 and r.json() == {"data": "ok"}
    rows = call(
        "GET",
        "/api/v2/document/Deleted Document",
        params={"fields": json.dumps(["deleted_name", "deleted_doctype", "data"])},
    ).json()["data"]
    assert rows[0]["deleted_name"] == "Gone" and json.loads(rows[0]["data"])["customer_name"] == "Gone"
    assert call("GET", "/api/v2/document/Customer/Gone").status_code == 404
    invoice(call, 5)
    linked = call("DELETE", "/api/resource/Customer/Acme")
    assert linked.status_code == 417 and linked.json()["exc_type"] == "LinkExistsError"


def test_rate_limit_fault_answers_like_frappe(erp):
    sim, call = erp
    sim.set_faults(rate_limit={"limit": 2, "window": 60})
    assert [call("GET", "/api/v2/document/Customer").status_code for _ in range(3)] == [200, 200, 429]
    r = call("GET", "/api/v2/document/Customer")
    assert r.text == "Too Many Requests" and int(r.headers["Retry-After"]) >= 1
    assert r.headers["X-RateLimit-Remaining"] == "0"


def test_a_listing_ordered_by_a_column_of_numbers_and_text_sorts_without_error():
    """Hash names (Deleted Document) may read as a number ("1e40a7c9b2" is 1e40...) beside ones that do not;
    the delete sweep lists them ordered by `modified` then `name`, and must not meet a 500."""
    from simulators.erpnext.query import select

    docs = [{"name": name, "modified": "2026-12-07 10:00:00"} for name in ("1e40a7c9b2", "a3f0b1c2d3", "123")]
    known = frozenset({"name", "modified"})
    listed = select(docs, "Deleted Document", {}, known, order_by="modified asc, name asc")
    assert [d["name"] for d in listed] == ["123", "1e40a7c9b2", "a3f0b1c2d3"]
