"""`syncengine webhooks install` / `check`: our webhook subscriptions in each service, through its own API.

What we want is declared once per service (`wanted`); install lists what the service has, creates what is
missing and corrects what differs, and so is idempotent; check only reports. Subscriptions are matched by
their target URL (and event where the vendor subscribes one event at a time), so anything else the
service sends elsewhere is left alone. Apis.md says how each vendor subscribes:
Invoice Ninja one subscription per event with our X-Webhook-Secret header; ERPNext a Webhook document per
(doctype, doc event) with its secret; Mautic one webhook with its secret; Directus a Flow whose "Webhook /
Request URL" operation sends {{$trigger}} with our header; Revolut a v2 webhook (its signing secret is
Revolut's: install shows it once, for REVOLUT_WEBHOOK_SECRET).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .redaction import redact
from .settings import Settings, get_settings

INVOICENINJA_EVENTS = (
    "create_client", "update_client", "delete_client", "archive_client", "restore_client",
    "create_product", "update_product", "delete_product", "archive_product", "restore_product",
    "create_invoice", "update_invoice", "sent_invoice",
)  # fmt: skip
# Invoice Ninja's numeric event ids (app/Models/Webhook.php, apis.md §2.7).
INVOICENINJA_EVENT_IDS = {
    "create_client": 1, "create_invoice": 2, "update_invoice": 8, "update_client": 10, "delete_client": 11,
    "archive_client": 37, "restore_client": 45, "create_product": 50, "update_product": 51,
    "delete_product": 52, "restore_product": 53, "archive_product": 54, "sent_invoice": 60,
}  # fmt: skip
# Frappe runs on_update after every insert as well as every save (Document.insert → run_post_save_methods),
# so on_update alone sees each new Customer and Item once; after_insert too would send each insert twice.
ERPNEXT_EVENTS = (
    "Customer:on_update", "Customer:on_trash",
    "Item:on_update", "Item:on_trash",
    "Sales Invoice:on_submit", "Sales Invoice:on_update", "Sales Invoice:on_update_after_submit",
)  # fmt: skip
MAUTIC_EVENTS = (
    "mautic.lead_post_save_new", "mautic.lead_post_save_update", "mautic.lead_post_delete",
    "mautic.email_on_open", "mautic.form_on_submit",
)  # fmt: skip
DIRECTUS_COLLECTIONS = ("contacts", "products", "invoices")
DIRECTUS_SCOPES = ("items.create", "items.update", "items.delete")
DIRECTUS_UPLOADS = ("files.upload",)  # receipts and invoices dropped into Directus go to OCR (F6)
REVOLUT_EVENTS = ("TransactionCreated", "TransactionStateChanged")

# What ERPNext sends: Frappe renders this Jinja template over the document (the receiver's shape).
ERPNEXT_TEMPLATE = (
    '{"event": "%s", "doctype": {{ doc.doctype | json }}, "name": {{ doc.name | json }}, '
    '"modified": {{ doc.modified | json }}, "doc": {{ doc | json }}}'
)
# Our Directus Flows by name: item changes of our collections, and file uploads (not collection-scoped).
DIRECTUS_FLOWS = {
    "syncengine webhooks": {"type": "action", "scope": list(DIRECTUS_SCOPES),
                            "collections": list(DIRECTUS_COLLECTIONS)},
    "syncengine uploads": {"type": "action", "scope": list(DIRECTUS_UPLOADS)},
}  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One line of install's or check's report."""

    system: str
    subscription: str
    action: str  # created, updated, unchanged, missing, outdated, skipped, error
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.system:<13} {self.action:<9} {self.subscription}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclass
class Want:
    """A subscription we want: its identity in the service, and the fields that must hold."""

    key: str
    body: dict[str, Any]
    # Fields sent on create but not compared (a password field the API masks when read back).
    create_only: dict[str, Any] = field(default_factory=dict)


