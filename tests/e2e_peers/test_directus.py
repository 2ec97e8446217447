"""End to end with the real Directus 11.17 (the other vendors simulated), made ready by `syncengine setup`
(its collections, and the Flows `webhooks install` makes, posting to the receiver): contacts travel both ways
once, an archive and a hard delete in Directus archive the copies elsewhere, and `setup --check` tells a
schema that is not there from one that is."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from syncengine.vendors.directus import COLLECTIONS
from syncengine.vendors.directus import FLOWS as DIRECTUS_FLOWS
from tests import directus_target as targets
from tests.directus_target import DirectusTarget
from tests.e2e_peers.conftest import PeerDeployment, launch
from tests.flows.test_contacts import clients_with, customers_with
from tests.flows.test_convergence_patterns import edit_invoiceninja_phone, phone
from tests.flows.test_deletes import mautic_has
from tests.flows.test_reconcile import create_contact
from tests.support import wait_until

pytestmark = pytest.mark.peers("directus")
SIMULATED = ("invoiceninja", "erpnext", "mautic")


@pytest.fixture(scope="module")
def deployment() -> Iterator[PeerDeployment]:
    with launch("directus") as deployed:
        yield deployed
        _remove_our_flows(deployed)


def _remove_our_flows(deployment: PeerDeployment) -> None:
    """The server is the session's: leave no Flow posting to this module's receiver, now gone."""
    env = deployment.env
    directus = DirectusTarget("real", env["DIRECTUS_URL"], env["DIRECTUS_TOKEN"], targets.LIMITED_TOKEN)
    for flow in directus.call("GET", "/flows", params={"limit": -1}).json()["data"]:
        if flow["name"] in DIRECTUS_FLOWS:
            directus.call("DELETE", f"/flows/{flow['id']}")


@pytest.fixture(scope="module")
def directus(deployment: PeerDeployment) -> DirectusTarget:
    """The real Directus as the deployment's engine sees it (its URL and token)."""
    env = deployment.env
    return DirectusTarget("real", env["DIRECTUS_URL"], env["DIRECTUS_TOKEN"], targets.LIMITED_TOKEN)


def contacts_in_directus(directus: DirectusTarget, email: str) -> list[dict[str, Any]]:
    query = {"filter[email][_eq]": email, "limit": 10}
    return directus.call("GET", "/items/contacts", params=query).json()["data"]


def in_every_simulator(deployment: PeerDeployment, email: str) -> dict[str, int]:
    sims = deployment.sims
    return {
        "invoiceninja": len(clients_with(sims["invoiceninja"], email)),
        "erpnext": len(customers_with(sims["erpnext"], email)),
        "mautic": int(mautic_has(sims["mautic"], email)),
    }


def synced_from_directus(
    deployment: PeerDeployment, directus: DirectusTarget, prefix: str
) -> tuple[str, int]:
    """A contact created in Directus, once everywhere: (its email, its item id)."""
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    item = directus.create("contacts", {"email": email, "name": f"{prefix} Ltd", "first_name": "Dee"})
    wait_until(lambda: all(in_every_simulator(deployment, email).values()), timeout=90)
    deployment.settle()
    return email, item["id"]


def test_setup_made_directus_ready(deployment):
    made = deployment.setup_output.stdout
    assert deployment.setup_output.returncode == 0 and "everything the engine needs is in place" in made
    assert all(
        f"webhook {name} at {deployment.receiver}/webhooks/directus" in made for name in DIRECTUS_FLOWS
    )


def test_a_contact_created_in_directus_arrives_once_everywhere(deployment, directus):
    email, key = synced_from_directus(deployment, directus, "dx-new")
    assert in_every_simulator(deployment, email) == {"invoiceninja": 1, "erpnext": 1, "mautic": 1}
    assert [item["id"] for item in contacts_in_directus(directus, email)] == [key]  # no echo made a second


