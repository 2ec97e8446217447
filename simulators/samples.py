"""Signed sample webhooks, one realistic event per sender, for the tests and the intake benchmark.

Signed exactly as each vendor signs (docs/architecture.md, Vendors' documentation), written independently of
the receiver's code. The events are of types no flow handles (a quote, a ToDo, a page hit, a test
collection): the receiver accepts and stores them, and the tests' recording plugin records them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

SECRETS = {
    "invoiceninja": "in-secret-0f3a9c",
    "revolut": "wsk_rev-secret-7d21e4",
    "erpnext": "erp-secret-5b8c11",
    "mautic": "mautic-secret-a4e902",
    "directus": "directus-secret-33c7f0",
}


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def sign(
    sender: str, body: bytes, secret: str | None = None, timestamp_ms: int | None = None
) -> dict[str, str]:
    secret = SECRETS[sender] if secret is None else secret
    headers = {"Content-Type": "application/json"}
    if sender in ("invoiceninja", "directus"):
        headers["X-Webhook-Secret"] = secret
    elif sender == "erpnext":
        headers["X-Frappe-Webhook-Signature"] = base64.b64encode(_hmac(secret, body)).decode()
    elif sender == "mautic":
        headers["Webhook-Signature"] = base64.b64encode(_hmac(secret, body)).decode()
    elif sender == "revolut":
        ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        headers["Revolut-Request-Timestamp"] = ts
        headers["Revolut-Signature"] = "v1=" + _hmac(secret, b"v1." + ts.encode() + b"." + body).hex()
    return headers


def sample(sender: str, n: int | str = 1, test: dict | None = None) -> tuple[str, dict]:
    """(URL path, body) of a realistic event of the recording plugin's type for each sender."""
    extra = {"test": test} if test else {}
    if sender == "invoiceninja":
        return "/webhooks/invoiceninja/create_quote", {
            "id": f"q{n}", "number": f"Q-{n}", "updated_at": 1732000000, "line_items": [], **extra,
        }  # fmt: skip
    if sender == "revolut":
        data = {"id": f"pl-{n}", "state": "created", "created_at": "2026-11-25T10:00:00Z", **extra}
        return "/webhooks/revolut", {
            "event": "PayoutLinkCreated",
            "timestamp": "2026-11-25T10:00:00Z",
            "data": data,
        }
    if sender == "erpnext":
        return "/webhooks/erpnext", {
            "event": "on_update", "doctype": "ToDo", "name": f"TODO-{n}",
            "modified": "2026-11-25 10:00:00",
            "doc": {"doctype": "ToDo", "name": f"TODO-{n}", "description": f"Call {n}"}, **extra,
        }  # fmt: skip
    if sender == "mautic":
        item = {"hit": {"id": n, "url": "https://example.test/pricing"},
                "timestamp": "2026-11-25T10:00:00+00:00", **extra}  # fmt: skip
        return "/webhooks/mautic", {"mautic.page_on_hit": [item]}
    if sender == "directus":
        return "/webhooks/directus", {
            "event": "test_events.items.create", "payload": {"note": f"d{n}"}, "key": n,
            "collection": "test_events", **extra,
        }  # fmt: skip
    raise ValueError(sender)


SENDERS = tuple(SECRETS)