def differs(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The wanted fields whose value in the service is something else."""
    return [k for k, v in want.items() if _norm(have.get(k)) != _norm(v)]


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return sorted(json.dumps(_norm(v), sort_keys=True) for v in value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return str(value) if isinstance(value, int) else value


class Vendor:
    """How one service lists, creates and updates our subscriptions."""

    system = ""

    def __init__(self, connector: Any, receiver: str, secret: str | None) -> None:
        self.api = connector
        self.receiver = receiver.rstrip("/")
        self.secret = secret

    def wanted(self) -> list[Want]:
        raise NotImplementedError

    def existing(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """key -> (vendor id, fields as the service reports them)."""
        raise NotImplementedError

    def create(self, want: Want) -> str:
        """Create it; returns a note for the report (empty when there is nothing to say)."""
        raise NotImplementedError

    def update(self, vendor_id: str, want: Want, fields: list[str]) -> None:
        raise NotImplementedError


class InvoiceNinjaHooks(Vendor):
    system = "invoiceninja"
    API = "/api/v1/webhooks"

    def wanted(self) -> list[Want]:
        return [
            Want(f"{event} -> {self.receiver}/webhooks/invoiceninja/{event}", self._body(event))
            for event in INVOICENINJA_EVENTS
        ]

    def _body(self, event: str) -> dict[str, Any]:
        return {
            "target_url": f"{self.receiver}/webhooks/invoiceninja/{event}",
            "event_id": str(INVOICENINJA_EVENT_IDS[event]), "rest_method": "post", "format": "JSON",
            "headers": {"X-Webhook-Secret": self.secret},
        }  # fmt: skip

    def existing(self) -> dict[str, tuple[str, dict[str, Any]]]:
        ids = {str(v): k for k, v in INVOICENINJA_EVENT_IDS.items()}
        found = {}
        for hook in self.api.paginate("webhooks"):
            event = ids.get(str(hook.get("event_id")))
            if event and not hook.get("is_deleted") and not hook.get("archived_at"):
                found[f"{event} -> {hook.get('target_url')}"] = (hook["id"], hook)
        return found

    def create(self, want: Want) -> str:
        self.api.request("POST", self.API, json=want.body)
        return ""

    def update(self, vendor_id: str, want: Want, fields: list[str]) -> None:
        self.api.request("PUT", f"{self.API}/{vendor_id}", json=want.body, idempotent=True)


class ERPNextHooks(Vendor):
    system = "erpnext"

    def wanted(self) -> list[Want]:
        wants = []
        for event in ERPNEXT_EVENTS:
            doctype, docevent = event.split(":")
            url = f"{self.receiver}/webhooks/erpnext/{docevent}"
            body = {
                "webhook_doctype": doctype, "webhook_docevent": docevent, "request_url": url,
                "request_method": "POST", "request_structure": "JSON", "enabled": 1, "enable_security": 1,
                "webhook_json": ERPNEXT_TEMPLATE % docevent,
            }  # fmt: skip
            extra = {
                "webhook_secret": self.secret,
                "webhook_headers": [{"key": "Content-Type", "value": "application/json"}],
            }
            wants.append(Want(f"{event} -> {url}", body, extra))
        return wants

    def existing(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            f"{h['webhook_doctype']}:{h['webhook_docevent']} -> {h['request_url']}": (h["name"], h)
            for h in self.api.iter_webhooks()
        }

    def create(self, want: Want) -> str:
        self.api.create("Webhook", {**want.body, **want.create_only})
        return ""

    def update(self, vendor_id: str, want: Want, fields: list[str]) -> None:
        self.api.update("Webhook", vendor_id, {k: want.body[k] for k in fields})


class MauticHooks(Vendor):
    system = "mautic"

    def wanted(self) -> list[Want]:
        url = f"{self.receiver}/webhooks/mautic"
        body = {"name": "syncengine", "webhookUrl": url, "triggers": list(MAUTIC_EVENTS),
                "secret": self.secret, "isPublished": True}  # fmt: skip
        return [Want(url, body)]

    def existing(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {h["webhookUrl"]: (str(h["id"]), h) for h in self.api.iter_hooks()}

    def create(self, want: Want) -> str:
        self.api.request("POST", "/api/hooks/new", json=want.body)
        return ""

    def update(self, vendor_id: str, want: Want, fields: list[str]) -> None:
        changes = {k: want.body[k] for k in fields}
        self.api.request("PATCH", f"/api/hooks/{vendor_id}/edit", json=changes, idempotent=True)


class DirectusFlows(Vendor):
    """Event Flows (DIRECTUS_FLOWS) whose first operation is a request to us with our secret header."""

    system = "directus"

    def wanted(self) -> list[Want]:
        url = f"{self.receiver}/webhooks/directus"
        request = {"url": url, "method": "POST", "body": "{{$trigger}}",
                   "headers": [{"header": "X-Webhook-Secret", "value": self.secret}]}  # fmt: skip
        flow = {"status": "active", "trigger": "event", "request": request}
        return [
            Want(f"Flow {name!r} -> {url}", {"name": name, **flow, "options": options})
            for name, options in DIRECTUS_FLOWS.items()
        ]

    def existing(self) -> dict[str, tuple[str, dict[str, Any]]]:
        names = ",".join(DIRECTUS_FLOWS)
        flows = self.api.get_json("/flows", params={"filter[name][_in]": names, "limit": -1})["data"]
        found = {}
        for flow in flows:
            request: dict[str, Any] = {}
            if flow.get("operation"):
                op = self.api.get_json(f"/operations/{flow['operation']}")["data"]
                request = op.get("options") or {} if op.get("type") == "request" else {}
            key = f"Flow {flow['name']!r} -> {request.get('url', '')}"
            found[key] = (flow["id"], {**flow, "request": request})
        return found

    def create(self, want: Want) -> str:
        flow_fields = {k: v for k, v in want.body.items() if k != "request"}
        flow = self.api.request("POST", "/flows", json=flow_fields).json()["data"]
        self._attach(flow["id"], want)
        return ""

    def update(self, vendor_id: str, want: Want, fields: list[str]) -> None:
        changes = {k: want.body[k] for k in fields if k != "request"}
        if changes:
            self.api.request("PATCH", f"/flows/{vendor_id}", json=changes, idempotent=True)
        if "request" in fields:
            self._attach(vendor_id, want)

    def _attach(self, flow_id: str, want: Want) -> None:
        op = {"flow": flow_id, "key": "send_to_syncengine", "name": "Send to syncengine", "type": "request",
              "position_x": 19, "position_y": 1, "options": want.body["request"]}  # fmt: skip
        flow = self.api.get_json(f"/flows/{flow_id}")["data"]
        if flow.get("operation"):
            path = f"/operations/{flow['operation']}"
            self.api.request("PATCH", path, json={"options": op["options"]}, idempotent=True)
            return
        created = self.api.request("POST", "/operations", json=op).json()["data"]
        self.api.request("PATCH", f"/flows/{flow_id}", json={"operation": created["id"]}, idempotent=True)


class RevolutHooks(Vendor):
    """Revolut v2 webhooks; the signing secret is Revolut's own, so it is never compared, only reported."""

    system = "revolut"

    def wanted(self) -> list[Want]:
        url = f"{self.receiver}/webhooks/revolut"
        return [Want(url, {"url": url, "events": list(REVOLUT_EVENTS)})]

    def existing(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {h["url"]: (h["id"], h) for h in self.api.get_json("/webhooks")}

    def create(self, want: Want) -> str:
        hook = self.api.request("POST", "/webhooks", json=want.body).json()
        secret = hook.get("signing_secret", "")
        if secret and secret == self.secret:
            return ""
        # Shown once, to the operator's terminal (never logged): the receiver needs it to verify.
        return f"set REVOLUT_WEBHOOK_SECRET to its signing secret {secret}"

    def update(self, vendor_id: str, want: Want, fields: list[str]) -> None:
        self.api.request("PATCH", f"/webhooks/{vendor_id}", json=want.body, idempotent=True)


VENDORS: dict[str, type[Vendor]] = {
    v.system: v for v in (InvoiceNinjaHooks, ERPNextHooks, MauticHooks, DirectusFlows, RevolutHooks)
}
NEEDS_OUR_SECRET = ("invoiceninja", "erpnext", "mautic", "directus")


def _connector(system: str, settings: Settings) -> Any:
    if system == "revolut":
        from connectors.revolut import RevolutConnector

        base = (settings.services["revolut"].url or "").removesuffix("/1.0") + "/2.0"
        return RevolutConnector(base)
    from connectors.registry import connector_for

    return connector_for(system)


def reconcile(
    receiver: str, *, apply: bool, systems: Iterable[str] | None = None, settings: Settings | None = None,
    connector: Callable[[str, Settings], Any] = _connector,
) -> list[Change]:  # fmt: skip
    """Create/correct (apply) or only compare (check) our subscriptions; one Change per subscription."""
    settings = settings or get_settings()
    changes: list[Change] = []
    for system in systems or VENDORS:
        svc = settings.services[system]
        secret = svc.webhook_secrets[0].reveal() if svc.webhook_secrets else None
        if not svc.configured:
            changes.append(Change(system, "-", "skipped", f"{system.upper()}_URL is not set"))
            continue
        if secret is None and system in NEEDS_OUR_SECRET:
            changes.append(Change(system, "-", "skipped", f"set {system.upper()}_WEBHOOK_SECRET first"))
            continue
        try:
            vendor = VENDORS[system](connector(system, settings), receiver, secret)
            changes.extend(_reconcile_one(vendor, apply))
        except Exception as exc:  # one vendor down or misconfigured must not hide the others' report
            changes.append(Change(system, "-", "error", redact(f"{type(exc).__name__}: {exc}")[:300]))
    return changes


def _reconcile_one(vendor: Vendor, apply: bool) -> list[Change]:
    have = vendor.existing()
    out = []
    for want in vendor.wanted():
        found = have.get(want.key)
        if found is None:
            note = vendor.create(want) if apply else ""
            out.append(Change(vendor.system, want.key, "created" if apply else "missing", note))
            continue
        wrong = differs(want.body, found[1])
        if not wrong:
            out.append(Change(vendor.system, want.key, "unchanged"))
            continue
        if apply:
            vendor.update(found[0], want, wrong)
        out.append(Change(vendor.system, want.key, "updated" if apply else "outdated", ", ".join(wrong)))
    return out
