"""ERPNext (Frappe) Webhook documents: X-Frappe-Webhook-Signature = base64(HMAC-SHA256(secret, body)).
Frappe sends only the data we template, so `webhooks install` templates {event, doctype, name, modified,
doc}; a plain field list works too with the event in the URL (/webhooks/erpnext/<docevent>)."""

from __future__ import annotations

from syncengine.change_keys import erpnext_key
from syncengine.inbox import NewEvent

from .sender import Incoming, Sender, require
from .signatures import base64_hmac


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    base64_hmac(headers.get("X-Frappe-Webhook-Signature"), body, secrets)


def parse(incoming: Incoming) -> list[NewEvent]:
    payload = incoming.payload
    doc = payload.get("doc") if isinstance(payload.get("doc"), dict) else payload
    docevent = incoming.path_event or require(payload, "event", "event (docevent)")
    doctype = payload.get("doctype") or require(doc, "doctype", "doctype")
    name = payload.get("name") or require(doc, "name", "document name")
    modified = payload.get("modified") or doc.get("modified", "")
    event_type = f"{doctype}:{docevent}"
    # The change key collapses this with a sweep's listing of the same version (syncengine.change_keys).
    key = erpnext_key(doctype, name, modified, deleted=docevent == "on_trash")
    return [NewEvent("erpnext", key or f"{event_type}:{name}:{modified}", event_type, payload)]


SENDER = Sender("erpnext", verify, parse)
