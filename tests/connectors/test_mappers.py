"""The contact and product mappers: what we push comes back with the same content hash (echo suppression),
through each vendor's simulator over loopback, and the normalisation rules that make that true."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from connectors import connector_for, countries
from connectors.adapters import HUB_CONTACT, adapter_for, adapters, creates_first
from connectors.directus import Directus
from connectors.erpnext import ERPNextConnector
from connectors.invoiceninja import InvoiceNinja
from connectors.mautic import MauticConnector
from connectors.normalise import billing_name, country, email, flag, gross_total, lines, money, rate, text
from syncengine.breaker import Breaker, RedisBreakerStore
from syncengine.canonical import CARRIERS
from syncengine.errors import Permanent
from syncengine.idempotency import Effect
from syncengine.records import content_hash
from syncengine.settings import get_settings
from syncengine.shared_state import get_redis
from tests.connectors.conftest import (
    DIRECTUS_TEST_TOKEN,
    ERPNEXT_CUSTOM_FIELDS,
    ERPNEXT_TEST_KEY,
    ERPNEXT_TEST_SECRET,
    INVOICENINJA_TEST_TOKEN,
    MAUTIC_TEST_PASSWORD,
    MAUTIC_TEST_USER,
)

CONTACT = {
    "name": None,
    "first_name": " Ann ",
    "last_name": "Lee",
    "email": "Ann.Lee@Example.COM ",
    "phone": "+33 6 12 34 56 78",
    "company_name": "Bleu Blanc SARL",
    "address1": "1 rue de la Paix",
    "address2": "",
    "city": "Paris",
    "postal_code": "75002",
    "country": "fr",
    "vat_number": "FR12345678901",
    "marketing_consent": None,
}
CONTACT_EDIT = {
    "last_name": "Lee-Martin",
    "phone": "+49 30 1234567",
    "address2": "Bâtiment B",
    "city": None,
    "country": "Germany",
    "vat_number": "",
}
PRODUCT = {
    "sku": "SKU-42",
    "name": "Widget",
    "description": " A blue widget ",
    "price": 19.9,
    "cost": "7.5",
    "tax_rate": 20,
    "currency": "eur",
}
PRODUCT_EDIT = {"name": "Widget Pro", "description": None, "price": "24.499", "cost": None}


class NoRefs:
    def external_id(self, record_id: int, system: str) -> str | None:
        return None


def _breaker(system: str) -> Breaker:
    return Breaker(f"mappers-{system}-{uuid.uuid4().hex[:8]}", RedisBreakerStore(get_redis()))


@pytest.fixture(scope="module")
def vendors() -> Iterator[dict[str, Any]]:
    """One simulator and connector per vendor for the module (every test uses its own emails and SKUs)."""
    from simulators.directus import DirectusSimulator
    from simulators.erpnext import ERPNextSimulator
    from simulators.invoiceninja import InvoiceNinjaSimulator
    from simulators.mautic import MauticSimulator

    sims = {
        "invoiceninja": InvoiceNinjaSimulator(tokens=(INVOICENINJA_TEST_TOKEN,)),
        "erpnext": ERPNextSimulator(
            api_key=ERPNEXT_TEST_KEY, api_secret=ERPNEXT_TEST_SECRET, custom_fields=ERPNEXT_CUSTOM_FIELDS
        ),
        "mautic": MauticSimulator(username=MAUTIC_TEST_USER, password=MAUTIC_TEST_PASSWORD),
        "directus": DirectusSimulator(token=DIRECTUS_TEST_TOKEN),
    }
    sims["mautic"].seed({"fields": [{"alias": "marketing_consent", "type": "boolean"}]})
    running = {name: sim.serve() for name, sim in sims.items()}
    url = {name: server.url for name, server in running.items()}
    # ERPNext as the configured one: its adapters read stamps in its site's zone, taxes need its account.
    erpnext_env = {"ERPNEXT_URL": url["erpnext"], "ERPNEXT_API_KEY": ERPNEXT_TEST_KEY,
                   "ERPNEXT_API_SECRET": ERPNEXT_TEST_SECRET, "ERPNEXT_TAX_ACCOUNT": "VAT - MC"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for name, value in erpnext_env.items():
            mp.setenv(name, value)
        get_settings.cache_clear()
        connector_for.cache_clear()
        yield _connectors(url, sims)
    get_settings.cache_clear()
    connector_for.cache_clear()
    for server in running.values():
        server.stop()


def _connectors(url: dict[str, str], sims: dict[str, Any]) -> dict[str, Any]:
    return {
        "invoiceninja": InvoiceNinja(url["invoiceninja"], INVOICENINJA_TEST_TOKEN, breaker=_breaker("in")),
        "erpnext": ERPNextConnector(
            url["erpnext"], api_key=ERPNEXT_TEST_KEY, api_secret=ERPNEXT_TEST_SECRET, breaker=_breaker("erp")
        ),
        "mautic": MauticConnector(
            url["mautic"], username=MAUTIC_TEST_USER, password=MAUTIC_TEST_PASSWORD, breaker=_breaker("m")
        ),
        "directus": Directus(url["directus"], DIRECTUS_TEST_TOKEN, breaker=_breaker("dx")),
        "sims": sims,
    }


def unique_contact(**changes: Any) -> dict[str, Any]:
    return {**CONTACT, "email": f"Ann.{uuid.uuid4().hex[:8]}@Example.COM ", **changes}


def unique_product(**changes: Any) -> dict[str, Any]:
    return {**PRODUCT, "sku": f"SKU-{uuid.uuid4().hex[:8]}", **changes}


def push(adapter: Any, connector: Any, data: dict[str, Any]) -> dict[str, Any]:
    """What tasks.push does for a record without a link: look up by the marker, else create, once."""
    fields = adapter.carried(data)
    body = adapter.to_vendor(fields, NoRefs())
    effect = Effect(f"push:{adapter.system}:{adapter.kind}:{uuid.uuid4().hex}", adapter.system, "push", body)
    return connector.create_once(
        effect, marker=adapter.marker(fields), find=lambda: adapter.find(connector, fields),
        create=lambda attempt: adapter.create(connector, body, attempt),
        unique=creates_first(adapter, connector, fields),
    )  # fmt: skip


def read_back(system: str, kind: str, connector: Any, external_id: str) -> dict[str, Any]:
    """The object as the vendor shows it now (a fresh GET, not the create's answer)."""
    if system == "invoiceninja":
        return connector.get("clients" if kind == "contact" else "products", external_id)
    if system == "erpnext":
        return connector.get("Customer" if kind == "contact" else "Item", external_id)
    if system == "mautic":
        return connector.get_contact(int(external_id))
    return connector.get_item("contacts" if kind == "contact" else "products", external_id)


def expected_key(kind: str, data: dict[str, Any]) -> str:
    return email(data["email"]) if kind == "contact" else text(data["sku"])


CASES = [(system, kind) for kind in ("contact", "product") for system in CARRIERS[kind]]


# --- round trips through the simulators ---------------------------------------------------------------


@pytest.mark.parametrize(("system", "kind"), CASES)
def test_pushed_record_comes_back_with_the_same_hash_on_create_and_update(vendors, system, kind):
    # given
    adapter, connector = adapter_for(system, kind), vendors[system]
    data = unique_contact() if kind == "contact" else unique_product()
    # when
    created = push(adapter, connector, data)
    external_id = adapter.external_id(created)
    change = adapter.to_change(read_back(system, kind, connector, external_id))
    # then
    assert change.fields == adapter.carried(data)
    assert content_hash(change.fields) == content_hash(adapter.carried(data))
    assert (change.system, change.kind, change.external_id) == (system, kind, external_id)
    assert change.match_key == expected_key(kind, data)
    assert change.remote_updated_at.tzinfo is not None
    # when the record changes and is pushed as an update
    edited = {**data, **(CONTACT_EDIT if kind == "contact" else PRODUCT_EDIT)}
    adapter.update(connector, external_id, adapter.to_vendor(adapter.carried(edited), NoRefs()))
    change = adapter.to_change(read_back(system, kind, connector, external_id))
    # then
    assert content_hash(change.fields) == content_hash(adapter.carried(edited))
    assert change.fields != adapter.carried(data)
    assert change.external_id == external_id


@pytest.mark.parametrize(("system", "kind"), CASES)
def test_second_push_of_the_same_record_finds_the_first_object(vendors, system, kind):
    adapter, connector = adapter_for(system, kind), vendors[system]
    data = unique_contact() if kind == "contact" else unique_product()
    first = push(adapter, connector, data)
    assert adapter.external_id(adapter.find(connector, adapter.carried(data))) == adapter.external_id(first)
    assert adapter.external_id(push(adapter, connector, data)) == adapter.external_id(first)


@pytest.mark.parametrize(("system", "kind"), CASES)
def test_carried_fields_are_exactly_what_to_change_reports(vendors, system, kind):
    adapter, connector = adapter_for(system, kind), vendors[system]
    data = unique_contact() if kind == "contact" else unique_product()
    created = push(adapter, connector, data)
    assert set(adapter.to_change(created).fields) == set(adapter.carried({}))


def test_invoiceninja_client_keeps_its_contact_on_update(vendors):
    adapter, connector = adapter_for("invoiceninja", "contact"), vendors["invoiceninja"]
    data = unique_contact()
    client = push(adapter, connector, data)
    updated = adapter.update(connector, client["id"], adapter.to_vendor({"phone": "+1 555 0100"}, NoRefs()))
    assert len(updated["contacts"]) == 1
    assert updated["contacts"][0]["email"] == email(data["email"])
    assert updated["contacts"][0]["phone"] == "+1 555 0100"


def test_erpnext_customer_carries_our_marker_and_is_found_by_it(vendors):
    adapter, connector = adapter_for("erpnext", "contact"), vendors["erpnext"]
    data = unique_contact()
    customer = push(adapter, connector, data)
    assert customer["custom_syncengine_id"] == email(data["email"])
    assert customer["customer_name"] == "Bleu Blanc SARL"  # billing name: the company


def test_erpnext_item_gets_the_defaults_a_new_item_needs(vendors):
    adapter, connector = adapter_for("erpnext", "product"), vendors["erpnext"]
    item = push(adapter, connector, unique_product(name=None, description=None))
    assert (item["item_group"], item["stock_uom"], item["is_stock_item"]) == ("Products", "Nos", 0)
    assert item["item_name"] == item["item_code"] == item["description"]


def test_mautic_reads_consent_from_its_field_and_do_not_contact_and_never_writes_it(vendors):
    # given a contact we pushed with a consent Mautic does not have
    adapter, connector = adapter_for("mautic", "contact"), vendors["mautic"]
    data = unique_contact(marketing_consent=True)
    contact = push(adapter, connector, data)
    assert "marketing_consent" not in adapter.to_vendor(adapter.carried(data), NoRefs())
    assert adapter.to_change(connector.get_contact(contact["id"])).fields["marketing_consent"] is None
    # when the contact opts in in Mautic
    connector.update_contact(contact["id"], {"marketing_consent": 1})
    assert adapter.to_change(connector.get_contact(contact["id"])).fields["marketing_consent"] is True
    # when it unsubscribes (a do-not-contact entry on the email channel)
    vendors["sims"]["mautic"].db["leads"][contact["id"]]["dnc"] = [{"reason": 1, "channel": "email"}]
    assert adapter.to_change(connector.get_contact(contact["id"])).fields["marketing_consent"] is False


def test_mautic_stores_the_country_under_its_own_name(vendors):
    adapter, connector = adapter_for("mautic", "contact"), vendors["mautic"]
    contact = push(adapter, connector, unique_contact(country="CZ"))
    assert contact["fields"]["all"]["country"] == "Czech Republic"
    assert adapter.to_change(contact).fields["country"] == "CZ"


# --- normalisation, without any vendor ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("   ", None), (" a b ", "a b"), (42, "42")],
)
def test_text_strips_and_turns_empty_into_none(value, expected):
    assert text(value) == expected


