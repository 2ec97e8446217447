"""Revolut webhooks v2: subscription API, signed deliveries (checked with an HMAC computed here), secret
rotation with overlapping signatures, 3 retries at the (shortened) interval, failed events."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from simulators.revolut import RevolutSimulator


@pytest.fixture()
def revolut(serve):
    sim = RevolutSimulator()
    sim.webhook_retry_interval = 0.05  # 600 s at Revolut
    base = serve(sim).url
    headers = {"Authorization": f"Bearer {sim.issue_tokens()['access_token']}"}

    def call(method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{base}{path}", headers=headers, timeout=5, **kw)

    return sim, call


def signatures_valid(delivery: dict, secret: str) -> bool:
    ts = delivery["headers"]["Revolut-Request-Timestamp"]
    expected = (
        "v1=" + hmac.new(secret.encode(), f"v1.{ts}.".encode() + delivery["body"], hashlib.sha256).hexdigest()
    )
    return expected in delivery["headers"]["Revolut-Signature"].split(",")


def subscribe(call, url: str, events: list[str] | None = None) -> dict:
    body = {"url": url, **({"events": events} if events else {})}
    r = call("POST", "/api/2.0/webhooks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_topup_delivers_signed_transaction_created(revolut, hook_receiver):
    sim, call = revolut
    hook = subscribe(call, hook_receiver.url + "/revolut")
    assert hook["events"] == ["TransactionCreated", "TransactionStateChanged"]
    assert hook["signing_secret"].startswith("wsk_")
    eur = next(a for a in call("GET", "/api/1.0/accounts").json() if a["currency"] == "EUR")
    topup = call(
        "POST", "/api/1.0/sandbox/topup", json={"account_id": eur["id"], "amount": 25, "currency": "EUR"}
    )
    assert sim.flush_webhooks(5)
    [delivery] = hook_receiver.received
    assert delivery["path"] == "/revolut"
    assert delivery["headers"]["Content-Type"] == "application/json"
    assert len(delivery["headers"]["Revolut-Request-Timestamp"]) == 13  # unix milliseconds
    assert signatures_valid(delivery, hook["signing_secret"])
    assert not signatures_valid(delivery, "wsk_wrong")
    event = json.loads(delivery["body"])
    assert event["event"] == "TransactionCreated"
    assert event["data"] == call("GET", f"/api/1.0/transaction/{topup.json()['id']}").json()


def test_state_change_event(revolut, hook_receiver):
    sim, call = revolut
    subscribe(call, hook_receiver.url, ["TransactionStateChanged"])
    eur = next(a for a in call("GET", "/api/1.0/accounts").json() if a["currency"] == "EUR")
    tx = call(
        "POST",
        "/api/1.0/sandbox/topup",
        json={"account_id": eur["id"], "amount": 5, "currency": "EUR", "state": "pending"},
    ).json()
    call("POST", f"/api/1.0/sandbox/transactions/{tx['id']}/complete")
    assert sim.flush_webhooks(5)
    [delivery] = hook_receiver.received
    event = json.loads(delivery["body"])
    assert event["event"] == "TransactionStateChanged"
    assert event["data"] == {
        "id": tx["id"],
        "new_state": "completed",
        "old_state": "pending",
        "request_id": None,
    }


def test_rotation_keeps_old_secret_valid_until_it_expires(revolut, hook_receiver):
    sim, call = revolut
    hook = subscribe(call, hook_receiver.url)
    rotated = call(
        "POST", f"/api/2.0/webhooks/{hook['id']}/rotate-signing-secret", json={"expiration_period": "PT10M"}
    ).json()
    assert rotated["signing_secret"] != hook["signing_secret"]
    sim.receive_payment(amount=1, reference="A")
    assert sim.flush_webhooks(5)
    first = hook_receiver.received[-1]
    assert len(first["headers"]["Revolut-Signature"].split(",")) == 2
    assert signatures_valid(first, hook["signing_secret"]) and signatures_valid(
        first, rotated["signing_secret"]
    )

    sim.clock.advance(601)
    sim.receive_payment(amount=2, reference="B")
    assert sim.flush_webhooks(5)
    second = hook_receiver.received[-1]
    assert signatures_valid(second, rotated["signing_secret"]) and not signatures_valid(
        second, hook["signing_secret"]
    )
    too_long = call(
        "POST", f"/api/2.0/webhooks/{hook['id']}/rotate-signing-secret", json={"expiration_period": "P8D"}
    )
    assert too_long.status_code == 400


def test_at_most_three_active_signing_secrets(revolut):
    _, call = revolut
    hook = subscribe(call, "https://example.com/hook")
    path = f"/api/2.0/webhooks/{hook['id']}/rotate-signing-secret"
    assert call("POST", path, json={"expiration_period": "P1D"}).status_code == 200
    assert call("POST", path, json={"expiration_period": "P1D"}).status_code == 200
    r = call("POST", path, json={"expiration_period": "P1D"})
    assert r.status_code == 422 and r.json()["code"] == 3355
    assert call("POST", path, json={}).status_code == 200  # P0D: the current one dies, two old ones stay


def test_failed_delivery_is_retried_three_more_times(revolut, hook_receiver):
    sim, call = revolut
    hook = subscribe(call, hook_receiver.url)
    hook_receiver.statuses = [500, 502, 503, 200]
    sim.receive_payment(amount=3, reference="C")
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 4
    assert len({d["body"] for d in hook_receiver.received}) == 1  # the same event each time
    assert call("GET", f"/api/2.0/webhooks/{hook['id']}/failed-events").json() == []


def test_gives_up_after_four_attempts_and_lists_the_failed_event(revolut, hook_receiver):
    sim, call = revolut
    hook = subscribe(call, hook_receiver.url)
    hook_receiver.statuses = [500]
    tx = sim.receive_payment(amount=4, reference="D")
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 4
    [failed] = call("GET", f"/api/2.0/webhooks/{hook['id']}/failed-events").json()
    assert failed["webhook_id"] == hook["id"] and failed["payload"]["data"]["id"] == tx["id"]


def test_subscription_api(revolut):
    _, call = revolut
    assert call("POST", "/api/2.0/webhooks", json={}).json() == {
        "message": "Required 'url' is missing",
        "code": 3000,
    }
    assert call("POST", "/api/2.0/webhooks", json={"url": "http://example.com/x"}).status_code == 400
    hooks = [subscribe(call, f"https://example.com/{i}") for i in range(10)]
    eleventh = call("POST", "/api/2.0/webhooks", json={"url": "https://example.com/11"})
    assert eleventh.status_code == 422 and eleventh.json()["code"] == 3352
    listed = call("GET", "/api/2.0/webhooks").json()
    assert len(listed) == 10 and "signing_secret" not in listed[0]
    patched = call("PATCH", f"/api/2.0/webhooks/{hooks[0]['id']}", json={"events": ["TransactionCreated"]})
    assert patched.json()["events"] == ["TransactionCreated"] and "signing_secret" not in patched.json()
    assert call("PATCH", f"/api/2.0/webhooks/{hooks[0]['id']}", json={}).json()["code"] == 3000
    assert call("DELETE", f"/api/2.0/webhooks/{hooks[0]['id']}").status_code == 204
    missing = call("GET", f"/api/2.0/webhooks/{hooks[0]['id']}")
    assert missing.status_code == 404 and missing.json() == {"message": "Webhook not found", "code": 3040}


def test_control_surface_seed_makes_money_arrive(serve, hook_receiver):
    sim = RevolutSimulator()
    base = serve(sim).url
    target = {"url": hook_receiver.url, "secret": "wsk_ctl", "events": ["TransactionCreated"]}
    assert requests.post(f"{base}/_sim/webhooks", json=target, timeout=5).status_code == 200
    seeded = requests.post(
        f"{base}/_sim/seed",
        json={"incoming": [{"amount": 12.5, "reference": "INV-9", "payer": "Acme Ltd"}]},
        timeout=5,
    )
    assert seeded.status_code == 200
    assert requests.post(f"{base}/_sim/flush", json={"timeout": 5}, timeout=10).json() == {"flushed": True}
    [delivery] = hook_receiver.received
    assert signatures_valid(delivery, "wsk_ctl")
    [leg] = delivery["json"]["data"]["legs"]
    assert (leg["amount"], leg["description"]) == (12.5, "Payment from Acme Ltd")
    assert delivery["json"]["data"]["id"] == seeded.json()["seeded"]["incoming"][0]
