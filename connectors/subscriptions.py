"""`syncengine webhooks install` / `check`: our webhook subscriptions in each service, through its own API.

What we want is declared once per service (`wanted`): one subscription per (event, our URL). Install lists
what the service holds, keeps one of ours per event (moving it to our URL when it points elsewhere),
creates what is missing, corrects what differs and removes the rest of ours (duplicates, and ours at
another URL), so a second run changes nothing; check only reports. Anything the service sends elsewhere
that is not ours is left alone. How a subscription is recognised as ours, per service:

- Invoice Ninja: its target URL's path is ours, `/webhooks/invoiceninja/<event>` on any host (one
  subscription per event, with our X-Webhook-Secret header). Archived and deleted ones are ignored: they
  send nothing, and Invoice Ninja keeps listing them.
- ERPNext: a Webhook document named `syncengine …` or whose request URL's path is `/webhooks/erpnext/…`.
  We create them named `syncengine <doctype> <doc event>` (the API refuses a Webhook without a name).
- Mautic: a webhook named `syncengine` or whose URL's path is `/webhooks/mautic` (one, with every trigger).
- Directus: a Flow named as ours (directus.FLOWS) or whose request operation posts to `/webhooks/directus`.
- Revolut: a v2 webhook whose URL's path is `/webhooks/revolut` (its signing secret is Revolut's own).

So one deployment per vendor account: a second deployment's subscriptions would look like ours at another
URL and be moved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from syncengine import at_rest, signing_secrets
from syncengine.errors import AuthExpired, SyncError
from syncengine.redaction import redact
from syncengine.settings import Settings, get_settings
from syncengine.vendors import directus, erpnext, invoiceninja, mautic, revolut

OUR_NAME = "syncengine"  # the name (or name prefix) of what we create where the vendor names things
# Report actions: install does (created, updated, removed); check finds (missing, outdated, stale,
# duplicate); both may say unchanged, skipped, forbidden or error.
PROBLEMS = frozenset({"missing", "outdated", "stale", "duplicate", "forbidden", "error"})


@dataclass(frozen=True)
class Change:
    """One line of install's or check's report."""

    system: str
    subscription: str
    action: str
    detail: str = ""
    fix: str = ""

    @property
    def problem(self) -> bool:
        return self.action in PROBLEMS

    def __str__(self) -> str:
        line = f"{self.system:<13} {self.action:<9} {self.subscription}"
        line += f" ({self.detail})" if self.detail else ""
        return line + (f" -> {self.fix}" if self.fix else "")


@dataclass
class Want:
    """A subscription we want: what it subscribes to (`key`), where it sends, the fields that must hold."""

    key: str
    url: str
    body: dict[str, Any]
    # Fields sent on create but not compared (a secret the API masks when read back).
    create_only: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Held:
    """A subscription of ours the service holds: its id there, what it subscribes to, where it sends."""

    vendor_id: str
    key: str
    url: str
    fields: Mapping[str, Any]


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


def our_path(url: str, sender: str, *, event: bool = False) -> bool:
    """True when the URL's path is our receiver's for `sender` (with an event segment if `event`), on any
    host and under any prefix: a receiver that moved is still ours."""
    path = urlsplit(str(url or "")).path.rstrip("/")
    tail = r"/[^/]+" if event else ""
    return re.search(rf"/webhooks/{re.escape(sender)}{tail}$", path) is not None


class Vendor:
    """How one service lists, creates, updates and removes our subscriptions."""

    system = ""
    credentials = ""  # the settings holding our credentials there, for a refused login
    forbidden_fix = ""  # what a person grants when the service refuses these calls to our credentials

    def __init__(self, connector: Any, receiver: str, secret: str | None) -> None:
        self.api = connector
        self.receiver = receiver.rstrip("/")
        self.secret = secret

    def wanted(self) -> list[Want]:
        raise NotImplementedError

    def ours(self) -> list[Held]:
        """Every subscription the service holds that is ours (see the module docstring), wherever it sends."""
        raise NotImplementedError

    def create(self, want: Want) -> str:
        """Create it; returns a note for the report (empty when there is nothing to say)."""
        raise NotImplementedError

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        raise NotImplementedError

    def remove(self, held: Held) -> None:
        raise NotImplementedError

    def kept(self, held: Held, apply: bool) -> Change | None:
        """Anything else to check of a subscription we keep (Revolut: its signing secret is stored)."""
        return None


class InvoiceNinjaHooks(Vendor):
    system = "invoiceninja"
    API = "/api/v1/webhooks"
    credentials = "INVOICENINJA_TOKEN"
    # Invoice Ninja answers 403 both to an unknown token and to one whose user may not manage webhooks.
    forbidden_fix = "check INVOICENINJA_TOKEN; webhooks are an administrator's: use an admin user's token"

    def wanted(self) -> list[Want]:
        return [self._want(event) for event in invoiceninja.EVENTS]

    def _want(self, event: str) -> Want:
        url = f"{self.receiver}/webhooks/invoiceninja/{event}"
        body = {"target_url": url, "event_id": str(invoiceninja.EVENT_IDS[event]), "rest_method": "post",
                "format": "JSON", "headers": {"X-Webhook-Secret": self.secret}}  # fmt: skip
        return Want(event, url, body)

    def ours(self) -> list[Held]:
        names = {str(v): k for k, v in invoiceninja.EVENT_IDS.items()}
        live = (
            h for h in self.api.paginate("webhooks") if not h.get("is_deleted") and not h.get("archived_at")
        )
        return [
            Held(h["id"], names.get(str(h.get("event_id")), f"event {h.get('event_id')}"), h["target_url"], h)
            for h in live
            if our_path(h.get("target_url"), "invoiceninja", event=True)
        ]

    def create(self, want: Want) -> str:
        self.api.request("POST", self.API, json=want.body)
        return ""

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        self.api.request("PUT", f"{self.API}/{held.vendor_id}", json=want.body, idempotent=True)

    def remove(self, held: Held) -> None:
        self.api.delete_if_present(f"{self.API}/{held.vendor_id}")


class ERPNextHooks(Vendor):
    system = "erpnext"
    credentials = "ERPNEXT_API_KEY and ERPNEXT_API_SECRET"
    forbidden_fix = "Webhook documents are a System Manager's: give the ERPNEXT_API_KEY user that role"

    def wanted(self) -> list[Want]:
        return [self._want(event) for event in erpnext.EVENTS]

    def _want(self, event: str) -> Want:
        doctype, docevent = event.split(":")
        url = f"{self.receiver}/webhooks/erpnext/{docevent}"
        body = {
            "webhook_doctype": doctype, "webhook_docevent": docevent, "request_url": url,
            "request_method": "POST", "request_structure": "JSON", "enabled": 1, "enable_security": 1,
            "webhook_json": erpnext.TEMPLATE % docevent,
        }  # fmt: skip
        extra = {
            "webhook_secret": self.secret,
            "webhook_headers": [{"key": "Content-Type", "value": "application/json"}],
        }
        return Want(event, url, body, extra)

    def ours(self) -> list[Held]:
        return [
            Held(
                h["name"],
                f"{h.get('webhook_doctype')}:{h.get('webhook_docevent')}",
                h.get("request_url") or "",
                h,
            )
            for h in self.api.iter_webhooks()
            if str(h["name"]).startswith(OUR_NAME) or our_path(h.get("request_url"), "erpnext", event=True)
        ]

    def create(self, want: Want) -> str:
        """POSTed here rather than through the connector's `create`, which drops `name`: ERPNext names a
        Webhook only as told (417 "Please set the document name" without one). A name taken by a Webhook
        that is not one of ours gets a number."""
        base = f"{OUR_NAME} {want.key.replace(':', ' ')}"
        for n in range(1, 10):
            name = base if n == 1 else f"{base} {n}"
            try:
                self.api.request("POST", self.api.doc_path("Webhook"),
                                 json={"name": name, **want.body, **want.create_only})  # fmt: skip
                return ""
            except SyncError as exc:
                if getattr(exc, "exc_type", None) != "DuplicateEntryError":
                    raise
        raise RuntimeError(f"ERPNext has Webhooks named {base} 1 to 9 already")

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        self.api.update("Webhook", held.vendor_id, {k: want.body[k] for k in fields})

    def remove(self, held: Held) -> None:
        self.api.delete("Webhook", held.vendor_id)


class MauticHooks(Vendor):
    system = "mautic"
    credentials = "MAUTIC_USERNAME and MAUTIC_PASSWORD (or MAUTIC_CLIENT_ID and MAUTIC_CLIENT_SECRET)"
    forbidden_fix = (
        "give the Mautic API user's role Webhooks: view, create, edit and delete (Settings > Roles)"
    )

    def wanted(self) -> list[Want]:
        url = f"{self.receiver}/webhooks/mautic"
        body = {"name": OUR_NAME, "webhookUrl": url, "triggers": list(mautic.EVENTS),
                "secret": self.secret, "isPublished": True}  # fmt: skip
        return [Want(OUR_NAME, url, body)]

    def ours(self) -> list[Held]:
        return [
            Held(str(h["id"]), OUR_NAME, h.get("webhookUrl") or "", h)
            for h in self.api.iter_hooks()
            if h.get("name") == OUR_NAME or our_path(h.get("webhookUrl"), "mautic")
        ]

    def create(self, want: Want) -> str:
        self.api.request("POST", "/api/hooks/new", json=want.body)
        return ""

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        changes = {k: want.body[k] for k in fields}
        self.api.request("PATCH", f"/api/hooks/{held.vendor_id}/edit", json=changes, idempotent=True)

    def remove(self, held: Held) -> None:
        self.api.delete_hook(int(held.vendor_id))


class DirectusFlows(Vendor):
    """Event Flows (directus.FLOWS) whose first operation is a request to us with our secret header."""

    system = "directus"
    credentials = "DIRECTUS_TOKEN"
    forbidden_fix = (
        "let DIRECTUS_TOKEN's policy read, create, update and delete directus_flows and directus_operations, "
        "or run this once with an administrator's token (DIRECTUS_TOKEN=<admin token> syncengine "
        "webhooks install --system directus)"
    )

    def wanted(self) -> list[Want]:
        url = f"{self.receiver}/webhooks/directus"
        request = {"url": url, "method": "POST", "body": "{{$trigger}}",
                   "headers": [{"header": "X-Webhook-Secret", "value": self.secret}]}  # fmt: skip
        flow = {"status": "active", "trigger": "event", "request": request}
        return [
            Want(name, url, {"name": name, **flow, "options": options})
            for name, options in directus.FLOWS.items()
        ]

    def ours(self) -> list[Held]:
        flows = self.api.get_json("/flows", params={"limit": -1})["data"]
        operations = {op["id"]: op for op in self.api.get_json("/operations", params={"limit": -1})["data"]}
        held = []
        for flow in flows:
            op = operations.get(flow.get("operation")) or {}
            request = (op.get("options") or {}) if op.get("type") == "request" else {}
            if flow.get("name") in directus.FLOWS or our_path(request.get("url"), "directus"):
                held.append(Held(flow["id"], flow.get("name") or "", request.get("url") or "",
                                 {**flow, "request": request}))  # fmt: skip
        return held

    def create(self, want: Want) -> str:
        flow_fields = {k: v for k, v in want.body.items() if k != "request"}
        flow = self.api.request("POST", "/flows", json=flow_fields).json()["data"]
        self._attach(flow["id"], want)
        return ""

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        changes = {k: want.body[k] for k in fields if k != "request"}
        if changes:
            self.api.request("PATCH", f"/flows/{held.vendor_id}", json=changes, idempotent=True)
        if "request" in fields:
            self._attach(held.vendor_id, want)

    def remove(self, held: Held) -> None:
        """The Flow and its operations (Directus deletes a Flow's operations with it)."""
        self.api.request("DELETE", f"/flows/{held.vendor_id}")

    def _attach(self, flow_id: str, want: Want) -> None:
        op = {"flow": flow_id, "key": "send_to_syncengine", "name": "Send to syncengine", "type": "request",
              "position_x": 19, "position_y": 1, "options": want.body["request"]}  # fmt: skip
        flow = self.api.get_json(f"/flows/{flow_id}")["data"]
        if flow.get("operation"):
            path = f"/operations/{flow['operation']}"
            self.api.request(
                "PATCH", path, json={"type": "request", "options": op["options"]}, idempotent=True
            )
            return
        created = self.api.request("POST", "/operations", json=op).json()["data"]
        self.api.request("PATCH", f"/flows/{flow_id}", json={"operation": created["id"]}, idempotent=True)


class RevolutHooks(Vendor):
    """Revolut v2 webhooks; the signing secret is Revolut's own, so it is never compared, only reported."""

    system = "revolut"
    credentials = "the Revolut consent (`syncengine revolut consent`)"
    forbidden_fix = "run `syncengine revolut consent` again with the WRITE scope (webhooks need it)"

    def wanted(self) -> list[Want]:
        url = f"{self.receiver}/webhooks/revolut"
        return [Want("revolut", url, {"url": url, "events": list(revolut.EVENTS)})]

    def ours(self) -> list[Held]:
        return [
            Held(h["id"], "revolut", h["url"], h)
            for h in self.api.get_json("/webhooks")
            if our_path(h["url"], "revolut")
        ]

    def create(self, want: Want) -> str:
        hook = self.api.request("POST", "/webhooks", json=want.body).json()
        return self._keep_secret(hook.get("signing_secret") or "")

    def kept(self, held: Held, apply: bool) -> Change | None:
        """Revolut makes each webhook's signing secret and serves it with the webhook: it is stored, never
        shown. A secret that is neither stored nor configured means the receiver refuses its webhooks."""
        from connectors.base import segment

        hook = self.api.get_json(f"/webhooks/{segment(held.vendor_id, 'uuid', what='webhook id')}")
        secret = hook.get("signing_secret") or ""
        known = {s.reveal() for s in signing_secrets.stored("revolut", fresh=True)} | {self.secret}
        if not secret or secret in known:
            return None
        label = _label("signing secret", held.url)
        if not apply:
            return Change("revolut", label, "missing", "not stored: the receiver would refuse its webhooks",
                          "run `syncengine webhooks install --system revolut`")  # fmt: skip
        return Change("revolut", label, "updated", self._keep_secret(secret))

    def _keep_secret(self, secret: str) -> str:
        """Store the signing secret encrypted (never print it): the receiver verifies with it."""
        if not secret or secret == self.secret:
            return ""
        try:
            signing_secrets.save("revolut", secret)
        except at_rest.NotConfigured as exc:
            return f"its signing secret could not be stored ({exc}); then run `webhooks install` again"
        return "its signing secret is stored encrypted; the receiver verifies with it"

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        self.api.request("PATCH", f"/webhooks/{held.vendor_id}", json=want.body, idempotent=True)

    def remove(self, held: Held) -> None:
        self.api.delete_if_present(f"/webhooks/{held.vendor_id}")


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
    """Create/correct/remove (apply) or only compare (check) our subscriptions; one Change per line. A
    service that is down, refuses us or is not configured is one line and the others are still done."""
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
            changes.append(failure(system, exc))
    return changes


def failure(system: str, exc: Exception, refused: str | None = None) -> Change:
    """A vendor's failure as one line with what to do: refused credentials (401) say which settings to check,
    a refused call (403) what to grant (`refused`, else what managing webhooks needs), anything else what
    broke. Shared with `setup`."""
    detail = redact(f"{type(exc).__name__}: {exc}")[:300]
    vendor, status = VENDORS[system], getattr(exc, "status", None)
    if isinstance(exc, AuthExpired) or status == 401:
        return Change(system, "-", "forbidden", detail, f"check {vendor.credentials}")
    if status == 403:
        return Change(system, "-", "forbidden", detail, refused or vendor.forbidden_fix)
    if isinstance(exc, SyncError):
        fix = f"check {system.upper()}_URL and that the service answers"
    elif isinstance(exc, ValueError):  # a connector refusing incomplete settings
        fix = f"complete the {system.upper()}_* settings (README: Configuration)"
    else:
        fix = "this is a bug in syncengine: please report it"
    return Change(system, "-", "error", detail, fix)


def _reconcile_one(vendor: Vendor, apply: bool) -> list[Change]:
    held, wanted = vendor.ours(), vendor.wanted()
    kept: set[str] = set()
    out = []
    for want in wanted:
        same = [h for h in held if h.key == want.key]
        keep = _best(want, [h for h in same if h.url == want.url] or same)
        if keep is None:
            note = vendor.create(want) if apply else ""
            out.append(
                Change(vendor.system, _label(want.key, want.url), "created" if apply else "missing", note)
            )
            continue
        kept.add(keep.vendor_id)
        out.append(_correct(vendor, keep, want, apply))
        if (more := vendor.kept(keep, apply)) is not None:
            out.append(more)
    wanted_at = {(w.key, w.url) for w in wanted}
    for extra in (h for h in held if h.vendor_id not in kept):
        kind = "duplicate" if (extra.key, extra.url) in wanted_at else "stale"
        if apply:
            vendor.remove(extra)
        out.append(Change(vendor.system, _label(extra.key, extra.url), "removed" if apply else kind,
                          kind if apply else ""))  # fmt: skip
    return out


def _best(want: Want, candidates: list[Held]) -> Held | None:
    """The one to keep among ours for a wanted subscription: the one closest to it."""
    return min(candidates, key=lambda h: len(differs(want.body, h.fields)), default=None)


def _correct(vendor: Vendor, keep: Held, want: Want, apply: bool) -> Change:
    wrong = differs(want.body, keep.fields)
    label = _label(want.key, want.url)
    if not wrong:
        return Change(vendor.system, label, "unchanged")
    if apply:
        vendor.update(keep, want, wrong)
    detail = f"moved from {keep.url}" if keep.url != want.url else ", ".join(wrong)
    if not apply and keep.url != want.url:
        detail = f"sends to {keep.url}"
    return Change(vendor.system, label, "updated" if apply else "outdated", detail)


def _label(key: str, url: str) -> str:
    return f"{key} at {url}"
