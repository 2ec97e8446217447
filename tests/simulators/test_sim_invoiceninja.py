"""Invoice Ninja simulator behaviour as its API documents it (api-docs.yaml and its source)."""

from __future__ import annotations

import pytest
import requests

from simulators.invoiceninja import InvoiceNinjaSimulator

H = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}


@pytest.fixture()
def ninja(serve):
    sim = InvoiceNinjaSimulator()
    sim.duplicate_payment_window = 0.0  # only the test about it turns the ~1 s guard on
    return sim, serve(sim).url + "/api/v1"


def post(url: str, path: str, body: dict, **kw) -> requests.Response:
    return requests.post(url + path, json=body, headers=H, timeout=5, **kw)


def client(url: str, name: str = "Acme", **extra) -> dict:
    body = {"name": name, "contacts": [{"email": f"{name}@x.io"}], **extra}
    return post(url, "/clients", body).json()["data"]


def invoice(url: str, client_id: str, cost: float = 100.0, query: str = "", **extra) -> dict:
    body = {"client_id": client_id, "line_items": [{"cost": cost, "quantity": 1}], **extra}
    return post(url, f"/invoices{query}", body).json()["data"]


def test_bad_or_missing_token_is_403(ninja):
    _sim, url = ninja
    for headers in ({}, {"X-API-TOKEN": "nope"}):
        r = requests.get(url + "/clients", headers=headers, timeout=5)
        assert r.status_code == 403 and r.json() == {"message": "Invalid token", "errors": {}}


def test_create_shapes_ids_and_timestamps(ninja):
    _sim, url = ninja
    c = client(url)
    assert isinstance(c["id"], str) and len(c["id"]) == 10 and not c["id"].isdigit()
    assert isinstance(c["updated_at"], int) and c["archived_at"] == 0 and c["is_deleted"] is False
    assert c["contacts"][0]["email"] == "Acme@x.io" and c["contacts"][0]["is_primary"] is True
    got = requests.get(f"{url}/clients/{c['id']}", headers=H, timeout=5).json()
    assert got == {"data": c}
    assert requests.get(f"{url}/clients/XXXXXXXXXX", headers=H, timeout=5).status_code == 404


def test_pagination_across_pages(ninja, serve):
    sim, url = ninja
    sim.seed({"clients": 45})
    seen, page, meta = [], 1, None
    while True:
        params = {"per_page": 20, "page": page}
        body = requests.get(f"{url}/clients", params=params, headers=H, timeout=5).json()
        seen += [c["id"] for c in body["data"]]
        meta = body["meta"]["pagination"]
        if page >= meta["total_pages"]:
            break
        assert "next" in meta["links"]
        page += 1
    assert page == 3 and len(seen) == len(set(seen)) == 45
    assert meta == {**meta, "total": 45, "count": 5, "per_page": 20, "current_page": 3, "total_pages": 3}
    default = requests.get(f"{url}/clients", headers=H, timeout=5).json()
    assert len(default["data"]) == 20
    capped = requests.get(f"{url}/clients", params={"per_page": 99999}, headers=H, timeout=5).json()
    assert capped["meta"]["pagination"]["per_page"] == 5000


def test_updated_at_status_and_sort_filters(ninja):
    sim, url = ninja
    old = client(url, "Old")
    sim.clock.advance(100)
    mark = int(sim.now())
    new = client(url, "New")
    gone = client(url, "Gone")
    post(url, "/clients/bulk", {"action": "archive", "ids": [gone["id"]]})

    def ids(**params):
        body = requests.get(f"{url}/clients", params=params, headers=H, timeout=5).json()
        return [c["id"] for c in body["data"]]

    assert ids(updated_at=mark) == [new["id"], gone["id"]]  # inclusive >=
    day = "2000-01-01"
    assert ids(updated_at=day) == [old["id"], new["id"], gone["id"]]  # date strings work too
    assert ids(updated_at=mark, status="active") == [new["id"]]
    assert ids(status="archived") == [gone["id"]]
    assert ids() == [old["id"], new["id"], gone["id"]]  # withTrashed(): no status -> everything
    sim.clock.advance(10)
    requests.put(f"{url}/clients/{old['id']}", json={"name": "Old 2"}, headers=H, timeout=5)
    assert ids(sort="updated_at|asc")[-1] == old["id"]
    assert ids(sort="updated_at|desc")[0] == old["id"]


