"""`syncengine setup` for ERPNext (connectors/erpnext_setup.py): what it mends, what it only reports, each
with its one-line fix. The read-only checks run against the simulator and the real server alike; those
that need a site in a given state (a new site, a wrong field, a second company) use the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.erpnext_setup import ERPNextSetup
from connectors.setup import CREATED, FORBIDDEN, MISSING, OK, UPDATED, WRONG, Finding
from simulators.erpnext import ERPNextSimulator
from syncengine.settings import Settings
from syncengine.vendors.erpnext import CUSTOM_FIELDS, MARKER_FIELD
from tests.connectors.conftest import ERPNEXT_TEST_KEY, ERPNEXT_TEST_SECRET
from tests.connectors.erpnext_targets import TARGETS, Target, target_for


@pytest.fixture(params=TARGETS)
def target(request) -> Iterator[Target]:
    yield from target_for(request.param)


@pytest.fixture()
def new_site() -> Iterator[Target]:
    """A simulator as a new ERPNext site: no custom fields, no leaf tax or bank account."""
    sim = ERPNextSimulator(api_key=ERPNEXT_TEST_KEY, api_secret=ERPNEXT_TEST_SECRET, accounts=())
    with sim.serve() as running:
        yield Target(
            "simulator", running.url, ERPNEXT_TEST_KEY, ERPNEXT_TEST_SECRET, sim.company, sim.abbr, sim
        )


def setup_for(target: Target, **env: str | None) -> ERPNextSetup:
    """The target's setup with its settings, some replaced (None removes one)."""
    settings = {**target.env(), **env}
    return ERPNextSetup(
        target.connector(company=settings.get("ERPNEXT_COMPANY")),
        Settings.from_env({k: v for k, v in settings.items() if v is not None}),
    )


def by_subject(findings: list[Finding]) -> dict[str, Finding]:
    return {f.subject: f for f in findings}


def line(findings: list[Finding], start: str) -> Finding:
    return next(f for f in findings if f.subject.startswith(start))


def test_a_new_site_is_made_ready_and_then_checks_clean(new_site):
    setup = setup_for(new_site)
    before = by_subject(setup.schema(apply=False))
    fields = [f"Custom Field {f.dt}.{f.fieldname}" for f in CUSTOM_FIELDS]
    accounts = [f"ERPNEXT_TAX_ACCOUNT VAT - {new_site.abbr}", f"ERPNEXT_BANK_ACCOUNT Bank - {new_site.abbr}"]
    assert [before[s].status for s in (*fields, *accounts, "Item MISC")] == [MISSING] * 7
    assert all("syncengine setup --system erpnext" in before[s].fix for s in fields)
    assert new_site.sim.db["Custom Field"] == {}  # --check changed nothing

    made = by_subject(setup.schema(apply=True))
    assert [made[s].status for s in (*fields, *accounts)] == [CREATED] * 6
    tax = new_site.sim.db["Account"][f"VAT - {new_site.abbr}"]
    assert (tax["is_group"], tax["account_type"], tax["parent_account"]) == (
        0,
        "Tax",
        f"Duties and Taxes - {new_site.abbr}",
    )
    marker = new_site.sim.db["Custom Field"][f"Customer-{MARKER_FIELD}"]
    assert (marker["fieldtype"], marker["unique"], marker["no_copy"]) == ("Data", 1, 1)

    again = setup.schema(apply=True) + setup.schema(apply=False) + setup.permissions()
    assert [str(f) for f in again if f.status != OK] == []  # idempotent, then clean


def test_unusable_accounts_are_problems_with_their_fix_and_never_changed(target):
    abbr = target.abbr
    cases = {
        f"Duties and Taxes - {abbr}": ("is a group account", "use a leaf account under"),
        f"Sales - {abbr}": ("is an untyped account", "set its Account Type to Tax"),  # the Standard chart's
    }
    for account, (detail, fix) in cases.items():
        finding = line(
            setup_for(target, ERPNEXT_TAX_ACCOUNT=account).schema(apply=True), "ERPNEXT_TAX_ACCOUNT"
        )
        assert (finding.status, finding.detail) == (WRONG, detail) and fix in finding.fix, finding
    unset = line(setup_for(target, ERPNEXT_BANK_ACCOUNT=None).schema(apply=True), "ERPNEXT_BANK_ACCOUNT")
    assert unset.status == MISSING and f"e.g. 'Bank - {abbr}'" in unset.fix
    unsuffixed = line(setup_for(target, ERPNEXT_TAX_ACCOUNT="VAT").schema(apply=True), "ERPNEXT_TAX_ACCOUNT")
    assert unsuffixed.status == MISSING and f"name it 'VAT - {abbr}'" in unsuffixed.fix


