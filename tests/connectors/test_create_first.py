"""Created first where the vendor keeps the marker unique (Connector.create_once's `unique`, the adapters'
`unique`): the create's answer is the object, new or the one that already holds the marker, with no look-up
before it; and the look-up still comes first wherever the vendor would not stop a second object (a Directus
field without its unique constraint, a Mautic site matching on another identifier too, a contact's email in
Directus, whose case the look-up ignores and the unique index does not)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import base
from connectors.adapters import adapter_for, creates_first
from connectors.normalise import email
from syncengine.errors import Ambiguous
from syncengine.idempotency import Effect
from syncengine.vendors.erpnext import ITEM_DEFAULTS
from tests.connectors.test_mappers import push, unique_contact, unique_product, vendors  # noqa: F401


@pytest.fixture(autouse=True)
def unlearned() -> Iterator[None]:
    """Each test asks the vendor afresh whether its field is unique (Connector.unique_on's cache)."""
    base._UNIQUE.clear()
    yield
    base._UNIQUE.clear()


def parts(vendors: dict[str, Any], system: str, kind: str) -> tuple[Any, Any, Any]:  # noqa: F811
    """(the adapter of `kind` in `system`, its connector, its simulator)."""
    return adapter_for(system, kind), vendors[system], vendors["sims"][system]


def calls_during(sim: Any, action: Any) -> tuple[Any, list[tuple[str, str]]]:
    """What `action` returned, and the (method, path) of every request the simulator got meanwhile."""
    before = len(sim.requests_log())
    result = action()
    return result, [(r["method"], r["path"]) for r in sim.requests_log()[before:]]


def mautic_field_id(sim: Any, alias: str) -> int:
    return next(f["id"] for f in sim.lead_fields if f["alias"] == alias)


# --- Mautic: POST /api/contacts/new answers the contact that has the email ---------------------------------


def test_a_mautic_contact_someone_else_made_is_matched_by_the_create_not_duplicated(vendors):  # noqa: F811
    adapter, connector, sim = parts(vendors, "mautic", "contact")
    data = unique_contact()
    theirs = connector.create_contact({"email": email(data["email"]).upper(), "firstname": "Someone"})

    ours, calls = calls_during(sim, lambda: push(adapter, connector, data))

    assert ours["id"] == theirs["id"]
    assert ours["fields"]["all"]["firstname"] == "Ann"  # Mautic updated it with what we sent
    assert calls == [("GET", "/api/fields/contact"), ("POST", "/api/contacts/new")]  # no look-up
    _, rows = connector.list_page("contacts", where=[("email", "eq", email(data["email"]))])
    assert len(rows) == 1
    # learned once: the next contact is one request
    _, again = calls_during(sim, lambda: push(adapter, connector, unique_contact()))
    assert again == [("POST", "/api/contacts/new")]


def test_mautic_looks_up_first_where_another_field_we_send_is_a_unique_identifier(vendors):  # noqa: F811
    """A phone that is a unique identifier too: Mautic could match someone else by it (or, told to match on
    all of them, miss the contact with the email), so the email is looked up first."""
    adapter, connector, sim = parts(vendors, "mautic", "contact")
    phone = mautic_field_id(sim, "phone")
    connector.request("PATCH", f"/api/fields/contact/{phone}/edit", json={"isUniqueIdentifier": True})
    try:
        data = unique_contact()
        theirs = connector.create_contact({"email": email(data["email"]), "firstname": "Someone"})
        assert not creates_first(adapter, connector, adapter.carried(data))
        ours, calls = calls_during(sim, lambda: push(adapter, connector, data))
    finally:
        connector.request("PATCH", f"/api/fields/contact/{phone}/edit", json={"isUniqueIdentifier": False})
    assert ours["id"] == theirs["id"]
    assert calls[0] == ("GET", "/api/contacts") and ("POST", "/api/contacts/new") not in calls


def test_mautic_looks_up_first_when_it_may_not_read_its_fields(vendors, caplog):  # noqa: F811
    """A role without `lead:fields:view`: whether the email is unique cannot be told, so it is looked up
    first, with one warning for the process."""
    adapter, connector, sim = parts(vendors, "mautic", "contact")
    sim.roles[connector.username] = frozenset(
        {"lead:leads:viewother", "lead:leads:create", "lead:leads:editother"}
    )
    base._WARNED.discard((connector.base_url, "unique:contact email"))
    try:
        data = unique_contact()
        assert not creates_first(adapter, connector, adapter.carried(data))
        _, calls = calls_during(sim, lambda: push(adapter, connector, data))
    finally:
        del sim.roles[connector.username]
    assert calls[0] == ("GET", "/api/contacts")  # asked once: no second GET /api/fields/contact
    warned = [r.getMessage() for r in caplog.records if "cannot tell whether" in r.getMessage()]
    assert len(warned) == 1 and "contact email" in warned[0] and "403" in warned[0]


# --- Directus: a unique field's conflict is read back -------------------------------------------------------


def test_a_directus_product_created_first_finds_the_existing_item(vendors):  # noqa: F811
    adapter, connector, sim = parts(vendors, "directus", "product")
    data = unique_product()
    theirs = connector.insert_item("products", {"sku": data["sku"], "name": "made by hand"}, "sku")

    ours, calls = calls_during(sim, lambda: push(adapter, connector, data))

    assert ours["id"] == theirs["id"]
    assert calls == [("GET", "/fields/products/sku"), ("POST", "/items/products"), ("GET", "/items/products")]
    assert len(sim.db["products"]) == len({row["sku"] for row in sim.db["products"].values()})
    _, again = calls_during(sim, lambda: push(adapter, connector, unique_product()))
    assert again == [("POST", "/items/products")]  # a new SKU: one request, the field known unique


def test_a_directus_field_without_its_unique_constraint_is_looked_up_first(vendors):  # noqa: F811
    """A deployment that has not run `syncengine setup` since the SKU became unique: no create goes first."""
    adapter, connector, sim = parts(vendors, "directus", "product")
    connector.request("PATCH", "/fields/products/sku", json={"schema": {"is_unique": False}}, idempotent=True)
    try:
        data = unique_product()
        theirs = connector.insert_item("products", {"sku": data["sku"], "name": "made by hand"}, "sku")
        ours, calls = calls_during(sim, lambda: push(adapter, connector, data))
    finally:
        connector.request(
            "PATCH", "/fields/products/sku", json={"schema": {"is_unique": True}}, idempotent=True
        )
    assert ours["id"] == theirs["id"]
    assert calls == [("GET", "/fields/products/sku"), ("GET", "/items/products")]  # found: no POST


def test_a_directus_contact_is_looked_up_first_whatever_the_case_of_its_email(vendors):  # noqa: F811
    """Directus' unique index compares case: an item typed by hand as "Ann.X@Example.COM" would not stop a
    create of "ann.x@example.com", so contacts are never created first there."""
    adapter, connector, sim = parts(vendors, "directus", "contact")
    data = unique_contact()
    typed = str(data["email"]).strip()  # capitals kept, as typed in the app
    theirs = connector.insert_item("contacts", {"email": typed, "last_name": "Lee"}, "email")
    assert not creates_first(adapter, connector, adapter.carried(data))

    ours, calls = calls_during(sim, lambda: push(adapter, connector, data))

    assert ours["id"] == theirs["id"]
    assert calls[0] == ("GET", "/items/contacts") and ("POST", "/items/contacts") not in calls
    assert not any(path.startswith("/fields") for _method, path in calls)


# --- ERPNext: an Item is named by its code ---------------------------------------------------------------


def test_an_erpnext_item_created_first_reads_a_taken_code_back_whatever_its_case(vendors):  # noqa: F811
    adapter, connector, sim = parts(vendors, "erpnext", "product")
    data = unique_product()
    theirs = connector.create("Item", {**ITEM_DEFAULTS, "item_code": data["sku"].upper(), "item_name": "x"})

    ours, calls = calls_during(sim, lambda: push(adapter, connector, {**data, "sku": data["sku"].lower()}))

    assert ours["name"] == theirs["name"]
    assert calls[0] == ("POST", "/api/v2/document/Item")  # no look-up before it
    assert len([n for n in sim.db["Item"] if n.casefold() == data["sku"].casefold()]) == 1


# --- Connector.create_once ----------------------------------------------------------------------------------


class Vendor(base.Connector):
    service = "uniquetest"


def test_create_once_with_a_unique_marker_looks_up_only_a_lost_answer():
    connector, looked = Vendor("http://vendor.invalid"), []

    def find() -> dict[str, Any] | None:
        looked.append(1)
        return {"id": 7}

    def lost(_attempt: Any) -> dict[str, Any]:
        raise Ambiguous("the answer was lost")

    def effect() -> Effect:
        return Effect(f"create-first-{uuid.uuid4().hex}", "uniquetest", "create", {"sku": "A"})

    made = connector.create_once(effect(), marker="A", find=find, create=lambda _a: {"id": 8}, unique=True)
    assert made == {"id": 8} and looked == []
    found = connector.create_once(effect(), marker="A", find=find, create=lost, unique=True)
    assert found == {"id": 7} and looked == [1]
    assert connector.create_once(effect(), marker="A", find=find, create=lambda _a: {"id": 9}) == {"id": 7}