def test_archive_delete_restore_via_bulk(ninja):
    _sim, url = ninja
    c = client(url)
    archived = post(url, "/clients/bulk", {"action": "archive", "ids": [c["id"]]}).json()["data"][0]
    assert archived["archived_at"] > 0 and archived["is_deleted"] is False
    deleted = post(url, "/clients/bulk", {"action": "delete", "ids": [c["id"]]}).json()["data"][0]
    assert deleted["is_deleted"] is True
    params = {"is_deleted": "true"}
    assert len(requests.get(f"{url}/clients", params=params, headers=H, timeout=5).json()["data"]) == 1
    restored = post(url, "/clients/bulk", {"action": "restore", "ids": [c["id"]]}).json()["data"][0]
    assert restored["is_deleted"] is False and restored["archived_at"] == 0
    assert post(url, "/clients/bulk", {"action": "explode", "ids": [c["id"]]}).status_code == 422


def test_validation_422_shape_and_redirect_without_ajax_header(ninja):
    _sim, url = ninja
    client(url, number="C-1")
    r = post(url, "/clients", {"name": "Dup", "number": "C-1"})
    assert r.status_code == 422
    assert r.json() == {
        "message": "The given data was invalid.",
        "errors": {"number": ["The number has already been taken."]},
    }
    r = requests.post(
        f"{url}/invoices", json={}, headers={"X-API-TOKEN": "TOKEN"}, allow_redirects=False, timeout=5
    )
    assert r.status_code == 302  # Laravel redirects back unless the request expects JSON


def test_invoice_totals_status_and_filters(ninja):
    _sim, url = ninja
    c = client(url)
    inv = invoice(
        url,
        c["id"],
        cost=100,
        line_items=[{"cost": 100, "quantity": 2, "tax_rate1": 20}],
        due_date="2024-01-31",
        number="INV-1",
    )
    assert inv["amount"] == 240.0 and inv["status_id"] == "1" and inv["balance"] == 0.0  # drafts carry none
    sent = requests.get(f"{url}/invoices/{inv['id']}/mark_sent", headers=H, timeout=5).json()["data"]
    assert sent["status_id"] == "2" and sent["balance"] == 240.0
    assert requests.get(f"{url}/clients/{c['id']}", headers=H, timeout=5).json()["data"]["balance"] == 240.0
    other = invoice(url, client(url, "Other")["id"])

    def numbers(**params):
        body = requests.get(f"{url}/invoices", params=params, headers=H, timeout=5).json()
        return [i["number"] for i in body["data"]]

    assert numbers(number="INV-1") == ["INV-1"]
    assert numbers(client_id=c["id"]) == ["INV-1"]
    assert numbers(status_id="1") == [other["number"]]
    assert numbers(client_status="unpaid") == ["INV-1"]
    assert numbers(client_status="overdue") == ["INV-1"]  # due 2024-01-31, balance > 0
    assert post(url, "/invoices", {"client_id": c["id"], "number": "INV-1"}).status_code == 422
    assert post(url, "/invoices", {"client_id": "nobody"}).status_code == 422


def test_payments_change_balance_and_status(ninja):
    _sim, url = ninja
    c = client(url)
    inv = invoice(url, c["id"], query="?mark_sent=true")
    body = {
        "client_id": c["id"],
        "amount": 40,
        "date": "2024-05-02",
        "transaction_reference": "TX1",
        "idempotency_key": "rev-tx-1",
        "invoices": [{"invoice_id": inv["id"], "amount": 40}],
    }
    pay = post(url, "/payments", body).json()["data"]
    assert pay["amount"] == 40.0 and pay["invoices"] == [{"invoice_id": inv["id"], "amount": "40.00"}]
    partial = requests.get(f"{url}/invoices/{inv['id']}", headers=H, timeout=5).json()["data"]
    assert (partial["status_id"], partial["balance"], partial["paid_to_date"]) == ("3", 60.0, 40.0)
    post(
        url,
        "/payments",
        {
            **body,
            "idempotency_key": "rev-tx-2",
            "amount": 60,
            "invoices": [{"invoice_id": inv["id"], "amount": 60}],
        },
    )
    paid = requests.get(f"{url}/invoices/{inv['id']}", headers=H, timeout=5).json()["data"]
    assert (paid["status_id"], paid["balance"]) == ("4", 0.0)
    assert requests.get(f"{url}/clients/{c['id']}", headers=H, timeout=5).json()["data"]["balance"] == 0.0
    again = post(url, "/invoices/bulk", {"action": "mark_paid", "ids": [inv["id"]]})
    assert again.status_code == 400
    requests.delete(f"{url}/payments/{pay['id']}", headers=H, timeout=5)
    back = requests.get(f"{url}/invoices/{inv['id']}", headers=H, timeout=5).json()["data"]
    assert (back["status_id"], back["balance"]) == ("3", 40.0)


