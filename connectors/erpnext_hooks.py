"""Our webhook subscriptions in ERPNext: one Webhook document per (doctype, doc event), signed with our
secret; ours when it is named `syncengine …` or its request URL's path is `/webhooks/erpnext/…`. We create
them named `syncengine <doctype> <doc event>` (the API refuses a Webhook without a name)."""

from __future__ import annotations

from syncengine.errors import SyncError
from syncengine.vendors import erpnext

from .hooks import OUR_NAME, Held, Hooks, Want, our_path


class ERPNextHooks(Hooks):
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