@pytest.mark.parametrize("system", SIMULATED)
def test_a_contact_created_elsewhere_arrives_once_in_directus(deployment, directus, system):
    email = f"{system}-new-{uuid.uuid4().hex[:8]}@example.com"
    servers = {name: SimpleNamespace(url=deployment.env[f"{name.upper()}_URL"]) for name in SIMULATED}
    create_contact(SimpleNamespace(servers=servers), system, email)
    wait_until(lambda: contacts_in_directus(directus, email), timeout=90)
    deployment.settle()
    [item] = contacts_in_directus(directus, email)
    assert item["archived"] is False and item["date_created"]
    assert all(count == 1 for count in in_every_simulator(deployment, email).values())


def archived_elsewhere(deployment: PeerDeployment, email: str) -> bool:
    sims = deployment.sims
    client = clients_with(sims["invoiceninja"], email)[0]
    customer = customers_with(sims["erpnext"], email)[0]
    return bool(client.get("archived_at") and customer.get("disabled"))


def test_a_contact_archived_in_directus_is_archived_elsewhere(deployment, directus):
    email, key = synced_from_directus(deployment, directus, "dx-archive")
    answer = directus.call("PATCH", f"/items/contacts/{key}", json={"archived": True})
    assert answer.status_code == 200, answer.text
    wait_until(lambda: archived_elsewhere(deployment, email), timeout=90)
    deployment.settle()
    assert mautic_has(deployment.sims["mautic"], email)  # Mautic keeps its contacts


def test_a_contact_deleted_in_directus_is_archived_elsewhere(deployment, directus):
    email, key = synced_from_directus(deployment, directus, "dx-delete")
    assert directus.call("DELETE", f"/items/contacts/{key}").status_code == 204
    wait_until(lambda: archived_elsewhere(deployment, email), timeout=90)
    deployment.settle()
    assert contacts_in_directus(directus, email) == []  # archived elsewhere, not created again here


@contextmanager
def webhooks_off(directus: DirectusTarget) -> Iterator[None]:
    """Our item Flow inactive while the block runs: its changes send no webhook, as if each were lost."""
    [flow] = [f for f in directus.call("GET", "/flows", params={"limit": -1}).json()["data"]
              if f["name"] == "syncengine webhooks"]  # fmt: skip
    assert directus.call("PATCH", f"/flows/{flow['id']}", json={"status": "inactive"}).status_code == 200
    try:
        yield
    finally:
        assert directus.call("PATCH", f"/flows/{flow['id']}", json={"status": "active"}).status_code == 200


def test_a_contact_whose_webhook_was_lost_arrives_everywhere_by_the_sweep_as_listed(deployment, directus):
    """The sweep lists the real server's items with every field, and the handler merges each as listed
    (its event carries it whole): the contact reaches every system once, with its name and phone."""
    email = f"dx-swept-{uuid.uuid4().hex[:8]}@example.com"
    since = datetime.now(UTC) - timedelta(seconds=5)
    with webhooks_off(directus):
        directus.create("contacts", {"email": email, "name": "Swept Ltd", "phone": "+33 6 55 44 33 11"})
    deployment.settle()
    assert in_every_simulator(deployment, email) == {"invoiceninja": 0, "erpnext": 0, "mautic": 0}
    swept = deployment.cli("sweep", "directus", "contact", "--since", since.isoformat())
    assert swept.returncode == 0, swept.stdout + swept.stderr
    wait_until(lambda: all(in_every_simulator(deployment, email).values()), timeout=90)
    deployment.settle()
    assert in_every_simulator(deployment, email) == {"invoiceninja": 1, "erpnext": 1, "mautic": 1}
    [customer] = customers_with(deployment.sims["erpnext"], email)
    assert customer["customer_name"] == "Swept Ltd" and customer["mobile_no"] == "+33 6 55 44 33 11"
    assert len(contacts_in_directus(directus, email)) == 1