def test_payment_idempotency_key_reuse_is_422(ninja):
    sim, url = ninja
    c = client(url)
    inv = invoice(url, c["id"], query="?mark_sent=true")
    body = {
        "client_id": c["id"],
        "amount": 10,
        "idempotency_key": "k-1",
        "invoices": [{"invoice_id": inv["id"], "amount": 10}],
    }
    assert post(url, "/payments", body).status_code == 200
    r = post(url, "/payments", body)
    assert r.status_code == 422 and "idempotency_key" in r.json()["errors"]
    assert len(sim.db["payments"]) == 1
    over = {
        **body,
        "idempotency_key": "k-2",
        "amount": 500,
        "invoices": [{"invoice_id": inv["id"], "amount": 500}],
    }
    assert post(url, "/payments", over).status_code == 422


def test_duplicate_payment_within_a_second_is_429(ninja):
    sim, url = ninja
    sim.duplicate_payment_window = 1.0
    c = client(url)
    inv = invoice(url, c["id"], query="?mark_sent=true")
    body = {"client_id": c["id"], "amount": 10, "invoices": [{"invoice_id": inv["id"], "amount": 10}]}
    assert post(url, "/payments", {**body, "idempotency_key": "a"}).status_code == 200
    r = post(url, "/payments", {**body, "idempotency_key": "b"})
    assert r.status_code == 429 and r.json() == {"message": "Duplicate request."}
    sim.clock.advance(2)
    assert post(url, "/payments", {**body, "idempotency_key": "b"}).status_code == 200


def test_mark_paid_creates_a_payment(ninja):
    _sim, url = ninja
    c = client(url)
    inv = invoice(url, c["id"], cost=75)
    paid = post(url, "/invoices/bulk", {"action": "mark_paid", "ids": [inv["id"]]}).json()["data"][0]
    assert (paid["status_id"], paid["balance"], paid["paid_to_date"]) == ("4", 0.0, 75.0)
    payments = requests.get(f"{url}/payments", params={"client_id": c["id"]}, headers=H, timeout=5).json()
    assert [p["amount"] for p in payments["data"]] == [75.0]


def test_other_entities_crud(ninja):
    _sim, url = ninja
    vendor = post(url, "/vendors", {"name": "Supplies Ltd"}).json()["data"]
    expense = post(
        url,
        "/expenses",
        {"vendor_id": vendor["id"], "amount": 42.5, "date": "2024-05-03", "public_notes": "paper"},
    ).json()["data"]
    product = post(url, "/products", {"product_key": "SKU1", "price": 100, "cost": 60}).json()["data"]
    assert (expense["amount"], expense["vendor_id"]) == (42.5, vendor["id"])
    assert product["product_key"] == "SKU1" and product["price"] == 100.0
    r = requests.put(f"{url}/products/{product['id']}", json={"price": "120.5"}, headers=H, timeout=5)
    assert r.json()["data"]["price"] == 120.5
    assert post(url, "/expenses", {"date": "03/05/2024"}).status_code == 422
    listed = requests.get(f"{url}/expenses", params={"vendor_id": vendor["id"]}, headers=H, timeout=5).json()
    assert [e["id"] for e in listed["data"]] == [expense["id"]]


def test_webhook_subscription_delivers_bare_entity_with_custom_headers(ninja, hook_receiver):
    sim, url = ninja
    hook = post(
        url,
        "/webhooks",
        {
            "target_url": hook_receiver.url + "/in",
            "event_id": "1",
            "rest_method": "post",
            "headers": {"X-Sync-Secret": "abc"},
        },
    ).json()["data"]
    assert hook["event_id"] == "1" and hook["rest_method"] == "post"
    assert post(url, "/webhooks", {"event_id": "1"}).status_code == 422
    c = client(url)
    assert sim.flush_webhooks(5)
    [got] = hook_receiver.received
    assert got["json"]["id"] == c["id"] and "event" not in got["json"] and "data" not in got["json"]
    assert got["headers"]["X-Sync-Secret"] == "abc" and got["headers"]["Accept"] == "application/json"
    assert not any(k.lower().endswith("signature") for k in got["headers"])
    listed = requests.get(f"{url}/webhooks", headers=H, timeout=5).json()["data"]
    assert [h["id"] for h in listed] == [hook["id"]]
    requests.put(f"{url}/webhooks/{hook['id']}", json={"rest_method": "put"}, headers=H, timeout=5)
    client(url, "Second")
    assert sim.flush_webhooks(5) and hook_receiver.received[-1]["method"] == "PUT"
    assert requests.delete(f"{url}/webhooks/{hook['id']}", headers=H, timeout=5).status_code == 200
    # A soft delete (SoftDeletes): still listed (the list is withTrashed), archived, and silent.
    [gone] = requests.get(f"{url}/webhooks", headers=H, timeout=5).json()["data"]
    assert gone["id"] == hook["id"] and gone["archived_at"] > 0 and gone["is_deleted"] is False
    client(url, "Third")
    sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 2


