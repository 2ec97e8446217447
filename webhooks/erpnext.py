"""ERPNext (Frappe) Webhook documents: X-Frappe-Webhook-Signature = base64(HMAC-SHA256(secret, body)).
Frappe sends only the data we template, so `webhooks install` templates {event, doctype, name, modified,
doc}; a plain field list works too with the event in the URL (/webhooks/erpnext/<docevent>)."""

from __future__ import annotations

import re

from syncengine.inbox import NewEvent
from syncengine.vendors import erpnext

from .sender import BadPayload, Incoming, Sender, known_event, require
from .signatures import base64_hmac

# The Doc Events a Frappe Webhook document can be set to (its webhook_docevent options); with every one we
# subscribe.
DOCEVENTS = frozenset(event.partition(":")[2] for event in erpnext.EVENTS) | {
    "after_insert", "on_update", "on_submit", "on_cancel", "on_trash", "on_update_after_submit", "on_change",
}  # fmt: skip
# A DocType's name as Frappe allows it: a letter first, then letters, digits, spaces, _ or -, 61 at most.
DOCTYPE = re.compile(r"[A-Za-z][A-Za-z0-9 _-]{0,60}")


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    base64_hmac(headers.get("X-Frappe-Webhook-Signature"), body, secrets)


def parse(incoming: Incoming) -> list[NewEvent]:
    payload = incoming.payload
    doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
    if incoming.path_event:
        docevent = known_event("erpnext", incoming.path_event, DOCEVENTS, in_path=True)
    else:
        docevent = known_event("erpnext", require(payload, "event", "event (docevent)"), DOCEVENTS)
    doctype = payload.get("doctype") or require(doc, "doctype", "doctype")
    if not isinstance(doctype, str) or not DOCTYPE.fullmatch(doctype):
        raise BadPayload(f"not a DocType name: {str(doctype)[:64]!r}")
    name = payload.get("name") or require(doc, "name", "document name")
    modified = payload.get("modified") or doc.get("modified", "")
    event_type = f"{doctype}:{docevent}"
    # The change key collapses this with a sweep's listing of the same version (erpnext.change_key).
    key = erpnext.change_key(doctype, name, modified, deleted=docevent == "on_trash")
    return [NewEvent("erpnext", key or f"{event_type}:{name}:{modified}", event_type, payload)]


SENDER = Sender("erpnext", verify, parse)