def test_email_is_lower_case_and_stripped():
    assert email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    assert email("") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), (10, 10.0), ("12.50", 12.5), (19.999, 20.0), ("0", 0.0)],
)
def test_money_is_a_float_rounded_to_cents(value, expected):
    result = money(value)
    assert result == expected
    assert result is None or isinstance(result, float)


def test_rate_keeps_three_decimals():
    assert rate("8.875") == 8.875
    assert rate(20) == 20.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (1, True), ("1", True), ("yes", True), (0, False), ("false", False), ("", None)],
)
def test_flag_reads_the_usual_spellings_of_a_boolean(value, expected):
    assert flag(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("fr", "FR"), ("Germany", "DE"), ("russia", "RU"), ("Atlantis", "Atlantis"), ("", None)],
)
def test_country_is_an_iso_code_when_known_and_kept_otherwise(value, expected):
    assert country(value) == expected


def test_billing_name_prefers_the_name_then_the_company_then_the_person():
    assert billing_name({"name": "Acme", "company_name": "X"}) == "Acme"
    assert billing_name({"company_name": " Bleu ", "first_name": "Ann"}) == "Bleu"
    assert billing_name({"first_name": "Ann", "last_name": " Lee "}) == "Ann Lee"
    assert billing_name({}) is None


@pytest.mark.parametrize(("system", "kind"), list(adapters()))
def test_carried_is_already_normalised(system, kind):
    adapter = adapter_for(system, kind)
    data = CONTACT if kind == "contact" else PRODUCT
    assert adapter.carried(adapter.carried(data)) == adapter.carried(data)


