"""Revolut banking endpoints: created_at paging, sweep filters, request_id idempotency, limits and faults."""

from __future__ import annotations

import pytest
import requests

from simulators.revolut import RevolutSimulator

DAY = 86400.0


class Client:
    """Calls ``/api/1.0`` with a token issued as if the OAuth dance had happened; ``login()`` renews it."""

    def __init__(self, sim: RevolutSimulator, base: str) -> None:
        self.sim, self.base = sim, base
        self.login()

    def login(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.sim.issue_tokens()['access_token']}"}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.base}/api/1.0{path}", headers=self.headers, timeout=5, **kw)


@pytest.fixture()
def revolut(serve):
    sim = RevolutSimulator()
    return sim, Client(sim, serve(sim).url)


def _seed_history(sim: RevolutSimulator, n: int) -> list[str]:
    """``n`` completed incoming transfers, one second apart, oldest first."""
    ids = []
    for i in range(n):
        ids.append(sim.receive_payment(amount=10 + i, reference=f"INV-{i:03d}")["id"])
        sim.clock.advance(1)
    return ids


def test_transactions_page_newest_first_with_to_of_last_item(revolut):
    sim, call = revolut
    ids = _seed_history(sim, 7)
    pages, to = [], None
    while True:
        params = {"count": 3, **({"to": to} if to else {})}
        page = call("GET", "/transactions", params=params).json()
        if not page:
            break
        pages.append([t["id"] for t in page])
        to = page[-1]["created_at"]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == list(reversed(ids))


def test_from_is_inclusive_and_to_exclusive(revolut):
    sim, call = revolut
    _seed_history(sim, 3)
    txs = call("GET", "/transactions").json()
    middle = txs[1]["created_at"]
    assert [t["id"] for t in call("GET", "/transactions", params={"from": middle}).json()] == [
        txs[0]["id"],
        txs[1]["id"],
    ]
    assert [t["id"] for t in call("GET", "/transactions", params={"to": middle}).json()] == [txs[2]["id"]]


def test_type_state_and_account_filters(revolut):
    sim, call = revolut
    eur = next(a for a in call("GET", "/accounts").json() if a["currency"] == "EUR")
    sim.receive_payment(amount=5, reference="A")
    call(
        "POST",
        "/sandbox/topup",
        json={"account_id": eur["id"], "amount": 50, "currency": "EUR", "state": "pending"},
    )
    assert {t["type"] for t in call("GET", "/transactions", params={"type": "topup"}).json()} == {"topup"}
    states = call("GET", "/transactions", params=[("state", "pending"), ("state", "completed")]).json()
    assert len(states) == 2
    assert len(call("GET", "/transactions", params={"state": "pending"}).json()) == 1
    assert len(call("GET", "/transactions", params={"account": eur["id"]}).json()) == 2
    assert (
        call("GET", "/transactions", params={"account": "00000000-0000-0000-0000-000000000000"}).json() == []
    )


def test_request_id_lookup_needs_from_and_a_14_day_window(revolut):
    _, call = revolut
    eur = next(a for a in call("GET", "/accounts").json() if a["currency"] == "EUR")
    other = call(
        "POST",
        "/counterparty",
        json={
            "company_name": "Bleu",
            "bank_country": "FR",
            "currency": "EUR",
            "iban": "FR1420041010050500013M02606",
        },
    ).json()
    paid = call(
        "POST",
        "/pay",
        json={
            "request_id": "inv-42",
            "account_id": eur["id"],
            "amount": 12.5,
            "currency": "EUR",
            "receiver": {"counterparty_id": other["id"]},
        },
    )
    assert paid.status_code == 200 and paid.json()["state"] == "pending"
    r = call("GET", "/transactions", params={"request_id": "inv-42"})
    assert r.status_code == 400
    since = "2000-01-01"
    assert call("GET", "/transactions", params={"request_id": "inv-42", "from": since}).status_code == 400
    found = call(
        "GET", "/transactions", params={"request_id": "inv-42", "from": paid.json()["created_at"][:10]}
    )
    assert [t["id"] for t in found.json()] == [paid.json()["id"]]