def test_invoice_and_payment_events_include_client(ninja, hook_receiver):
    sim, url = ninja
    sim.webhook_interval_scale = 0.001  # the 20 s create_payment delay becomes 20 ms
    c = client(url)
    for event_id in ("2", "4"):
        post(url, "/webhooks", {"target_url": hook_receiver.url, "event_id": event_id})
    inv = invoice(url, c["id"], query="?mark_sent=true")
    post(
        url,
        "/payments",
        {"client_id": c["id"], "amount": 100, "invoices": [{"invoice_id": inv["id"], "amount": 100}]},
    )
    assert sim.flush_webhooks(5)
    bodies = [r["json"] for r in hook_receiver.received]
    payment_id = next(iter(sim.db["payments"]))
    assert sorted(b["id"] for b in bodies) == sorted([inv["id"], payment_id])
    assert all(b["client"]["id"] == c["id"] for b in bodies)


def test_webhook_retry_policy(ninja, hook_receiver):
    sim, url = ninja
    sim.webhook_interval_scale = 0.001
    post(url, "/webhooks", {"target_url": hook_receiver.url, "event_id": "50"})
    hook_receiver.statuses = [429, 401, 200]  # 4xx other than 400/404/405/410 are retried
    post(url, "/products", {"product_key": "A"})
    assert sim.flush_webhooks(5)
    assert [e["status"] for e in sim.webhook_log] == [429, 401, 200]
    hook_receiver.statuses = [500]  # >= 500: fail, no retry
    post(url, "/products", {"product_key": "B"})
    assert sim.flush_webhooks(5) and [e["status"] for e in sim.webhook_log][-1] == 500
    assert len(hook_receiver.received) == 4
    hook_receiver.statuses = [410]  # 404/405/410: the subscription is (soft-)deleted, "suspended"
    post(url, "/products", {"product_key": "C"})
    assert sim.flush_webhooks(5)
    [suspended] = requests.get(f"{url}/webhooks", headers=H, timeout=5).json()["data"]
    assert suspended["archived_at"] > 0
    post(url, "/products", {"product_key": "D"})
    sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 5


def test_rate_limit_fault_uses_laravel_headers(ninja):
    sim, url = ninja
    sim.set_faults(rate_limit={"limit": 2, "window": 60})
    ok = requests.get(f"{url}/clients", headers=H, timeout=5)
    assert ok.headers["X-RateLimit-Limit"] == "2" and ok.headers["X-RateLimit-Remaining"] == "1"
    requests.get(f"{url}/clients", headers=H, timeout=5)
    r = requests.get(f"{url}/clients", headers=H, timeout=5)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.json() == {"message": "Too Many Attempts."}


def test_seed_with_fixed_ids_and_timestamps(ninja):
    sim, url = ninja
    out = sim.seed({"clients": [{"id": "CLIENTAAAA", "name": "Fixed", "updated_at": 1_700_000_000}]})
    assert out["clients"] == ["CLIENTAAAA"]
    c = requests.get(f"{url}/clients/CLIENTAAAA", headers=H, timeout=5).json()["data"]
    assert c["updated_at"] == 1_700_000_000
    sim.seed(
        {
            "invoices": [
                {
                    "client_id": "CLIENTAAAA",
                    "number": "S-1",
                    "mark_sent": True,
                    "line_items": [{"cost": 5, "quantity": 2}],
                }
            ]
        }
    )
    c = requests.get(f"{url}/clients/CLIENTAAAA", headers=H, timeout=5).json()["data"]
    assert c["balance"] == 10.0 and c["updated_at"] > 1_700_000_000  # marking sent touches the client


def test_lost_payment_response_then_retry_with_the_same_key(ninja):
    """The create lands, its answer is lost; the client's retry with the same key is refused, not doubled."""
    sim, url = ninja
    c = client(url)
    inv = invoice(url, c["id"], query="?mark_sent=true")
    body = {
        "client_id": c["id"],
        "amount": 30,
        "idempotency_key": "rev-tx-9",
        "invoices": [{"invoice_id": inv["id"], "amount": 30}],
    }
    sim.set_faults(lose_response={"count": 1}, match_method="POST", match_path="/api/v1/payments")
    with pytest.raises(requests.ConnectionError):
        post(url, "/payments", body)
    retry = post(url, "/payments", body)
    assert retry.status_code == 422 and "idempotency_key" in retry.json()["errors"]
    assert len(sim.db["payments"]) == 1 and sim.count("POST", "/api/v1/payments") == 2
    got = requests.get(f"{url}/invoices/{inv['id']}", headers=H, timeout=5).json()["data"]
    assert got["balance"] == 70.0