def test_invoiceninja_drops_a_country_it_cannot_store():
    adapter = adapter_for("invoiceninja", "contact")
    assert adapter.carried({"country": "Atlantis"})["country"] is None
    assert adapter.to_vendor(adapter.carried({"country": "DE"}), NoRefs())["country_id"] == 276


def test_invoiceninja_update_sends_the_existing_contact_ids():
    class Ninja:
        sent: dict[str, Any] = {}

        def get_client(self, client_id: str) -> dict[str, Any]:
            contacts = [
                {"id": "c2", "email": "b@x.io", "is_primary": False},
                {"id": "c1", "email": "a@x.io", "first_name": "Ann", "is_primary": True},
            ]
            return {"id": client_id, "contacts": contacts}

        def update_client(self, client_id: str, body: dict[str, Any]) -> dict[str, Any]:
            self.sent = body
            return body

    ninja = Ninja()
    adapter_for("invoiceninja", "contact").update(ninja, "k1", {"contacts": [{"phone": "1"}]})
    first, second = ninja.sent["contacts"]
    assert first == {"id": "c1", "email": "a@x.io", "first_name": "Ann", "phone": "1"}
    assert second["id"] == "c2"


def test_invoiceninja_numbers_are_never_empty():
    adapter = adapter_for("invoiceninja", "product")
    assert adapter.carried({"sku": "A"})["price"] == 0.0
    change = adapter.to_change({"id": "p1", "product_key": "A", "price": 0, "updated_at": 1_700_000_000})
    assert change.fields["price"] == 0.0
    assert change.remote_updated_at == datetime.fromtimestamp(1_700_000_000, UTC)