def test_setup_check_reports_a_missing_schema_and_is_clean_after_setup(deployment, directus):
    """The server is shared by the session, so "fresh" is made here: a collection and a field removed."""
    assert directus.call("DELETE", "/collections/transfers").status_code == 204
    assert directus.call("DELETE", "/fields/reviews/extracted").status_code == 204
    check = deployment.cli("setup", "--check", "--system", "directus")
    assert check.returncode == 1, check.stdout + check.stderr
    assert (
        f"missing   collection transfers: missing ({len(COLLECTIONS['transfers'].fields)} fields"
        in check.stdout
    )
    assert "missing   field reviews.extracted: missing (json, cast-json)" in check.stdout
    assert "run `syncengine setup --system directus`" in check.stdout
    made = deployment.cli("setup", "--system", "directus")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "created   collection transfers" in made.stdout
    again = deployment.cli("setup", "--check", "--system", "directus")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "everything the engine needs is in place" in again.stdout
    targets.real_directus()  # the session's least-privilege user exists: give it the new collection too
    directus.grant_limited("transfers")


# --- issue 15's two findings on the real Directus ----------------------------------------------------------


def edit(directus: DirectusTarget, key: int, values: dict[str, Any]) -> None:
    answer = directus.call("PATCH", f"/items/contacts/{key}", json=values)
    assert answer.status_code == 200, answer.text


def ninja_phone(deployment: PeerDeployment, email: str) -> str | None:
    client = clients_with(deployment.sims["invoiceninja"], email)[0]
    return phone((client.get("contacts") or [{}])[0].get("phone") or "")


def directus_phone(directus: DirectusTarget, email: str) -> str | None:
    return phone(contacts_in_directus(directus, email)[0].get("phone") or "")


def test_a_value_set_back_in_directus_after_another_systems_edit_is_not_taken_for_a_duplicate(
    deployment, directus
):
    """A -> B -> A: the Flow's event for the second A carries the same body as the first one's; it is a
    change all the same, and reaches every system."""
    email, key = synced_from_directus(deployment, directus, "dx-aba")
    first, other = "+33 3 33 33 33 21", "+33 3 33 33 33 22"
    edit(directus, key, {"phone": first})
    wait_until(lambda: ninja_phone(deployment, email) == phone(first), timeout=90)
    deployment.settle()
    servers = {name: SimpleNamespace(url=deployment.env[f"{name.upper()}_URL"]) for name in SIMULATED}
    edit_invoiceninja_phone(SimpleNamespace(sims=deployment.sims, servers=servers), email, other)
    wait_until(lambda: directus_phone(directus, email) == phone(other), timeout=90)
    deployment.settle()
    # when: the first value is typed again in Directus
    edit(directus, key, {"phone": first})
    # then: it is everywhere, without a sweep
    wait_until(lambda: ninja_phone(deployment, email) == phone(first), timeout=90)
    deployment.settle()
    assert directus_phone(directus, email) == phone(first)


def test_a_restore_in_directus_writes_no_null_over_the_consent_it_holds(deployment, directus):
    email, key = synced_from_directus(deployment, directus, "dx-consent")
    edit(directus, key, {"marketing_consent": True})
    deployment.settle()
    edit(directus, key, {"archived": True})
    wait_until(lambda: archived_elsewhere(deployment, email), timeout=90)
    deployment.settle()
    edit(directus, key, {"archived": False})
    wait_until(lambda: not clients_with(deployment.sims["invoiceninja"], email)[0].get("archived_at"),
               timeout=90)  # fmt: skip
    deployment.settle()
    [item] = contacts_in_directus(directus, email)
    assert item["archived"] is False and item["marketing_consent"] is True
    # Directus's own record of every write to the item: none set the consent to null.
    query = {"filter[collection][_eq]": "contacts", "filter[item][_eq]": str(key), "limit": -1}
    deltas = [r.get("delta") or {} for r in directus.call("GET", "/revisions", params=query).json()["data"]]
    assert any(d.get("archived") is False for d in deltas)  # the restore is there
    assert not any("marketing_consent" in d and d["marketing_consent"] is None for d in deltas)