def test_pay_and_transfer_reject_a_reused_request_id_for_two_weeks(revolut):
    sim, call = revolut
    accounts = call("GET", "/accounts").json()
    eur = next(a for a in accounts if a["currency"] == "EUR")
    second = call(
        "POST",
        "/counterparty",
        json={"profile_type": "business", "name": "Test User 1", "revtag": "john1pvki"},
    ).json()
    body = {
        "request_id": "pay-1",
        "account_id": eur["id"],
        "amount": 10,
        "currency": "EUR",
        "receiver": {"counterparty_id": second["id"]},
        "reference": "INV-1",
    }
    first = call("POST", "/pay", json=body)
    assert first.status_code == 200 and first.json()["state"] == "completed"  # Revolut to Revolut: instant
    dup = call("POST", "/pay", json=body)
    assert dup.status_code == 400 and dup.json() == {"code": 3020, "message": "Duplicate request: pay-1"}
    assert len(call("GET", "/transactions", params={"type": "transfer"}).json()) == 1
    sim.clock.advance(14 * DAY + 60)  # idempotency only covers two weeks
    call.login()  # (the access token died 40 minutes in)
    assert call("POST", "/pay", json=body).status_code == 200

    sim.add_account(name="EUR 2", currency="EUR", balance=0)
    target = next(a for a in call("GET", "/accounts").json() if a["name"] == "EUR 2")
    move = {
        "request_id": "move-1",
        "source_account_id": eur["id"],
        "target_account_id": target["id"],
        "amount": 100,
        "currency": "EUR",
    }
    assert call("POST", "/transfer", json=move).json()["state"] == "completed"
    assert call("POST", "/transfer", json=move).json()["code"] == 3020
    assert call("GET", f"/accounts/{target['id']}").json()["balance"] == 100.0


def test_sandbox_transition_is_final(revolut):
    _, call = revolut
    eur = next(a for a in call("GET", "/accounts").json() if a["currency"] == "EUR")
    tx = call(
        "POST",
        "/sandbox/topup",
        json={"account_id": eur["id"], "amount": 30, "currency": "EUR", "state": "pending"},
    ).json()
    before = call("GET", f"/accounts/{eur['id']}").json()["balance"]
    done = call("POST", f"/sandbox/transactions/{tx['id']}/complete")
    assert done.json()["state"] == "completed" and "completed_at" in done.json()
    assert call("GET", f"/accounts/{eur['id']}").json()["balance"] == before + 30
    assert call("POST", f"/sandbox/transactions/{tx['id']}/revert").status_code == 400
    assert call("GET", f"/transaction/{tx['id']}").json()["state"] == "completed"


def test_counterparties_page_with_created_before(revolut):
    sim, call = revolut
    for i in range(7):
        r = call(
            "POST",
            "/counterparty",
            json={
                "company_name": f"Supplier {i}",
                "bank_country": "GB",
                "currency": "GBP",
                "account_no": "12345678",
                "sort_code": "540105",
            },
        )
        assert r.status_code == 200
        sim.clock.advance(1)
    names, before = [], None
    while True:
        page = call(
            "GET", "/counterparties", params={"limit": 3, **({"created_before": before} if before else {})}
        )
        if not page.json():
            break
        names += [c["name"] for c in page.json()]
        before = page.json()[-1]["created_at"]
    assert names == [f"Supplier {i}" for i in reversed(range(7))]
    assert call("GET", "/counterparties", params={"limit": 0}).json()["code"] == 2101
    assert len(call("GET", "/counterparties", params={"name": "plier 3"}).json()) == 1


def test_counterparty_validation(revolut):
    _, call = revolut
    bad = call(
        "POST",
        "/counterparty",
        json={"company_name": "X Co", "bank_country": "FR", "currency": "EUR", "iban": "FR66995908786"},
    )
    assert bad.status_code == 400 and bad.json() == {
        "code": 3000,
        "message": "FR66995908786 is not a valid IBAN",
    }
    first = call("POST", "/counterparty", json={"name": "John Smith", "revtag": "johnsmith"}).json()
    again = call("POST", "/counterparty", json={"name": "John Smith", "revtag": "johnsmith"})
    assert again.status_code == 422 and again.json()["params"] == {"counterparty_id": first["id"]}


def test_rate_limit_is_60_a_minute_with_retry_after(revolut):
    sim, call = revolut
    statuses = [call("GET", "/accounts").status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60
    limited = call("GET", "/accounts")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    body = limited.json()
    assert body["code"] == 3162 and body["message"] == "Request rate limit has been reached. Try again later."
    assert "error_id" in body
    sim.clock.advance(60)
    assert call("GET", "/accounts").status_code == 200


def test_faults_answer_in_revolut_shape(revolut):
    sim, call = revolut
    sim.set_faults(outage=True)
    r = call("GET", "/accounts")
    assert r.status_code == 503 and r.json()["code"] == 5003 and "error_id" in r.json()
    sim.clear_faults()
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 7})
    r = call("GET", "/accounts")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and r.json()["code"] == 3162
    assert call("GET", "/accounts").status_code == 200
