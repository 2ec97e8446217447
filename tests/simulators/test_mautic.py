"""Mautic 5 API: Basic and OAuth2 auth, the keyed list envelope and its paging, ``where``/``search`` sweeps,
contact dedupe on email (201 vs 200), edit semantics, companies, segments and counted transactional sends."""

from __future__ import annotations

import pytest
import requests

from simulators.mautic import MauticSimulator

AUTH = ("admin", "sim-mautic-pass")


@pytest.fixture()
def mautic(serve):
    sim = MauticSimulator(oauth_clients={"client-1": "client-secret"})
    base = serve(sim).url

    def call(method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("auth", AUTH)
        return requests.request(method, base + path, timeout=5, **kw)

    return sim, call


def new_contact(call, **fields) -> requests.Response:
    return call("POST", "/api/contacts/new", json=fields)


def test_basic_auth_and_its_error(mautic):
    _, call = mautic
    assert call("GET", "/api/contacts").status_code == 200
    denied = call("GET", "/api/contacts", auth=("admin", "nope"))
    assert denied.status_code == 401
    assert denied.json() == {
        "errors": [{"message": "API authorization denied.", "code": 401, "type": "access_denied"}]
    }
    assert call("GET", "/api/contacts", auth=None).status_code == 401


def test_oauth2_client_credentials_tokens_last_an_hour(mautic):
    sim, call = mautic
    r = call(
        "POST",
        "/oauth/v2/token",
        auth=None,
        data={"grant_type": "client_credentials", "client_id": "client-1", "client_secret": "client-secret"},
    )
    assert r.status_code == 200 and r.json()["expires_in"] == 3600 and r.json()["token_type"] == "bearer"
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert call("GET", "/api/contacts", auth=None, headers=bearer).status_code == 200
    sim.clock.advance(3601)
    expired = call("GET", "/api/contacts", auth=None, headers=bearer)
    assert expired.status_code == 401 and expired.json()["errors"][0]["type"] == "invalid_grant"
    bad = call(
        "POST",
        "/oauth/v2/token",
        auth=None,
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"


def test_new_contact_dedupes_on_email(mautic):
    _, call = mautic
    first = new_contact(call, firstname="Ann", email="ann@example.test", tags=["sync"])
    assert first.status_code == 201
    contact = first.json()["contact"]
    assert contact["fields"]["core"]["email"]["value"] == "ann@example.test"
    assert contact["fields"]["all"]["firstname"] == "Ann" and contact["dateIdentified"].endswith("+00:00")
    again = new_contact(call, lastname="Lee", email="ANN@example.test")
    assert again.status_code == 200 and again.json()["contact"]["id"] == contact["id"]
    assert again.json()["contact"]["fields"]["all"]["firstname"] == "Ann"  # blank fields do not overwrite
    assert call("GET", "/api/contacts").json()["total"] == 1
    invalid = new_contact(call, email="not-an-email")
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["details"]["email"]


def test_new_contact_matches_only_on_published_unique_identifiers(mautic):
    """Email is the one unique identifier by default (`/api/fields/contact` says so); a person may clear it
    (the edit takes either spelling of Mautic's `isUniqueIdentifer`), and then a create with a known email
    makes a second contact."""
    _, call = mautic
    fields = call("GET", "/api/fields/contact", params={"limit": 100}).json()["fields"]
    unique = [f["alias"] for f in (fields.values() if isinstance(fields, dict) else fields)
              if f["isUniqueIdentifier"]]  # fmt: skip
    assert unique == ["email"]
    email_field = next(f for f in (fields.values() if isinstance(fields, dict) else fields)
                       if f["alias"] == "email")  # fmt: skip
    assert new_contact(call, email="bo@example.test").status_code == 201
    edited = call("PATCH", f"/api/fields/contact/{email_field['id']}/edit", json={"isUniqueIdentifer": False})
    assert edited.status_code == 200 and edited.json()["field"]["isUniqueIdentifier"] is False
    assert new_contact(call, email="bo@example.test").status_code == 201
    assert call("GET", "/api/contacts", params={"search": "bo@example.test"}).json()["total"] == 2


def test_edit_semantics(mautic):
    _, call = mautic
    cid = new_contact(call, firstname="Ann", lastname="Lee", email="a@example.test").json()["contact"]["id"]
    patched = call("PATCH", f"/api/contacts/{cid}/edit", json={"city": "Berlin"}).json()["contact"]
    assert patched["fields"]["all"]["lastname"] == "Lee" and patched["fields"]["all"]["city"] == "Berlin"
    missing = call("PATCH", "/api/contacts/999/edit", json={"city": "X"})
    assert missing.status_code == 404
    assert missing.json() == {
        "errors": [{"code": 404, "message": "Item was not found.", "details": [], "type": None}]
    }
    replaced = call("PUT", f"/api/contacts/{cid}/edit", json={"email": "a@example.test"}).json()["contact"]
    assert replaced["fields"]["all"]["lastname"] is None  # PUT clears what it does not send
    created = call("PUT", "/api/contacts/999/edit", json={"email": "new@example.test"})
    assert created.status_code == 201 and created.json()["contact"]["id"] != 999
    gone = call("DELETE", f"/api/contacts/{cid}/delete")
    assert gone.status_code == 200 and call("GET", f"/api/contacts/{cid}").status_code == 404


def test_list_pages_over_several_pages_keyed_by_id(mautic):
    _, call = mautic
    ids = [new_contact(call, email=f"c{i}@example.test").json()["contact"]["id"] for i in range(7)]
    seen, start = [], 0
    while True:
        body = call("GET", "/api/contacts", params={"start": start, "limit": 3, "orderBy": "id"}).json()
        assert body["total"] == 7 and isinstance(body["contacts"], dict)
        if not body["contacts"]:
            break
        assert all(k == str(v["id"]) for k, v in body["contacts"].items())
        seen += [c["id"] for c in body["contacts"].values()]
        start += 3
    assert seen == ids and start == 9
    assert call("GET", "/api/contacts", params={"search": "email:nobody@example.test"}).json() == {
        "total": 0,
        "contacts": {},
    }
    desc = call("GET", "/api/contacts", params={"orderBy": "id", "orderByDir": "DESC", "limit": 2}).json()
    assert [c["id"] for c in desc["contacts"].values()] == ids[:-3:-1]
    assert len(call("GET", "/api/contacts").json()["contacts"]) == 7  # default limit 30


def test_sweep_with_where_on_db_columns(mautic):
    sim, call = mautic
    old = new_contact(call, email="old@example.test").json()["contact"]["id"]
    sim.clock.advance(10)
    since = sim.db_now()
    new = new_contact(call, email="new@example.test").json()["contact"]["id"]
    sim.clock.advance(10)
    call("PATCH", f"/api/contacts/{old}/edit", json={"city": "Paris"})
    where = {
        "where[0][col]": "date_modified",
        "where[0][expr]": "gte",
        "where[0][val]": since,
        "orderBy": "date_modified",
        "orderByDir": "ASC",
    }
    assert [c["id"] for c in call("GET", "/api/contacts", params=where).json()["contacts"].values()] == [
        new,
        old,
    ]
    added = {"where[0][col]": "date_added", "where[0][expr]": "lt", "where[0][val]": since}
    assert list(call("GET", "/api/contacts", params=added).json()["contacts"]) == [str(old)]
    either = {
        "where[0][expr]": "orX",
        "where[0][val][0][col]": "email",
        "where[0][val][0][expr]": "eq",
        "where[0][val][0][val]": "old@example.test",
        "where[0][val][1][col]": "city",
        "where[0][val][1][expr]": "eq",
        "where[0][val][1][val]": "nowhere",
    }
    assert call("GET", "/api/contacts", params=either).json()["total"] == 1
    bad = call(
        "GET",
        "/api/contacts",
        params={"where[0][col]": "dateModified", "where[0][expr]": "gte", "where[0][val]": since},
    )  # property names are not DB columns
    assert bad.status_code == 400
    found = call("GET", "/api/contacts", params={"search": "email:NEW@example.test", "minimal": 1}).json()
    assert list(found["contacts"]) == [str(new)] and "ipAddresses" not in found["contacts"][str(new)]


def test_transactional_sends_are_logged_one_per_call(mautic):
    sim, call = mautic
    sim.seed({"emails": [{"name": "Invoice mail", "subject": "Your invoice {invoice}"}]})
    assert call("GET", "/api/emails").json()["total"] == 1
    cid = new_contact(call, email="pay@example.test").json()["contact"]["id"]
    for _ in range(2):
        r = call("POST", f"/api/emails/1/contact/{cid}/send", json={"tokens": {"{invoice}": "INV-7"}})
        assert r.json() == {"success": True}
    sends = sim.sent_emails(email_id=1, contact_id=cid)
    assert len(sends) == 2 and sends[0]["tokens"] == {"{invoice}": "INV-7"}  # Mautic itself does not dedupe
    assert call("POST", f"/api/emails/9/contact/{cid}/send", json={}).status_code == 404
    anonymous = new_contact(call, city="Nowhere").json()["contact"]["id"]
    assert call("POST", f"/api/emails/1/contact/{anonymous}/send", json={}).json()["success"] is False


def test_companies_and_segments(mautic):
    _, call = mautic
    first = call("POST", "/api/companies/new", json={"companyname": "Acme Ltd", "companycity": "Lyon"})
    assert first.status_code == 201
    again = call(
        "POST", "/api/companies/new", json={"companyname": "acme ltd", "companywebsite": "https://a.io"}
    )
    assert again.status_code == 200 and again.json()["company"]["id"] == first.json()["company"]["id"]
    listed = call("GET", "/api/companies", params={"search": "acme"}).json()
    assert (
        listed["total"] == 1 and listed["companies"]["1"]["fields"]["all"]["companywebsite"] == "https://a.io"
    )
    cid = new_contact(call, email="x@example.test").json()["contact"]["id"]
    assert call("POST", f"/api/companies/1/contact/{cid}/add").json() == {"success": True}
    assert call("GET", f"/api/contacts/{cid}").json()["contact"]["fields"]["all"]["company"] == "acme ltd"
    seg = call("POST", "/api/segments/new", json={"name": "Customers"}).json()["list"]
    assert call("POST", f"/api/segments/{seg['id']}/contact/{cid}/add").json() == {"success": True}
    assert list(call("GET", f"/api/contacts/{cid}/segments").json()["lists"]) == [str(seg["id"])]
    call("POST", f"/api/segments/{seg['id']}/contact/{cid}/remove")
    assert call("GET", f"/api/contacts/{cid}/segments").json()["total"] == 0
    assert call("POST", f"/api/segments/99/contact/{cid}/add").status_code == 404


def test_rate_limit_and_outage_in_mautic_shape(mautic):
    sim, call = mautic
    sim.set_faults(rate_limit={"limit": 1, "window": 3600})
    assert call("GET", "/api/contacts").status_code == 200
    r = call("GET", "/api/contacts")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert r.json()["errors"][0]["message"] == "You exceeded the rate limit of 1 API calls per hour."
    sim.clear_faults()
    sim.set_faults(outage=True)
    r = call("GET", "/api/contacts")
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == 503
