"""Contract tests: each Revolut endpoint the simulator serves, request and answer, against ``business.yaml``.

``GET /counterparties`` documents ``created_before`` with the default "the date-time at which the request is
made", which openapi-core fills in and then rejects as not a date-time: requests without ``created_before``
are therefore checked for their answer only (``request=False``).

The document's 401 schema (``Error``, ``code`` required) contradicts its own example and the guide, which
both show ``{"message": "The request should be authorized."}``: the simulator follows the example, and the
401 test compares with that example instead of the schema.
"""

from __future__ import annotations

import pytest
import requests
import yaml
from openapi_core.validation.response.exceptions import InvalidData

from simulators.revolut import RevolutSimulator
from tests.simulators import contract
from tests.simulators.contract import SPECS, check, needs_specs

pytestmark = needs_specs
# the spec's `servers` (sandbox: the simulator serves the sandbox-only simulation endpoints too)
contract.SPEC_FILES.setdefault("revolut", ("revolut/business.yaml", "https://sandbox-b2b.revolut.com"))
IBAN = "FR1420041010050500013M02606"


@pytest.fixture()
def api(serve):
    sim = RevolutSimulator()
    base = serve(sim).url
    headers = {"Authorization": f"Bearer {sim.issue_tokens()['access_token']}"}

    def call(method: str, path: str, *, expect: int = 200, request: bool = True, **kw) -> requests.Response:
        r = requests.request(method, base + path, headers=headers, timeout=5, **kw)
        assert r.status_code == expect, r.text
        check("revolut", r, base, request=request)
        return r

    return sim, call


def test_accounts(api):
    _, call = api
    accounts = call("GET", "/api/1.0/accounts").json()
    call("GET", f"/api/1.0/accounts/{accounts[0]['id']}")


def test_counterparties(api):
    sim, call = api
    bank = call(
        "POST",
        "/api/1.0/counterparty",
        json={
            "company_name": "Bleu Blanc Conseil SARL",
            "bank_country": "FR",
            "currency": "EUR",
            "iban": IBAN,
            "address": {"country": "FR", "postcode": "75002"},
        },
    )
    call(
        "POST",
        "/api/1.0/counterparty",
        json={"profile_type": "personal", "name": "Test User 1", "revtag": "john1pvki"},
    )
    call("POST", "/api/1.0/counterparty", json={"name": "Test User 1", "revtag": "john1pvki"}, expect=422)
    call(
        "POST",
        "/api/1.0/counterparty",
        json={"company_name": "X Co", "bank_country": "FR", "currency": "EUR", "iban": "FR66995908786"},
        expect=400,
    )
    sim.clock.advance(1)
    page = call("GET", "/api/1.0/counterparties", params={"limit": 1}, request=False).json()
    call("GET", "/api/1.0/counterparties", params={"limit": 1, "created_before": page[0]["created_at"]})
    call("GET", "/api/1.0/counterparties", params={"iban": IBAN, "created_before": "2100-01-01T00:00:00Z"})
    call("GET", "/api/1.0/counterparties", params={"limit": 5000}, expect=400, request=False)
    call("GET", f"/api/1.0/counterparty/{bank.json()['id']}")
    call("DELETE", f"/api/1.0/counterparty/{bank.json()['id']}", expect=204)


def test_money_movements_and_transactions(api):
    sim, call = api
    accounts = call("GET", "/api/1.0/accounts").json()
    eur = next(a for a in accounts if a["currency"] == "EUR")
    sim.add_account(name="EUR 2", currency="EUR")
    other = next(a for a in call("GET", "/api/1.0/accounts").json() if a["name"] == "EUR 2")
    cp = call(
        "POST",
        "/api/1.0/counterparty",
        json={"company_name": "Bleu", "bank_country": "FR", "currency": "EUR", "iban": IBAN},
    ).json()
    pay = {
        "request_id": "inv-1",
        "account_id": eur["id"],
        "receiver": {"counterparty_id": cp["id"]},
        "amount": 10,
        "currency": "EUR",
        "reference": "INV-1",
        "charge_bearer": "shared",
    }
    paid = call("POST", "/api/1.0/pay", json=pay).json()
    call("POST", "/api/1.0/pay", json=pay, expect=400)
    call(
        "POST",
        "/api/1.0/transfer",
        json={
            "request_id": "t-1",
            "source_account_id": eur["id"],
            "target_account_id": other["id"],
            "amount": 5,
            "currency": "EUR",
            "reference": "move",
        },
    )
    topup = call(
        "POST",
        "/api/1.0/sandbox/topup",
        json={
            "account_id": eur["id"],
            "amount": 100,
            "currency": "EUR",
            "reference": "Test Top-up",
            "state": "pending",
        },
    ).json()
    call("POST", f"/api/1.0/sandbox/transactions/{topup['id']}/complete")
    call("POST", f"/api/1.0/sandbox/transactions/{paid['id']}/decline")
    sim.receive_payment(amount=42, reference="INV-7", payer="Acme Ltd")
    txs = call(
        "GET",
        "/api/1.0/transactions",
        params=[("from", "2000-01-01"), ("count", "2"), ("state", "completed"), ("state", "declined")],
    ).json()
    call(
        "GET", "/api/1.0/transactions", params={"to": txs[-1]["created_at"], "count": 2, "account": eur["id"]}
    )
    call("GET", "/api/1.0/transactions", params={"type": "topup"})
    call("GET", "/api/1.0/transactions", params={"request_id": "inv-1", "from": paid["created_at"][:10]})
    call("GET", f"/api/1.0/transaction/{paid['id']}")


def test_webhooks(api):
    _, call = api
    hook = call("POST", "/api/2.0/webhooks", json={"url": "https://example.com/hook"}, expect=201).json()
    call("GET", "/api/2.0/webhooks")
    call("GET", f"/api/2.0/webhooks/{hook['id']}")
    call("PATCH", f"/api/2.0/webhooks/{hook['id']}", json={"events": ["TransactionCreated"]})
    call("POST", f"/api/2.0/webhooks/{hook['id']}/rotate-signing-secret", json={"expiration_period": "PT5H"})
    call(
        "POST",
        f"/api/2.0/webhooks/{hook['id']}/rotate-signing-secret",
        json={"expiration_period": "P9D"},
        expect=400,
    )
    call("GET", f"/api/2.0/webhooks/{hook['id']}/failed-events", params={"limit": 10})
    call("DELETE", f"/api/2.0/webhooks/{hook['id']}", expect=204)
    call("GET", f"/api/2.0/webhooks/{hook['id']}", expect=404)
    for i in range(10):
        call("POST", "/api/2.0/webhooks", json={"url": f"https://example.com/{i}"}, expect=201)
    call("POST", "/api/2.0/webhooks", json={"url": "https://example.com/x"}, expect=422)


def test_rate_limited_answer(api):
    sim, call = api
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 3})
    call("GET", "/api/1.0/accounts", expect=429)


def test_unauthorized_answer_is_the_documented_example(serve):
    base = serve(RevolutSimulator()).url
    r = requests.get(base + "/api/1.0/counterparties", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert r.status_code == 401
    with (SPECS / "revolut/business.yaml").open() as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    example = doc["paths"]["/counterparties"]["get"]["responses"]["401"]["content"]["application/json"][
        "example"
    ]
    assert r.json() == example
    with pytest.raises(InvalidData):  # the schema/example conflict described in the module docstring
        check("revolut", r, base, request=False)
