"""Mautic webhooks: ``/api/hooks`` CRUD, event bodies keyed by event type, ``Webhook-Signature`` checked here
over the raw bytes, contact/form/email events, no re-send after a failure, 410 unpublishes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from simulators.mautic import MauticSimulator

AUTH = ("admin", "sim-mautic-pass")
SECRET = "mautic-hook-secret"
CONTACT_EVENTS = ["mautic.lead_post_save_new", "mautic.lead_post_save_update", "mautic.lead_post_delete"]


@pytest.fixture()
def mautic(serve):
    sim = MauticSimulator()
    base = serve(sim).url

    def call(method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, base + path, auth=AUTH, timeout=5, **kw)

    return sim, call, base


def hook(call, url: str, triggers: list[str]) -> dict:
    r = call(
        "POST",
        "/api/hooks/new",
        json={"name": "sync", "webhookUrl": url, "secret": SECRET, "triggers": triggers},
    )
    assert r.status_code == 201, r.text
    return r.json()["hook"]


def signed(delivery: dict) -> bool:
    digest = hmac.new(SECRET.encode(), delivery["body"], hashlib.sha256).digest()
    return delivery["headers"]["Webhook-Signature"] == base64.b64encode(digest).decode()


def test_contact_lifecycle_events(mautic, hook_receiver):
    sim, call, base = mautic
    hook(call, hook_receiver.url + "/mautic", CONTACT_EVENTS)
    anonymous = call("POST", "/api/contacts/new", json={"city": "Paris"}).json()["contact"]["id"]
    assert sim.flush_webhooks(5) and hook_receiver.received == []  # anonymous visitors are ignored
    call("PATCH", f"/api/contacts/{anonymous}/edit", json={"email": "ann@example.test"})  # now identified
    call("PATCH", f"/api/contacts/{anonymous}/edit", json={"city": "Paris"})  # saved, unchanged: still sent
    call("DELETE", f"/api/contacts/{anonymous}/delete")
    assert sim.flush_webhooks(5)
    keys = [next(iter(d["json"])) for d in hook_receiver.received]
    assert keys == CONTACT_EVENTS
    first = hook_receiver.received[0]
    assert first["path"] == "/mautic" and signed(first)
    assert first["headers"]["Content-Type"] == "application/json"
    assert CaseInsensitiveDict(first["headers"])["X-Origin-Base-URL"] == base
    [item] = first["json"]["mautic.lead_post_save_new"]
    assert item["contact"]["fields"]["all"]["email"] == "ann@example.test"
    assert item["timestamp"].endswith("+00:00")
    deleted = hook_receiver.received[-1]["json"]["mautic.lead_post_delete"][0]
    assert deleted["id"] == anonymous


def test_body_is_php_encoded_and_signature_covers_the_exact_bytes(mautic, hook_receiver):
    sim, call, _ = mautic
    hook(call, hook_receiver.url, ["mautic.lead_post_save_new"])
    call("POST", "/api/contacts/new", json={"email": "zoë@example.test", "website": "https://z.example/a"})
    assert sim.flush_webhooks(5)
    [delivery] = hook_receiver.received
    assert b"https:\\/\\/z.example\\/a" in delivery["body"] and b"zo\\u00eb" in delivery["body"]
    assert signed(delivery)
    reencoded = json.dumps(json.loads(delivery["body"])).encode()
    digest = base64.b64encode(hmac.new(SECRET.encode(), reencoded, hashlib.sha256).digest()).decode()
    assert digest != delivery["headers"]["Webhook-Signature"]  # verifying a re-serialisation would fail


def test_form_submission_and_email_open(mautic, hook_receiver):
    sim, call, base = mautic
    hook(call, hook_receiver.url, ["mautic.form_on_submit", "mautic.email_on_open"])
    sim.seed(
        {
            "forms": [
                {
                    "name": "Quote",
                    "alias": "quote",
                    "fields": [
                        {"alias": "email", "leadField": "email"},
                        {"alias": "name", "leadField": "firstname"},
                        {"alias": "msg"},
                    ],
                }
            ],
            "emails": [{"name": "Thanks"}],
        }
    )
    r = requests.post(
        f"{base}/form/submit",
        params={"formId": 1},
        timeout=5,
        data={
            "mauticform[email]": "lead@example.test",
            "mauticform[name]": "Lea",
            "mauticform[msg]": "hello",
            "mauticform[formId]": "1",
        },
    )
    assert r.status_code == 200
    contact = sim.contact_by_email("lead@example.test")
    assert contact is not None and contact["fields"]["all"]["firstname"] == "Lea"
    call("POST", f"/api/emails/1/contact/{contact['id']}/send", json={})
    [stat] = sim.sent_emails()
    pixel = requests.get(f"{base}/email/{stat['tracking_hash']}.gif", timeout=5)
    assert pixel.headers["Content-Type"] == "image/gif"
    assert sim.flush_webhooks(5)
    [submit, opened] = [d["json"] for d in hook_receiver.received]
    submission = submit["mautic.form_on_submit"][0]["submission"]
    assert submission["results"] == {"email": "lead@example.test", "name": "Lea", "msg": "hello"}
    assert submission["lead"]["id"] == contact["id"] and submission["form"]["alias"] == "quote"
    assert opened["mautic.email_on_open"][0]["stat"]["trackingHash"] == stat["tracking_hash"]
    assert call("GET", "/api/forms/1/submissions").json()["total"] == 1


def test_no_resend_after_an_error_and_410_unpublishes(mautic, hook_receiver):
    sim, call, _ = mautic
    created = hook(call, hook_receiver.url, ["mautic.lead_post_save_new"])
    hook_receiver.statuses = [500, 410, 200]
    call("POST", "/api/contacts/new", json={"email": "a@example.test"})
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 1  # never re-sent
    call("POST", "/api/contacts/new", json={"email": "b@example.test"})
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 2
    assert call("GET", f"/api/hooks/{created['id']}").json()["hook"]["isPublished"] is False
    call("POST", "/api/contacts/new", json={"email": "c@example.test"})
    assert sim.flush_webhooks(5)
    assert len(hook_receiver.received) == 2  # unpublished: nothing more


def test_hooks_api(mautic):
    _, call, _ = mautic
    missing = call("POST", "/api/hooks/new", json={"name": "x", "webhookUrl": "http://127.0.0.1:1/"})
    assert missing.status_code == 400 and "triggers" in missing.json()["errors"][0]["details"]
    created = hook(call, "http://127.0.0.1:1/hook", ["mautic.lead_post_save_new"])
    assert created["secret"] == SECRET
    assert call("GET", "/api/hooks").json()["total"] == 1
    edited = call("PATCH", f"/api/hooks/{created['id']}/edit", json={"triggers": ["mautic.form_on_submit"]})
    assert edited.json()["hook"]["triggers"] == ["mautic.form_on_submit"]
    assert "mautic.email_on_open" in call("GET", "/api/hooks/triggers").json()["triggers"]
    assert call("DELETE", f"/api/hooks/{created['id']}/delete").status_code == 200
    assert call("GET", f"/api/hooks/{created['id']}").status_code == 404


def test_control_surface_target_and_seed(serve, hook_receiver):
    sim = MauticSimulator()
    base = serve(sim).url
    target = {"url": hook_receiver.url, "secret": SECRET, "events": ["mautic.lead_post_save_new"]}
    requests.post(f"{base}/_sim/webhooks", json=target, timeout=5)
    seeded = requests.post(
        f"{base}/_sim/seed",
        json={"contacts": [{"email": "old@example.test", "date_added": "2024-01-01 00:00:00"}]},
        timeout=5,
    )
    assert seeded.json()["seeded"]["contacts"] == [1]  # seeding is an import: no webhook
    requests.post(f"{base}/api/contacts/new", auth=AUTH, json={"email": "new@example.test"}, timeout=5)
    assert sim.flush_webhooks(5)
    [delivery] = hook_receiver.received
    assert signed(delivery) and "mautic.lead_post_save_new" in delivery["json"]
