"""What the engine relies on ERPNext v15 to do, asserted against the simulator and the real server alike
(tests/connectors/erpnext_targets.py): the same test, the same answers. A difference found here is fixed in
the simulator (it follows the vendor) and, where the engine assumed otherwise, in the connector."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.erpnext import FrappeError, StaleDocument
from connectors.erpnext_mapping import CustomerAdapter, ItemAdapter, SalesInvoiceAdapter
from syncengine.idempotency import Attempt
from syncengine.records import dated
from syncengine.settings import get_settings
from syncengine.vendors.erpnext import ITEM_DEFAULTS, MARKER_FIELD, PAYMENT_ENTRY_METHOD
from tests.connectors import helpers
from tests.connectors.erpnext_targets import TARGETS, Target, target_for

DOCS = "/api/v2/document"


@pytest.fixture(params=TARGETS)
def target(request) -> Iterator[Target]:
    yield from target_for(request.param)


@pytest.fixture()
def configured(target: Target, monkeypatch) -> Iterator[Target]:
    """The target as the engine's configured ERPNext (settings read by the adapters: the tax account)."""
    for name, value in target.env().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


def effect(operation: str, request: Any = None) -> Any:
    return helpers.effect("erpnext", operation, request)


def doctype_of(path: str) -> str:
    """A document's path named by its doctype (`/api/v2/document/Contact/X` -> `Contact`)."""
    return path.split("/")[-2] if "/document/" in path else path


def new_item(target: Target, conn: Any) -> str:
    code = target.unique("SKU").replace(" ", "-")
    conn.ensure_item(effect("ensure_item"), {"item_code": code, "item_group": "Products", "stock_uom": "Nos"})
    return code


def new_customer(target: Target, conn: Any, **fields: Any) -> dict[str, Any]:
    body = {"customer_name": target.unique("Contract Co"), **fields}
    return conn.create("Customer", body)