def test_erpnext_modified_is_read_in_the_site_time_zone():
    from connectors.erpnext_mapping import CustomerAdapter

    adapter = CustomerAdapter(site_timezone=timezone(timedelta(hours=2)))
    change = adapter.to_change({"name": "Acme", "customer_name": "Acme", "modified": "2024-05-01 12:00:00.5"})
    assert change.remote_updated_at == datetime(2024, 5, 1, 10, 0, 0, 500000, UTC)


def test_erpnext_customer_name_falls_back_to_the_email():
    adapter = adapter_for("erpnext", "contact")
    assert adapter.carried({"email": "A@X.io"})["name"] == "a@x.io"


def test_mautic_reads_grouped_webhook_fields_too():
    adapter = adapter_for("mautic", "contact")
    contact = {
        "id": 7,
        "dateAdded": "2024-05-01T12:00:00+00:00",
        "dateModified": None,
        "fields": {"core": {"email": {"value": "A@X.io"}, "country": {"value": "France"}}, "social": []},
    }
    change = adapter.to_change(contact)
    assert (change.fields["email"], change.fields["country"], change.match_key) == ("a@x.io", "FR", "a@x.io")
    assert change.remote_updated_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_mautic_refuses_a_contact_without_email():
    with pytest.raises(Permanent):
        adapter_for("mautic", "contact").marker({"name": "Acme"})


def test_directus_reads_decimal_strings_and_falls_back_to_date_created():
    adapter = adapter_for("directus", "product")
    item = {"id": 3, "sku": "A", "price": "12.50", "date_created": "2024-05-01T12:00:00.000Z"}
    change = adapter.to_change(item)
    assert change.fields["price"] == 12.5
    assert change.remote_updated_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_country_table_is_complete_and_consistent():
    assert len(countries.NUMERIC) == 249
    assert all(countries.BY_NUMERIC[n] == code for code, n in countries.NUMERIC.items())
    assert countries.code_of(countries.NAMES["GB"]) == "GB"


# --- invoices (F4) --------------------------------------------------------------------------------------

