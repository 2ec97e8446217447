"""Loose intake, closed: a signed webhook naming an event its sender never sends is answered 404 (the name
in the URL) or 400 (in the body) and stored nowhere, while every event we subscribe is accepted; values
from payloads never forge a log line."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import func, select

from syncengine import vendors
from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.support import ROOT, dumps, sign
from webhooks import directus, erpnext, invoiceninja, mautic, revolut

FORGED = "x\r\n2026-01-01 00:00:00,000 INFO syncengine: inbox 999 done\u2028and\x1b[2Kmore\x85end"


def rows(source: str) -> int:
    with session_scope() as session:
        return session.execute(select(func.count()).where(InboxEvent.source == source)).scalar_one()


def post(client: Any, sender: str, path: str, payload: dict) -> Any:
    body = dumps(payload)
    return client.post(path, data=body, headers=sign(sender, body))


REVOLUT_TX = {"id": "tx-unknown-1", "state": "completed"}
UNKNOWN: list[tuple[str, str, dict, int]] = [
    ("invoiceninja", "/webhooks/invoiceninja/drop_everything", {"id": "c1"}, 404),
    ("invoiceninja", "/webhooks/invoiceninja/create_client%0A", {"id": "c1"}, 404),
    ("revolut", "/webhooks/revolut", {"event": "AccountDrained", "data": REVOLUT_TX}, 400),
    ("revolut", "/webhooks/revolut", {"event": ["TransactionCreated"], "data": REVOLUT_TX}, 400),
    ("erpnext", "/webhooks/erpnext/on_explode", {"doctype": "Customer", "name": "C-1"}, 404),
    ("erpnext", "/webhooks/erpnext", {"event": "before_save", "doctype": "Customer", "name": "C-1"}, 400),
    ("erpnext", "/webhooks/erpnext/on_update", {"doctype": "Customer\nFAKE", "name": "C-1"}, 400),
    ("mautic", "/webhooks/mautic", {"mautic.lead_post_save_new": [{"contact": {"id": 1}}],
                                    "mautic.lead_exploded": [{"contact": {"id": 2}}]}, 400),
    ("directus", "/webhooks/directus", {"event": "contacts.items.explode", "key": 1}, 400),
    ("directus", "/webhooks/directus", {"event": "users.create", "key": 1}, 400),
    ("directus", "/webhooks/directus", {"event": "../users.items.create", "key": 1}, 400),
]  # fmt: skip


@pytest.mark.parametrize(("sender", "path", "payload", "status"), UNKNOWN)
def test_an_event_its_sender_never_sends_is_refused_and_stored_nowhere(client, sender, path, payload, status):
    before = rows(sender)
    answer = post(client, sender, path, payload)
    assert answer.status_code == status, answer.json
    assert "sends no event" in answer.json["error"] or "DocType" in answer.json["error"]
    assert rows(sender) == before


def test_an_unsigned_request_learns_nothing_about_event_names(client):
    answer = client.post("/webhooks/invoiceninja/drop_everything", data=b"{}",
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 401


def test_every_event_we_subscribe_to_is_one_the_receiver_accepts():
    assert set(vendors.invoiceninja.EVENTS) <= invoiceninja.EVENTS
    assert set(vendors.revolut.EVENTS) <= revolut.EVENTS
    assert set(vendors.mautic.EVENTS) <= mautic.EVENTS
    for event in vendors.erpnext.EVENTS:
        doctype, _, docevent = event.partition(":")
        assert docevent in erpnext.DOCEVENTS and erpnext.DOCTYPE.fullmatch(doctype)
    for event in vendors.directus.EVENTS:
        assert directus.known(event)


def test_every_erpnext_event_we_subscribe_to_has_a_handler_and_every_handled_one_is_accepted():
    from syncengine.celery_app import TASK_MODULES
    from tasks.dispatch import HANDLERS

    for module in TASK_MODULES:  # registers the handlers
        importlib.import_module(module)

    handled = {event for source, event in HANDLERS if source == "erpnext"}
    assert set(vendors.erpnext.EVENTS) <= handled
    assert {event.partition(":")[2] for event in handled} <= erpnext.DOCEVENTS


def test_a_known_event_is_still_stored(client):
    before = rows("invoiceninja")
    answer = post(client, "invoiceninja", "/webhooks/invoiceninja/create_quote",
                  {"id": "q-intake-1", "updated_at": 1, "name": FORGED})  # fmt: skip
    assert answer.status_code == 202 and rows("invoiceninja") == before + 1


# The receiver's log set-up (webhooks.app: basicConfig and the redacting record factory), writing to a file.
LOGGING = """
import logging, sys
from syncengine import redaction
redaction.install()
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
logging.basicConfig(filename=sys.argv[1], level="INFO", format=FORMAT)
log = logging.getLogger("syncengine.test")
value = sys.argv[2]
log.info("webhook field %s", value)
log.warning("dict %s", {"name": value})
try:
    raise ValueError(value)
except ValueError:
    log.exception("failed on %s", value)
"""


def test_values_from_payloads_cannot_forge_a_log_line(tmp_path):
    path = tmp_path / "receiver.log"
    run = subprocess.run([sys.executable, "-c", LOGGING, str(path), FORGED], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert "\r" not in text and "\u2028" not in text and "\x1b" not in text and "\x85" not in text
    message_lines = [line for line in lines if " syncengine.test: " in line]
    assert len(message_lines) == 3  # one per call: the traceback follows on lines of its own
    assert all("x\\r\\n2026-01-01 00:00:00,000 INFO" in line for line in message_lines)
    assert "Traceback (most recent call last):" in text  # tracebacks keep their lines


def test_the_event_log_line_stays_one_line(caplog):
    from syncengine import event_log

    entry = event_log.Entry(1, source="invoiceninja", event_id=FORGED, event_type="create_quote")
    with caplog.at_level(logging.INFO):
        logging.getLogger("syncengine.events").info(entry.line())
    [record] = [r for r in caplog.records if r.name == "syncengine.events"]
    assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
