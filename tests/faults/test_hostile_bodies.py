"""Malformed and hostile bodies from every sender, correctly signed so they get past the signature check and
reach the parser and the handlers: fuzzed JSON, deep nesting, huge numbers, invalid UTF-8, wrong types in
the fields the handlers read, 1 MiB + 1 byte. Each gets a clear 4xx, or is accepted and then ends as a
failed event with its reason (or done/ignored); the receiver keeps answering and the worker keeps
processing the next valid event.

A seeded generator rather than hypothesis: the interesting inputs are a known list of shapes per sender,
and one fixed seed keeps the run reproducible and bounded in time without a new dependency."""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.faults.conftest import Stack, client_body, post_client, retire, statuses, unique
from tests.flows.test_contacts import customers_with
from tests.support import SENDERS, dumps, sample, sign, wait_until

SEED = 20261125
CLEAR_4XX = {400, 413, 415}
MIB = 1024 * 1024
STRUCTURAL = (b"{", b"}", b"[", b'"', b"\\", b",", b":", b"\xff", b"\xc0\xaf", b"1e999", b"\\ud800")


def wrong_types(sender: str, tag: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, payload) for the event types real handlers take, with the fields they read mistyped."""
    odd: list[Any] = [[1, 2], {"nested": True}, True, 1.5, -(10**30), "", None, "\u202e\u0000x"]
    out: list[tuple[str, dict[str, Any]]] = []
    for i, value in enumerate(odd):
        key = f"{tag}-{i}"
        if sender == "invoiceninja":
            fields = {"id": f"h-{key}", "name": value, "contacts": value, "updated_at": value}
            out.append(("/webhooks/invoiceninja/create_client", fields))
        elif sender == "revolut":
            out.append(("/webhooks/revolut", {"event": "TransactionCreated", "timestamp": value,
                        "data": {"id": f"tx-{key}", "type": "transfer", "state": "completed",
                                 "legs": value, "amount": value, "created_at": value}}))  # fmt: skip
        elif sender == "erpnext":
            out.append(("/webhooks/erpnext/after_insert", {"doctype": "Customer", "name": f"C-{key}",
                        "modified": value, "doc": {"doctype": "Customer", "name": f"C-{key}",
                                                   "email_id": value, "customer_name": value}}))  # fmt: skip
        elif sender == "mautic":
            item = {"contact": {"id": f"m-{key}", "fields": value, "email": value}, "timestamp": key}
            out.append(("/webhooks/mautic", {"mautic.lead_post_save_new": [item]}))
        elif sender == "directus":
            out.append(("/webhooks/directus", {"event": "contacts.items.create", "collection": "contacts",
                        "key": f"d-{key}", "payload": value if isinstance(value, dict) else
                        {"email": value, "first_name": value}}))  # fmt: skip
    return out


def mangled(rng: random.Random, valid: bytes, count: int) -> list[bytes]:
    """Byte-level fuzz of a valid body: flips, truncations, insertions of structural characters."""
    out = []
    for _ in range(count):
        body = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body))
            op = rng.choice(("flip", "cut", "insert", "drop"))
            if op == "flip":
                body[at] = rng.randrange(256)
            elif op == "cut":
                del body[at:]
                if not body:
                    body = bytearray(b"{")
            elif op == "insert":
                body[at:at] = rng.choice(STRUCTURAL)
            elif len(body) > 1:
                del body[at]
        out.append(bytes(body))
    return out


def hostile(sender: str, rng: random.Random, tag: str) -> list[tuple[str, str, bytes]]:
    """(label, path, body) for one sender."""
    path, payload = sample(sender, f"hostile-{tag}")
    valid = dumps(payload)
    text = valid.decode()
    deep_field = json.loads(text)
    deep_field["deep"] = json.loads("[" * 900 + "]" * 900)  # inside the parser's limit, past most code's
    cases = [(f"fuzz-{i}", path, b) for i, b in enumerate(mangled(rng, valid, 12))]
    cases += [
        ("deep-array", path, b"[" * 200_000 + b"]" * 200_000),
        ("deep-object", path, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("deep-in-a-field", path, dumps(deep_field)),
        ("huge-int-5000-digits", path, text.replace("{", '{"n": ' + "9" * 5000 + ", ", 1).encode()),
        ("huge-int-4000-digits", path, text.replace("{", '{"n": ' + "9" * 4000 + ", ", 1).encode()),
        ("huge-float", path, text.replace("{", '{"n": 1e999, "m": -1e999, ', 1).encode()),
        ("tiny-float", path, text.replace("{", '{"n": 1e-999, ', 1).encode()),
        ("invalid-utf8", path, valid.replace(b"hostile", b"host\xff\xfeile", 1)),
        ("overlong-utf8", path, valid.replace(b"hostile", b"host\xc0\xafile", 1)),
        ("lone-surrogate", path, text.replace("hostile", "host\\ud800ile", 1).encode()),
        ("bom", path, b"\xef\xbb\xbf" + valid),
        ("empty", path, b""),
        ("null", path, b"null"),
        ("string", path, b'"just a string"'),
        ("duplicate-keys", path, text.replace("{", '{"event": 1, ', 1).encode()),
        ("1MiB+1", path, valid[:-1] + b', "pad": "' + b"x" * (MIB + 1 - len(valid) - 11) + b'"}'),
    ]
    cases += [(f"wrong-type-{i}", p, dumps(body)) for i, (p, body) in enumerate(wrong_types(sender, tag))]
    return cases


def test_hostile_bodies_from_every_sender_get_a_clear_answer_and_poison_nothing(stack: Stack):
    rng = random.Random(SEED)
    tag = unique()
    accepted: list[int] = []
    for sender in SENDERS:
        for label, path, body in hostile(sender, rng, tag):
            if label == "1MiB+1":
                assert len(body) == MIB + 1
            response = stack.post(path, body, sign(sender, body))
            assert response.status_code in CLEAR_4XX | {200, 202}, (sender, label, response.status_code)
            if response.status_code in CLEAR_4XX:
                assert response.json()["error"], (sender, label)  # a reason, not just a code
            if response.status_code == 202:
                accepted += response.json()["accepted"]
            if label == "1MiB+1":
                assert response.status_code == 413
        assert stack.post("/webhooks/nobody", b"{}", {"Content-Type": "application/json"}).status_code == 404
    assert accepted, "no hostile body reached a handler: the test would prove little"

    # The receiver still answers, and the worker still processes a valid event and a whole flow.
    ok = stack.send("directus", f"after-hostile-{tag}")
    assert ok.status_code == 202
    email, body = client_body(f"after-hostile-{tag}")
    assert post_client(stack, body).status_code == 202
    wait_until(lambda: statuses(ok.json()["accepted"]) == {ok.json()["accepted"][0]: "done"}, timeout=60)
    wait_until(lambda: customers_with(stack.sims["erpnext"], email), timeout=60)

    def settled() -> bool:
        """Each accepted hostile event is done or ignored, or has failed at least once with its reason."""
        with session_scope() as s:
            rows = s.execute(select(InboxEvent).where(InboxEvent.id.in_(accepted))).scalars().all()
            return len(rows) == len(accepted) and all(
                r.status in ("done", "ignored") or (r.status in ("failed", "received") and r.last_error)
                for r in rows
            )

    try:
        wait_until(settled, timeout=90, interval=0.5)
    finally:
        retire(accepted)
    assert stack.worker.popen.poll() is None
    assert "WORKER TIMEOUT" not in stack.logs() and "Worker exiting" not in stack.logs()
