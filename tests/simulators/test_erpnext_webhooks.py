"""Frappe webhooks configured through the Webhook doctype: events, body, signature (checked here with an
independent HMAC), templates, conditions, three attempts and the Webhook Request Log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
import requests

from simulators.erpnext import ERPNextSimulator

TOKEN = {"Authorization": "token erp-api-key:erp-api-secret"}
SECRET = "erp-hook-secret"


@pytest.fixture()
def erp(serve):
    sim = ERPNextSimulator()
    sim.webhook_interval_scale = 0.01  # Frappe sleeps 1 s then 4 s between attempts
    base = serve(sim).url

    def call(method: str, path: str, expect: int | None = None, **kw) -> requests.Response:
        r = requests.request(method, base + path, headers=TOKEN, timeout=5, **kw)
        assert r.status_code == expect if expect else r.status_code < 400, r.text
        return r

    sim.seed({"Item": [{"item_code": "SKU1", "item_group": "Products", "stock_uom": "Nos"}]})
    return sim, call


def webhook(call, url: str, doctype: str, event: str, **fields) -> dict:
    body = {
        "name": f"hook {doctype} {event} {uuid.uuid4().hex[:6]}",  # ERPNext wants one (see the test below)
        "webhook_doctype": doctype,
        "webhook_docevent": event,
        "request_url": url,
        "request_structure": "JSON",
        **fields,
    }
    return call("POST", "/api/v2/document/Webhook", json=body).json()["data"]


def frappe_signature(secret: str, body: bytes) -> str:
    data = json.loads(body)
    return base64.b64encode(
        hmac.new(secret.encode(), json.dumps(data).encode(), hashlib.sha256).digest()
    ).decode()


def test_signed_template_body_on_insert(erp, hook_receiver):
    sim, call = erp
    hook = webhook(
        call,
        hook_receiver.url + "/erp",
        "Customer",
        "after_insert",
        enable_security=1,
        webhook_secret=SECRET,
        webhook_headers=[{"key": "Content-Type", "value": "application/json"}],
        webhook_json='{"event": "after_insert", "name": {{ doc.name | json }}, '
        '"modified": "{{ doc.modified }}", "doc": {{ doc | json }}}',
    )
    assert hook["webhook_secret"] == "*" * len(SECRET)  # Password fields come back masked
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Acme"})
    assert sim.flush_webhooks(5)
    [delivery] = hook_receiver.received
    assert delivery["path"] == "/erp"
    assert delivery["headers"]["X-Frappe-Webhook-Signature"] == frappe_signature(SECRET, delivery["body"])
    assert delivery["body"] == json.dumps(delivery["json"]).encode()  # json.dumps defaults, byte for byte
    assert delivery["json"]["name"] == "Acme" and delivery["json"]["doc"]["customer_name"] == "Acme"


def test_events_fire_once_per_request_and_see_the_committed_doc(erp, hook_receiver):
    sim, call = erp
    for event in ("after_insert", "on_update", "on_submit", "on_cancel"):
        webhook(
            call,
            f"{hook_receiver.url}/{event}",
            "Sales Invoice",
            event,
            webhook_data=[
                {"fieldname": "name", "key": "name"},
                {"fieldname": "docstatus", "key": "docstatus"},
            ],
        )
    body = {"customer": None, "items": [{"item_code": "SKU1", "rate": 10}], "docstatus": 1}
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Acme"})
    inv = call("POST", "/api/v2/document/Sales Invoice", json={**body, "customer": "Acme"}).json()["data"]
    assert sim.flush_webhooks(5)
    got = {d["path"]: d["json"] for d in hook_receiver.received}
    assert sorted(got) == ["/after_insert", "/on_submit", "/on_update"]
    assert all(v == {"name": inv["name"], "docstatus": 1} for v in got.values())
    assert "X-Frappe-Webhook-Signature" not in hook_receiver.received[0]["headers"]  # security not enabled
    call("POST", f"/api/v2/document/Sales Invoice/{inv['name']}/method/cancel")
    assert sim.flush_webhooks(5)
    assert hook_receiver.received[-1]["path"] == "/on_cancel"


def test_no_template_sends_an_empty_object_and_condition_filters(erp, hook_receiver):
    sim, call = erp
    webhook(call, hook_receiver.url, "Customer", "on_update", condition='doc.customer_group == "VIP"')
    webhook(call, hook_receiver.url + "/all", "Customer", "on_update")
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Plain"})
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Big", "customer_group": "VIP"})
    assert sim.flush_webhooks(5)
    paths = sorted(d["path"] for d in hook_receiver.received)
    assert paths == ["/", "/all", "/all"]
    assert all(d["body"] == b"{}" for d in hook_receiver.received)


def test_failed_requests_get_three_attempts_and_a_log_each(erp, hook_receiver):
    sim, call = erp
    hook = webhook(call, hook_receiver.url, "Customer", "after_insert")
    hook_receiver.statuses = [500]
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Acme"})
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 3
    logs = call(
        "GET", "/api/v2/document/Webhook Request Log", params={"fields": '["webhook", "error"]'}
    ).json()
    assert [r["webhook"] for r in logs["data"]] == [hook["name"]] * 3
    assert all("500" in r["error"] for r in logs["data"])


def test_a_failed_request_sends_nothing(erp, hook_receiver):
    sim, call = erp
    webhook(call, hook_receiver.url, "Customer", "after_insert")
    call("POST", "/api/v2/document/Customer", json={"customer_name": "Acme"})
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 1
    # a duplicate explicit name: 409, the insert never committed, so its webhook is never sent
    call("POST", "/api/v2/document/Customer", expect=409, json={"name": "Acme", "customer_name": "Acme"})
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"webhook_docevent": "on_submit"}, "DocType must be Submittable"),
        ({"webhook_docevent": "on_update", "request_url": "nope"}, "Check Request URL"),
        ({"webhook_docevent": "on_update", "enable_security": 1}, "Invalid Webhook Secret"),
    ],
)
def test_webhook_doc_validation(erp, fields, message):
    _, call = erp
    body = {"name": "hook", "webhook_doctype": "Customer", "request_url": "http://127.0.0.1:9/x", **fields}
    r = call("POST", "/api/v2/document/Webhook", expect=417, json=body)
    assert message in r.json()["errors"][0]["message"]


def test_a_webhook_needs_a_name(erp):
    _, call = erp
    body = {
        "webhook_doctype": "Customer",
        "webhook_docevent": "on_update",
        "request_url": "http://127.0.0.1:9/",
    }
    r = call("POST", "/api/v2/document/Webhook", expect=417, json=body)
    assert r.json()["errors"][0]["message"] == "Please set the document name"  # as the real one (sample 14)


def test_desk_actions_fire_webhooks_too(erp, hook_receiver):
    sim, call = erp
    webhook(
        call,
        hook_receiver.url,
        "Purchase Invoice",
        "on_submit",
        webhook_data=[{"fieldname": "name", "key": "name"}],
    )
    sim.seed({"Supplier": [{"supplier_name": "Paper Co"}]})
    doc = sim.create(
        "Purchase Invoice",
        {"supplier": "Paper Co", "bill_no": "B-1", "items": [{"item_code": "SKU1", "qty": 2, "rate": 21.25}]},
    )
    sim.act_on("Purchase Invoice", doc["name"], "submit")
    assert sim.flush_webhooks(5)
    assert [d["json"] for d in hook_receiver.received] == [{"name": doc["name"]}]
    assert doc["grand_total"] == 42.5 and doc["status"] == "Unpaid"


def test_control_surface_target_gets_the_document(serve, hook_receiver):
    sim = ERPNextSimulator()
    base = serve(sim).url
    target = {"url": hook_receiver.url, "secret": SECRET, "events": ["Customer:after_insert"]}
    requests.post(f"{base}/_sim/webhooks", json=target, timeout=5)
    requests.post(
        f"{base}/api/v2/document/Customer", headers=TOKEN, json={"customer_name": "Acme"}, timeout=5
    )
    assert sim.flush_webhooks(5)
    [delivery] = hook_receiver.received
    assert delivery["json"]["name"] == "Acme" and delivery["json"]["doctype"] == "Customer"
    assert delivery["headers"]["X-Frappe-Webhook-Signature"] == frappe_signature(SECRET, delivery["body"])