# Dated from today: a due date in the past would make the invoice overdue, not sent.
ISSUED, DUE = datetime.now(UTC).date(), datetime.now(UTC).date() + timedelta(days=30)
INVOICE = {
    "contact_id": 7,
    "date": ISSUED.isoformat(),
    "due_date": f"{DUE.isoformat()} 00:00:00",
    "notes": " Thank you ",
    "lines": [
        {"sku": None, "description": "Widget", "quantity": "2", "unit_price": 100, "tax_rate": 20},
        {"sku": None, "description": "Setup", "quantity": None, "unit_price": "50", "tax_rate": 0},
    ],
}


class LinkedTo:
    """Refs that know the invoice's contact in every system."""

    def __init__(self, **ids: str) -> None:
        self.ids = ids

    def external_id(self, record_id: int, system: str) -> str | None:
        return self.ids.get(system)


def unique_invoice() -> dict[str, Any]:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    first = {**INVOICE["lines"][0], "sku": sku}
    return {**INVOICE, "number": f"INV-{uuid.uuid4().hex[:8]}", "lines": [first, INVOICE["lines"][1]]}


def create_invoice(adapter: Any, connector: Any, data: dict[str, Any], refs: Any) -> dict[str, Any]:
    fields = adapter.carried(data)
    body = adapter.to_vendor(fields, refs)
    effect = Effect(f"push:{adapter.system}:invoice:{uuid.uuid4().hex}", adapter.system, "push", body)
    return connector.create_once(
        effect, marker=adapter.marker(fields), find=lambda: adapter.find(connector, fields),
        create=lambda attempt: adapter.create(connector, body, attempt),
    )  # fmt: skip


def test_invoiceninja_invoice_comes_back_with_its_header_and_lines_unchanged(vendors):
    connector = vendors["invoiceninja"]
    client = push(adapter_for("invoiceninja", "contact"), connector, unique_contact())
    adapter, data = adapter_for("invoiceninja", "invoice"), unique_invoice()
    created = create_invoice(adapter, connector, data, LinkedTo(invoiceninja=client["id"]))
    change = adapter.to_change({**connector.get_invoice(created["id"]), HUB_CONTACT: 7})
    assert content_hash(adapter.carried(change.fields)) == content_hash(adapter.carried(data))
    totals = (change.fields["status"], change.fields["total"], change.fields["tax_total"])
    assert totals == ("draft", 290.0, 40.0)
    assert change.match_key == data["number"]
    assert adapter.find(connector, adapter.carried(data))["id"] == created["id"]


def test_erpnext_sales_invoice_is_submitted_once_with_its_items_and_a_tax_row_per_rate(vendors):
    connector = vendors["erpnext"]
    customer = push(adapter_for("erpnext", "contact"), connector, unique_contact())
    adapter, data = adapter_for("erpnext", "invoice"), unique_invoice()
    refs = LinkedTo(erpnext=customer["name"])
    doc = create_invoice(adapter, connector, data, refs)
    assert create_invoice(adapter, connector, data, refs)["name"] == doc["name"]
    assert doc["docstatus"] == 1 and doc["customer"] == customer["name"]
    assert [r["item_code"] for r in doc["items"]] == [data["lines"][0]["sku"], "MISC"]
    assert [(r["description"], r["tax_amount"]) for r in doc["taxes"]] == [("VAT 20%", 40.0)]
    change = adapter.to_change({**connector.get("Sales Invoice", doc["name"]), HUB_CONTACT: 7})
    header = ("number", "contact_id", "date", "due_date")
    assert {k: change.fields[k] for k in header} == {k: adapter.carried(data)[k] for k in header}
    assert "lines" not in change.fields  # ERPNext never reports lines back
    accounting = {k: change.fields[k] for k in ("status", "total", "tax_total", "paid", "balance")}
    assert accounting == {"status": "sent", "total": 290.0, "tax_total": 40.0, "paid": 0.0, "balance": 290.0}


def test_directus_invoice_comes_back_with_the_same_hash(vendors):
    adapter, data = adapter_for("directus", "invoice"), unique_invoice()
    created = create_invoice(adapter, vendors["directus"], data, NoRefs())
    back = vendors["directus"].get_item("invoices", created["id"])
    assert content_hash(adapter.to_change(back).fields) == content_hash(adapter.carried(data))


def test_invoice_lines_are_normalised_with_quantity_one_and_numbers_zero():
    assert lines([{"sku": " A ", "quantity": None, "unit_price": "", "tax_rate": None}]) == [
        {"sku": "A", "description": None, "quantity": 1.0, "unit_price": 0.0, "tax_rate": 0.0}
    ]
    assert gross_total(lines(INVOICE["lines"])) == 290.0