def invoice_body(customer: str, code: str, rate: float = 100.0, **extra: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {
        "customer": customer, "posting_date": today.isoformat(), "set_posting_time": 1,
        "due_date": (today + timedelta(days=30)).isoformat(),
        "items": [{"item_code": code, "qty": 1, "rate": rate}], **extra,
    }  # fmt: skip


# --- time -------------------------------------------------------------------------------------------------


def test_the_site_time_zone_comes_from_the_site_and_its_stamps_become_utc(target):
    conn = target.connector()
    assert conn.site_timezone == ZoneInfo("Europe/Paris")  # both sites run on Paris time
    before = datetime.now(UTC) - timedelta(seconds=1)
    customer = new_customer(target, conn)
    at = conn.aware(customer["modified"])
    assert at.tzinfo is not None and before - timedelta(seconds=5) <= at <= datetime.now(UTC) + timedelta(
        seconds=5
    )
    # A sweep asks in site time for "changed since an instant": the new customer is listed, an hour later not.
    listed = conn.iter_modified(
        "Customer", before, fields=("name",), filters=[["name", "=", customer["name"]]]
    )
    assert [r["name"] for r in listed] == [customer["name"]]
    later = conn.iter_modified(
        "Customer", before + timedelta(hours=1), filters=[["name", "=", customer["name"]]]
    )
    assert list(later) == []


# --- customers --------------------------------------------------------------------------------------------


def test_a_second_customer_with_a_taken_name_is_x_minus_1_and_is_never_found_by_that_name(configured):
    conn = configured.connector()
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    name, emails = configured.unique("Twin Co"), [f"twin-{uuid.uuid4().hex[:8]}@example.test" for _ in "ab"]
    first, second = (adapter.create(conn, {"customer_name": name, "email_id": e}, None) for e in emails)
    assert (first["name"], second["name"]) == (name, f"{name} - 1")
    assert second["customer_name"] == name  # the name people see stays "X"
    assert [adapter.to_change(c).fields["name"] for c in (first, second)] == [name, name]
    assert [adapter.find(conn, {"name": name, "email": e})["name"] for e in emails] == [name, f"{name} - 1"]
    # A third "X" without email is neither of them: a look-up by name would hand it someone else's customer.
    assert adapter.find(conn, {"name": name, "email": None}) is None


def test_email_and_phone_written_by_the_engine_hold_on_the_customer(configured):
    conn = configured.connector()
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    email = f"hold-{uuid.uuid4().hex[:8]}@example.test"
    created = adapter.create(
        conn,
        adapter.to_vendor(
            {
                "name": configured.unique("Hold Co"),
                "email": email,
                "phone": "+33611111111",
                "vat_number": None,
            },
            None,
        ),
        None,
    )
    assert (created["email_id"], created["mobile_no"]) == (email, "+33611111111")
    contact = conn.get("Contact", created["customer_primary_contact"])
    assert contact["email_id"] == email and contact["is_primary_contact"] == 1

    new_email = email.replace("hold-", "moved-")
    answer = adapter.update(conn, created["name"], {"email_id": new_email, "mobile_no": "+33622222222"})
    now = conn.get("Customer", created["name"])
    assert (answer["email_id"], answer["mobile_no"]) == (new_email, "+33622222222")
    assert (now["email_id"], now["mobile_no"], now["modified"]) == (
        new_email,
        "+33622222222",
        answer["modified"],
    )
    assert conn.get("Contact", created["customer_primary_contact"])["email_id"] == new_email
    # What a plain save of the Customer does with them: ERPNext keeps its Contact's values.
    plain = conn.update("Customer", created["name"], {"email_id": "ignored@example.test"})
    assert plain["email_id"] == new_email


def test_a_customer_without_a_contact_gets_one_from_its_first_email(configured):
    conn = configured.connector()
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    bare = new_customer(configured, conn)
    assert not bare.get("customer_primary_contact")
    email = f"late-{uuid.uuid4().hex[:8]}@example.test"
    answer = adapter.update(conn, bare["name"], {"email_id": email, "mobile_no": "+33633333333"})
    assert (answer["email_id"], answer["mobile_no"]) == (email, "+33633333333")
    assert conn.get("Contact", answer["customer_primary_contact"])["mobile_no"] == "+33633333333"


def test_an_update_writes_the_contact_only_where_its_primary_is_not_the_value_already(
    configured, monkeypatch
):
    conn = configured.connector()
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    email = f"same-{uuid.uuid4().hex[:8]}@example.test"
    created = adapter.create(conn, {"customer_name": configured.unique("Same Co"), "email_id": email,
                                    "mobile_no": "+33644444444"}, None)  # fmt: skip
    contact_name = created["customer_primary_contact"]
    before = conn.get("Contact", contact_name)
    sent = helpers.requests_sent(monkeypatch, conn, doctype_of)
    # Email and phone as the Contact holds them, the tax id new: the Customer saved, the Contact left alone.
    answer = adapter.update(conn, created["name"], {"email_id": email, "mobile_no": "+33644444444",
                                                    "tax_id": "FR40303265045"})  # fmt: skip
    assert ("PUT", "Contact") not in sent and ("PUT", "Customer") in sent
    assert (answer["email_id"], answer["mobile_no"], answer["tax_id"]) == (
        email,
        "+33644444444",
        "FR40303265045",
    )
    assert conn.get("Contact", contact_name)["modified"] == before["modified"]

    # The phone new, the email the same: only the phone rows are written, the email rows stay as they were.
    sent.clear()
    answer = adapter.update(conn, created["name"], {"email_id": email, "mobile_no": "+33655555555"})
    assert ("PUT", "Contact") in sent and answer["mobile_no"] == "+33655555555"
    after = conn.get("Contact", contact_name)
    assert [(r["email_id"], r["is_primary"]) for r in after["email_ids"]] == [
        (r["email_id"], r["is_primary"]) for r in before["email_ids"]
    ]
    assert after["mobile_no"] == "+33655555555"


def test_an_update_given_the_customer_as_a_push_just_read_it_does_not_read_it_again(configured, monkeypatch):
    conn = configured.connector()
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    email = f"read-{uuid.uuid4().hex[:8]}@example.test"
    created = adapter.create(conn, {"customer_name": configured.unique("Read Co"), "email_id": email}, None)
    read = conn.get("Customer", created["name"])  # the push's catch-up read
    sent = helpers.requests_sent(monkeypatch, conn, doctype_of)
    moved = email.replace("read-", "moved-")
    changes = {"email_id": moved, "mobile_no": "+33666666666"}
    answer = adapter.update_read(conn, created["name"], changes, read)
    assert ("GET", "Customer") not in sent
    assert [s for s in sent if s[1] == "Contact"] == [("GET", "Contact"), ("PUT", "Contact")]
    assert (answer["email_id"], answer["mobile_no"]) == (moved, "+33666666666")


def test_a_taken_unique_marker_means_the_customer_exists(target, monkeypatch):
    conn = target.connector()
    marker = f"rec-{uuid.uuid4().hex}"
    first = conn.ensure_customer(effect("create_customer"), {"customer_name": target.unique("Once Co")},
                                 record_id=marker)  # fmt: skip
    raw = target.raw("POST", f"{DOCS}/Customer", json={"customer_name": "Other", MARKER_FIELD: marker})
    assert raw.status_code == 417 and raw.json()["errors"][0]["type"] == "UniqueValidationError"
    real, calls = conn.find_one, []

    def raced(*args: Any, **kwargs: Any) -> Any:  # the look-up misses it (made meanwhile elsewhere)
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(conn, "find_one", raced)
    again = conn.ensure_customer(
        effect("create_customer"), {"customer_name": "Someone Else"}, record_id=marker
    )
    assert again["name"] == first["name"] and len(calls) == 2


def test_deleting_a_customer_deletes_its_contact_and_both_are_listed_deleted(target):
    conn = target.connector()
    since = datetime.now(UTC) - timedelta(seconds=2)
    customer = new_customer(target, conn, email_id=f"gone-{uuid.uuid4().hex[:8]}@example.test")
    contact = customer["customer_primary_contact"]
    assert conn.delete("Customer", customer["name"]) is True
    assert conn.delete("Customer", customer["name"]) is False  # a repeat after a lost answer
    with pytest.raises(FrappeError) as gone:
        conn.get("Contact", contact)
    assert gone.value.status == 404
    rows = [r for r in conn.iter_deleted(since) if r["deleted_name"] in (customer["name"], contact)]
    assert sorted(r["deleted_doctype"] for r in rows) == ["Contact", "Customer"]
    row = next(r for r in rows if r["deleted_doctype"] == "Customer")
    deleted_at, last_edit = conn.aware(row["modified"]), conn.aware(json.loads(row["data"])["modified"])
    assert since <= last_edit <= deleted_at <= datetime.now(UTC) + timedelta(seconds=5)


# --- change log (Version documents, issue 15: a group is dated by the save that gave it its value) -------

VERSION_KEYS = ["added", "changed", "data_import", "removed", "row_changed", "updater_reference"]


def diffs(conn: Any, doctype: str, name: str) -> list[dict[str, Any]]:
    """The `data` of the document's Versions, newest first, each with its `creation` as an aware instant."""
    return [{**json.loads(v["data"]), "at": conn.aware(v["creation"])} for v in conn.versions(doctype, name)]


def test_a_save_writes_a_version_of_what_it_changed_and_a_plain_insert_none(target):
    """Frappe's save_version: `data` is get_diff's JSON (sorted keys, [field, old, new] per changed field),
    stamped in site time a little after the save's own `modified` (it runs after on_update)."""
    conn = target.connector()
    customer = new_customer(target, conn)
    assert conn.versions("Customer", customer["name"]) == []  # an insert records nothing
    renamed = target.unique("Contract Co renamed")
    saved = conn.update("Customer", customer["name"], {"customer_name": renamed, "tax_id": "FR11"})
    [version] = conn.versions("Customer", customer["name"])
    assert set(version) >= {"name", "data", "creation"}
    assert version["data"].startswith('{"added":[],"changed":[')  # compact JSON, sorted keys
    data = json.loads(version["data"])
    assert sorted(data) == VERSION_KEYS and data["data_import"] is None
    assert sorted(data["changed"]) == [["customer_name", customer["customer_name"], renamed],
                                       ["tax_id", None, "FR11"]]  # fmt: skip
    assert (
        conn.aware(saved["modified"])
        <= conn.aware(version["creation"])
        <= conn.aware(saved["modified"]) + (timedelta(seconds=5))
    )
    conn.update("Customer", customer["name"], {"tax_id": ""})  # cleared: "" as sent
    conn.update("Customer", customer["name"], {"tax_id": ""})  # nothing changed: no Version
    newest, older = diffs(conn, "Customer", customer["name"])
    assert newest["changed"] == [["tax_id", "FR11", ""]] and newest["at"] > older["at"]


def test_a_primary_contact_made_by_on_update_is_in_the_version_of_that_save(target):
    """create_primary_contact db_sets the Contact in on_update: in an insert that writes a Version (db_set
    loads the row just inserted as the document before) and moves `modified`; in a save it does not."""
    conn = target.connector()
    email = f"ver-{uuid.uuid4().hex[:8]}@example.test"
    made = new_customer(target, conn, email_id=email)
    contact = made["customer_primary_contact"]
    assert conn.aware(made["modified"]) > conn.aware(made["creation"])
    [insert] = diffs(conn, "Customer", made["name"])
    assert ["customer_primary_contact", "", contact] in insert["changed"]
    assert not {"email_id", "mobile_no", "customer_name"} & {c[0] for c in insert["changed"]}

    bare = new_customer(target, conn)
    saved = conn.update("Customer", bare["name"], {"email_id": email.replace("ver-", "ver2-")})
    contact = conn.get("Contact", saved["customer_primary_contact"])
    assert conn.aware(contact["creation"]) > conn.aware(saved["modified"])  # db_set left `modified` alone
    [save] = diffs(conn, "Customer", bare["name"])
    assert sorted(save["changed"]) == [["customer_primary_contact", "", contact["name"]],
                                       ["email_id", None, saved["email_id"]]]  # fmt: skip


def test_an_items_version_shows_money_as_the_site_formats_it(target):
    """Item tracks changes too; get_diff formats a Currency value (not a 0) in the site's format."""
    conn = target.connector()
    code = new_item(target, conn)
    conn.update("Item", code, {"standard_rate": 12.5})
    conn.update("Item", code, {"item_name": "Renamed", "standard_rate": 1234.5})
    conn.update("Item", code, {"standard_rate": 0})
    zeroed, renamed, priced = diffs(conn, "Item", code)
    assert priced["changed"] == [["standard_rate", 0.0, "€ 12,50"]]
    assert sorted(renamed["changed"]) == [["item_name", code, "Renamed"],
                                          ["standard_rate", "€ 12,50", "€ 1 234,50"]]  # fmt: skip
    assert zeroed["changed"] == [["standard_rate", "€ 1 234,50", 0]]


def groups_of(change: Any) -> dict[str, dict[str, Any]]:
    return {"identity": {n: change.fields[n] for n in ("name", "email", "phone")},
            "tax": {"vat_number": change.fields["vat_number"]}}  # fmt: skip


def test_each_group_is_dated_by_the_version_of_the_save_that_set_it(configured):
    """Two edits of different groups, read back once: the Customer's `modified` is the second's, yet the tax
    group is dated by the first save's Version and the identity group (email and mobile, written on the
    Contact, fetched by the Customer's save) by the second's. Values set at insert date nothing, not even
    when the first save records the empty mobile it fetches from the Contact ([mobile_no, null, ""]) of a
    Customer made with an email alone."""
    conn = configured.connector()
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    email = f"dated-{uuid.uuid4().hex[:8]}@example.test"
    name = new_customer(configured, conn, email_id=email)["name"]  # made in ERPNext: no mobile_no sent
    first = adapter.update(conn, name, {"tax_id": "FR22"})
    [taxed, _insert] = diffs(conn, "Customer", name)
    assert sorted(taxed["changed"]) == [["mobile_no", None, ""], ["tax_id", None, "FR22"]]
    change = adapter.to_change(conn.get("Customer", name))
    assert adapter.dates(conn, name, groups_of(change)) == {"tax": taxed["at"]}

    moved = {"email_id": email.replace("dated-", "moved-"), "mobile_no": "+33622222222"}
    second = adapter.update(conn, name, moved)
    change = adapter.to_change(conn.get("Customer", name))
    assert change.remote_updated_at == conn.aware(second["modified"])
    identity, taxed, _insert = diffs(conn, "Customer", name)
    assert sorted(identity["changed"]) == [
        ["email_id", email, moved["email_id"]],
        ["mobile_no", "", "+33622222222"],
    ]
    dates = adapter.dates(conn, name, groups_of(change))
    assert dates == {"tax": taxed["at"], "identity": identity["at"]}
    assert conn.aware(first["modified"]) <= dates["tax"] < conn.aware(second["modified"]) <= dates["identity"]
    # Applied to the change: the tax group is older than the stamp, the identity group is the stamp.
    applied = dated(change, dates)
    assert applied.dated == {"tax": taxed["at"], "identity": change.remote_updated_at}


def clerk(target: Target) -> Target:
    """The target as an API user with the sales and accounts roles but not System Manager."""
    if target.sim is not None:
        key, secret = f"clerk-{uuid.uuid4().hex[:6]}", "clerk-secret"
        target.sim.add_user(key, secret, user=f"{key}@example.test", doctypes=["Customer", "Contact"])
        return replace(target, key=key, secret=secret)
    email = f"clerk-{uuid.uuid4().hex[:6]}@example.test"
    roles = [{"role": r} for r in ("Sales Master Manager", "Sales User", "Accounts Manager")]
    user = {"email": email, "first_name": "Clerk", "send_welcome_email": 0, "roles": roles}
    made = target.raw("POST", "/api/resource/User", json=user)
    assert made.status_code == 200, made.text[:300]
    keys = target.raw("POST", "/api/method/frappe.core.doctype.user.user.generate_keys", data={"user": email})
    key = target.raw("GET", f"/api/resource/User/{email}").json()["data"]["api_key"]
    return replace(target, key=key, secret=keys.json()["message"]["api_secret"])


def test_without_system_manager_the_version_log_is_refused_and_dates_say_nothing(target, monkeypatch, caplog):
    """Version is a System Manager doctype: another API user is refused (403 PermissionError); the
    connector warns once and the changes it reads keep their stamps."""
    conn = target.connector()
    customer = new_customer(target, conn)
    conn.update("Customer", customer["name"], {"tax_id": "FR33"})
    limited = clerk(target)
    query = {"filters": json.dumps([["docname", "=", customer["name"]]])}
    refused = limited.raw("GET", f"{DOCS}/Version", params=query)
    assert refused.status_code == 403 and refused.json()["errors"][0]["type"] == "PermissionError"
    monkeypatch.setattr("connectors.base._WARNED", set())
    adapter = CustomerAdapter(site_timezone=conn.site_timezone)
    with caplog.at_level("WARNING", logger="connectors.erpnext"):
        assert limited.connector().versions("Customer", customer["name"]) == []
        assert adapter.dates(limited.connector(), customer["name"], {"tax": {"vat_number": "FR33"}}) == {}
    warned = [r for r in caplog.records if "refused read on Version" in r.getMessage()]
    assert len(warned) == 1


# --- errors -------------------------------------------------------------------------------------------------


def test_a_refused_invoice_says_why_not_what_else_was_printed(target):
    conn = target.connector()
    customer, code = new_customer(target, conn)["name"], new_item(target, conn)
    body = invoice_body(
        customer, code, taxes=[{"charge_type": "Actual", "description": "VAT", "tax_amount": 1}]
    )
    with pytest.raises(FrappeError) as refused:
        conn.create("Sales Invoice", body)
    assert refused.value.status == 417 and refused.value.exc_type == "MandatoryError"
    # ERPNext links the error with an alert ("Item Price added …"); the reason is in `messages`.
    assert "Value missing for: Account Head" in str(refused.value)
    assert "Item Price added" not in str(refused.value)


def test_a_filter_on_a_field_the_doctype_lacks_is_refused(target):
    with pytest.raises(FrappeError) as refused:
        target.connector().list_page("Customer", filters=[["custom_no_such_field", "=", "x"]])
    assert refused.value.status == 417 and "Field not permitted in query: custom_no_such_field" in str(
        refused.value
    )


def test_a_stale_save_is_refused_with_the_current_document(target):
    conn = target.connector()
    customer = new_customer(target, conn)
    conn.update("Customer", customer["name"], {"tax_id": "FR1"})
    with pytest.raises(StaleDocument) as stale:
        conn.update("Customer", customer["name"], {"tax_id": "FR2"}, modified=customer["modified"])
    assert stale.value.current["tax_id"] == "FR1"


def test_a_webhook_needs_a_name_and_the_connector_gives_one(target):
    conn = target.connector()
    hook = {"webhook_doctype": "Customer", "webhook_docevent": "on_trash", "request_structure": "JSON",
            "request_url": f"http://127.0.0.1:9/{uuid.uuid4().hex}", "webhook_json": "{}"}  # fmt: skip
    unnamed = target.raw("POST", f"{DOCS}/Webhook", json=hook)
    assert (
        unnamed.status_code == 417
        and unnamed.json()["errors"][0]["message"] == "Please set the document name"
    )
    made = conn.create("Webhook", hook)
    assert made["name"].startswith("syncengine Customer on_trash ")
    assert conn.delete_webhook(made["name"]) is True


# --- invoices and payments ---------------------------------------------------------------------------------


def test_an_invoice_created_submitted_is_read_back_as_erpnext_holds_it(target):
    conn = target.connector()
    customer, code = new_customer(target, conn)["name"], new_item(target, conn)
    body = invoice_body(customer, code, 80)
    answered = target.raw("POST", f"{DOCS}/Sales Invoice", json={**body, "docstatus": 1}).json()["data"]
    held = conn.get("Sales Invoice", answered["name"])
    assert (answered["status"], held["status"]) == ("Draft", "Unpaid")  # the answer is before on-submit
    assert answered["modified"] < held["modified"]
    number = target.unique("INV")
    made = conn.ensure_sales_invoice(effect("create_invoice"), body, number=number)
    assert made == conn.get("Sales Invoice", made["name"])
    assert (made["status"], made["docstatus"], made[MARKER_FIELD]) == ("Unpaid", 1, number)
    assert conn.submit("Sales Invoice", made["name"])["docstatus"] == 1  # submitting again answers it


def test_a_payment_goes_to_the_bank_account_and_the_paid_invoice_is_seen_by_the_sweep(target):
    conn = target.connector()
    customer, code = new_customer(target, conn)["name"], new_item(target, conn)
    invoice = conn.ensure_sales_invoice(effect("create_invoice"), invoice_body(customer, code, 120.37),
                                        number=target.unique("INV"))  # fmt: skip
    args = {"dt": "Sales Invoice", "dn": invoice["name"], "party_amount": 20.37}
    over_get = target.raw("GET", f"/api/v2/method/{PAYMENT_ENTRY_METHOD}", params=args)
    assert over_get.status_code == 500 and over_get.json()["errors"][0]["type"] == "TypeError"
    before = datetime.now(UTC) - timedelta(seconds=1)
    today = before.date().isoformat()
    part = conn.ensure_payment_entry(effect("payment_entry"), invoice=invoice["name"], amount=20.37,
                                     reference_no=f"tx-{uuid.uuid4().hex}", reference_date=today)  # fmt: skip
    assert (part["docstatus"], part["paid_to"], part["paid_amount"]) == (1, target.bank_account, 20.37)
    assert conn.get("Sales Invoice", invoice["name"])["status"] == "Partly Paid"
    conn.ensure_payment_entry(effect("payment_entry"), invoice=invoice["name"], amount=100.0,
                              reference_no=f"tx-{uuid.uuid4().hex}", reference_date=today)  # fmt: skip
    paid = conn.get("Sales Invoice", invoice["name"])
    assert (paid["status"], paid["outstanding_amount"]) == ("Paid", 0)
    # No webhook says so (the payment sets the invoice's status with db_set), but `modified` moves:
    swept = conn.iter_modified("Sales Invoice", before, fields=("name", "docstatus"),
                               filters=[["name", "=", invoice["name"]]])  # fmt: skip
    assert [r["name"] for r in swept] == [invoice["name"]]
    assert conn.aware(paid["modified"]) >= before


def test_a_second_invoice_may_name_an_existing_sku_with_another_description(configured):
    conn = configured.connector()
    adapter = SalesInvoiceAdapter(site_timezone=conn.site_timezone)
    customer, sku = new_customer(configured, conn)["name"], configured.unique("SKU").replace(" ", "-")
    made = []
    for description in ("Consulting, May", "Consulting, June"):
        fields = {"number": configured.unique("INV"), "date": datetime.now(UTC).date().isoformat(),
                  "lines": [{"sku": sku, "description": description, "quantity": 1, "unit_price": 50,
                             "tax_rate": 20}]}  # fmt: skip
        body = {**adapter.to_vendor(fields, _Customer(customer)), "customer": customer}
        key = helpers.effect("erpnext", "push_invoice").key
        made.append(adapter.create(conn, body, Attempt(key, key, recovering=False, recovery_point=None)))
    assert [m["docstatus"] for m in made] == [1, 1] and made[0]["name"] != made[1]["name"]
    assert [m["taxes"][0]["account_head"] for m in made] == [configured.tax_account] * 2
    assert [m["grand_total"] for m in made] == [60, 60]


def test_an_item_is_created_first_and_a_code_taken_in_any_case_is_read_back(target):
    """An Item is named by its code and MariaDB ignores case: a second insert of the code, in any case, is
    DuplicateEntryError (409), so the adapter creates first and reads the taken one back; and a new Item
    is stamped `creation` = `modified`, as never edited (no history read for it)."""
    conn = target.connector()
    adapter = ItemAdapter(site_timezone=conn.site_timezone)
    code = target.unique("Sku").replace(" ", "-")
    theirs = conn.create("Item", {**ITEM_DEFAULTS, "item_code": code, "item_name": "made by hand"})
    assert theirs["creation"] == theirs["modified"] and adapter.to_change(theirs).unedited
    taken = target.raw("POST", f"{DOCS}/Item", json={**ITEM_DEFAULTS, "item_code": code.lower()})
    assert taken.status_code == 409 and taken.json()["errors"][0]["type"] == "DuplicateEntryError"
    fields = adapter.carried({"sku": code.upper(), "name": "ours", "price": 5})
    assert adapter.unique(conn, fields)
    key = helpers.effect("erpnext", "push_product").key
    attempt = Attempt(key, key, recovering=False, recovery_point=None)
    found = adapter.create(conn, adapter.to_vendor(fields, _Customer("")), attempt)
    assert found["name"] == theirs["name"]


class _Customer:
    def __init__(self, name: str) -> None:
        self.name = name

    def external_id(self, record_id: int, system: str) -> str | None:
        return self.name


# --- setup ------------------------------------------------------------------------------------------------


def test_setup_check_is_clean_after_setup(configured):
    from connectors.erpnext_setup import ERPNextSetup

    setup = ERPNextSetup(configured.connector(), get_settings())
    setup.schema(apply=True)
    findings = setup.schema(apply=False) + setup.permissions()
    assert [str(f) for f in findings if f.problem] == []
    subjects = {f.subject for f in findings}
    expected = {f"Custom Field Customer.{MARKER_FIELD}", f"ERPNEXT_TAX_ACCOUNT {configured.tax_account}",
                f"ERPNEXT_BANK_ACCOUNT {configured.bank_account}", "permission Sales Invoice"}  # fmt: skip
    assert expected <= subjects


# --- supplier invoices (OCR, F7) ---------------------------------------------------------------------------


def test_a_supplier_invoice_is_filed_once_as_a_draft_with_its_tax_row(target):
    """What tasks.ocr makes of a receipt: the Supplier (found by name), the expense Item, and a draft
    Purchase Invoice tagged in its remarks, its VAT on the tax account; F7 reads the Supplier's IBAN."""
    conn = target.connector()
    name = target.unique("Paper Co")
    body = {"supplier_name": name, "tax_id": "FR123", "custom_iban": "FR7630006000011234567890189"}
    supplier = conn.ensure(effect("ensure_supplier"), "Supplier", body, match=[["supplier_name", "=", name]],
                           marker=name)  # fmt: skip
    assert supplier["name"] == name and conn.get("Supplier", name)["custom_iban"] == body["custom_iban"]
    code = new_item(target, conn)
    tag = f"[syncengine:doc:{uuid.uuid4().hex[:16]}]"
    today = datetime.now(conn.site_timezone).date().isoformat()  # the site's today: due today is not overdue
    invoice = {
        "supplier": name, "posting_date": today, "set_posting_time": 1, "bill_date": today, "bill_no": "B-1",
        "currency": "EUR", "items": [{"item_code": code, "description": "Paper", "qty": 1, "rate": 40}],
        "taxes": [{"charge_type": "Actual", "account_head": target.tax_account, "description": "VAT",
                   "rate": 0, "tax_amount": 8}],
        "remarks": f"{name} B-1 {tag}",
    }  # fmt: skip
    match = [["remarks", "like", f"%{tag}%"]]
    made = [conn.ensure(effect("purchase_invoice"), "Purchase Invoice", invoice, marker=tag, match=match,
                        accept=lambda r: tag in str(r.get("remarks"))) for _ in range(2)]  # fmt: skip
    assert made[0]["name"] == made[1]["name"] and made[0]["docstatus"] == 0
    assert (made[0]["grand_total"], made[0]["total_taxes_and_charges"]) == (48, 8)
    # Approved (submitted) in ERPNext, it is what F7 pays: outstanding, not a return, unpaid.
    from tasks.transfers import not_due

    submitted = conn.submit("Purchase Invoice", made[0]["name"])
    held = conn.get("Purchase Invoice", submitted["name"])
    assert (held["docstatus"], held["status"], held["outstanding_amount"], held["is_return"]) == (
        1,
        "Unpaid",
        48,
        0,
    )
    assert not_due(held) is None


def test_a_document_is_answered_without_its_empty_fields_and_with_erpnexts_defaults(target):
    """Frappe serialises a document with as_dict(no_nulls=True): a field never set is absent, not None; an
    Item's empty name and description are its code, its rate 0.0; a submitted invoice's remarks "No
    Remarks"."""
    conn = target.connector()
    customer = new_customer(target, conn)
    assert "tax_id" not in customer and "tax_id" not in conn.get("Customer", customer["name"])
    code = new_item(target, conn)
    item = conn.get("Item", code)
    assert (item["item_name"], item["description"], item["standard_rate"]) == (code, code, 0.0)
    invoice = conn.create("Sales Invoice", invoice_body(customer["name"], code))
    assert "remarks" not in invoice and invoice["status"] == "Draft"
    assert conn.submit("Sales Invoice", invoice["name"])["remarks"] == "No Remarks"  # set when submitted
    # A listing names its fields: those come back, empty or not.
    [row] = conn.list_page("Customer", filters=[["name", "=", customer["name"]]], fields=("name", "tax_id"))
    assert row == {"name": customer["name"], "tax_id": None}