def test_a_missing_company_is_a_problem_naming_the_ones_there_are(target):
    unset = by_subject(setup_for(target, ERPNEXT_COMPANY=None).schema(apply=False))["company"]
    assert unset.status == MISSING and target.company in unset.fix
    wrong = line(setup_for(target, ERPNEXT_COMPANY="No Such Co").schema(apply=True), "company")
    assert (wrong.status, wrong.detail) == (MISSING, "no such company")
    tax = line(setup_for(target, ERPNEXT_COMPANY="No Such Co").schema(apply=True), "ERPNEXT_TAX_ACCOUNT")
    assert tax.fix == "fix the company line first"


def test_an_account_of_another_company_is_wrong(new_site):
    sim = new_site.sim
    other = {"account_name": "VAT", "company": "Other Co", "is_group": 0, "account_type": "Tax"}
    sim.seed(
        {
            "Company": [{"company_name": "Other Co", "abbr": "OC", "default_currency": "EUR"}],
            "Account": [other],
        }
    )
    finding = line(
        setup_for(new_site, ERPNEXT_TAX_ACCOUNT="VAT - OC").schema(apply=True), "ERPNEXT_TAX_ACCOUNT"
    )
    assert (finding.status, finding.detail, finding.fix) == (
        WRONG,
        "belongs to Other Co",
        f"use an account of {sim.company}",
    )


def test_a_marker_field_not_unique_is_mended_one_of_another_type_is_not(new_site):
    new_site.sim.seed({"custom_fields": {
        "Customer": [{"fieldname": MARKER_FIELD, "fieldtype": "Data", "unique": 0}],
        "Sales Invoice": [{"fieldname": MARKER_FIELD, "fieldtype": "Int"}],
    }})  # fmt: skip
    setup = setup_for(new_site)
    check = by_subject(setup.schema(apply=False))
    customer, invoice = (
        check[f"Custom Field Customer.{MARKER_FIELD}"],
        check[f"Custom Field Sales Invoice.{MARKER_FIELD}"],
    )
    assert (customer.status, customer.detail) == (WRONG, "not unique")
    assert (invoice.status, invoice.detail) == (WRONG, "is Int, not Data") and "Customize Form" in invoice.fix
    mended = by_subject(setup.schema(apply=True))
    assert mended[f"Custom Field Customer.{MARKER_FIELD}"].status == UPDATED
    assert mended[f"Custom Field Sales Invoice.{MARKER_FIELD}"].status == WRONG  # a type is never changed
    assert new_site.sim.db["Custom Field"][f"Customer-{MARKER_FIELD}"]["unique"] == 1


def test_a_user_without_rights_gets_one_line_per_missing_right_and_no_traceback(new_site):
    rights = {"Customer": ["read"], "Company": ["read"], "Account": ["read"]}
    new_site.sim.add_user("clerk-key", "clerk-secret", user="clerk@example.test", doctypes=rights)
    clerk = Target("simulator", new_site.url, "clerk-key", "clerk-secret", new_site.company, new_site.abbr)
    setup = setup_for(clerk)
    schema, rights = setup.schema(apply=True), by_subject(setup.permissions())  # type: ignore[assignment]
    fields = line(schema, "Custom Field")
    assert fields.status == FORBIDDEN and "PermissionError" in fields.detail and fields.fix
    assert (rights["permission Customer"].status, rights["permission Customer"].detail) == (
        FORBIDDEN,
        "may not create, write",
    )
    assert "create, write on Customer" in rights["permission Customer"].fix
    assert rights["permission Company"].status == OK
    assert rights["method get_payment_entry"].status == OK  # whitelisted for every user, as on ERPNext
    assert all("Traceback" not in str(f) for f in [*schema, *rights.values()])
