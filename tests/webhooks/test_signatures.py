"""Every sender, verified exactly as its vendor signs: anything else is 401 and leaves no row."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.support import SENDERS, dumps, sample, sign

pytestmark = pytest.mark.faults  # fault suite item 1: `pytest -m faults` runs the signature matrix too

SIGNATURE_HEADERS = {
    "invoiceninja": "X-Webhook-Secret",
    "directus": "X-Webhook-Secret",
    "erpnext": "X-Frappe-Webhook-Signature",
    "mautic": "Webhook-Signature",
    "revolut": "Revolut-Signature",
}


def inbox_count(source: str) -> int:
    with session_scope() as s:
        return s.execute(select(func.count()).where(InboxEvent.source == source)).scalar_one()


def post(client, sender: str, body: bytes, headers: dict[str, str], path: str):
    return client.post(path, data=body, headers=headers)


@pytest.mark.parametrize("sender", SENDERS)
def test_valid_signature_is_stored_and_accepted(client, sender):
    path, payload = sample(sender, f"valid-{time.time_ns()}")
    body = dumps(payload)
    before = inbox_count(sender)
    response = post(client, sender, body, sign(sender, body), path)
    assert response.status_code == 202, response.json
    assert len(response.json["accepted"]) == 1
    assert inbox_count(sender) == before + 1


def _wrong_secret(sender, body):
    return body, sign(sender, body, secret="not-the-secret")


def _body_changed_by_one_byte(sender, body):
    headers = sign(sender, body)
    if sender in ("invoiceninja", "directus"):
        # Unsigned senders: the shared secret header is all there is; a one-byte change of it must fail.
        headers["X-Webhook-Secret"] = headers["X-Webhook-Secret"][:-1] + "X"
        return body, headers
    changed = body.replace(b'"', b"'", 1) if body.count(b"1") == 0 else body.replace(b"1", b"2", 1)
    assert changed != body and len(changed) == len(body)
    return changed, headers


def _missing_header(sender, body):
    headers = sign(sender, body)
    del headers[SIGNATURE_HEADERS[sender]]
    return body, headers


@pytest.mark.parametrize("forge", [_wrong_secret, _body_changed_by_one_byte, _missing_header])
@pytest.mark.parametrize("sender", SENDERS)
def test_invalid_signature_is_401_and_stores_nothing(client, sender, forge):
    path, payload = sample(sender, f"forged-{time.time_ns()}")
    body, headers = forge(sender, dumps(payload))
    before = inbox_count(sender)
    response = post(client, sender, body, headers, path)
    assert response.status_code == 401
    assert response.json == {"error": "signature verification failed"}
    assert inbox_count(sender) == before


@pytest.mark.parametrize("offset_s", [-360, 360])
def test_revolut_timestamp_outside_five_minutes_is_401(client, offset_s):
    path, payload = sample("revolut", f"skew-{offset_s}-{time.time_ns()}")
    body = dumps(payload)
    headers = sign("revolut", body, timestamp_ms=int((time.time() + offset_s) * 1000))
    before = inbox_count("revolut")
    assert post(client, "revolut", body, headers, path).status_code == 401
    assert inbox_count("revolut") == before


def test_revolut_within_window_is_accepted(client):
    path, payload = sample("revolut", f"recent-{time.time_ns()}")
    body = dumps(payload)
    headers = sign("revolut", body, timestamp_ms=int((time.time() - 240) * 1000))
    assert post(client, "revolut", body, headers, path).status_code == 202


def test_revolut_rotation_accepts_when_only_the_second_signature_is_valid(client):
    path, payload = sample("revolut", f"rotation-{time.time_ns()}")
    body = dumps(payload)
    headers = sign("revolut", body)
    stale = sign(
        "revolut", body, secret="wsk_retired", timestamp_ms=int(headers["Revolut-Request-Timestamp"])
    )
    headers["Revolut-Signature"] = f"{stale['Revolut-Signature']},{headers['Revolut-Signature']}"
    assert post(client, "revolut", body, headers, path).status_code == 202


def test_revolut_rotation_rejects_when_no_signature_is_valid(client):
    path, payload = sample("revolut", f"rotation-bad-{time.time_ns()}")
    body = dumps(payload)
    ts = int(time.time() * 1000)
    one = sign("revolut", body, secret="wsk_a", timestamp_ms=ts)
    two = sign("revolut", body, secret="wsk_b", timestamp_ms=ts)
    one["Revolut-Signature"] = f"{one['Revolut-Signature']},{two['Revolut-Signature']}"
    assert post(client, "revolut", body, one, path).status_code == 401


def test_revolut_signature_of_another_timestamp_is_rejected(client):
    """The timestamp is inside the signed message: moving it breaks the signature."""
    path, payload = sample("revolut", f"ts-swap-{time.time_ns()}")
    body = dumps(payload)
    headers = sign("revolut", body)
    headers["Revolut-Request-Timestamp"] = str(int(headers["Revolut-Request-Timestamp"]) + 1000)
    assert post(client, "revolut", body, headers, path).status_code == 401
