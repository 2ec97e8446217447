"""Our webhook subscriptions in Invoice Ninja: one webhook per event, sent to `/webhooks/invoiceninja/<event>`
with our X-Webhook-Secret header; ours when its target URL's path is that, on any host. Archived and
deleted ones are ignored: they send nothing, and Invoice Ninja keeps listing them."""

from __future__ import annotations

from syncengine.vendors import invoiceninja

from .hooks import Held, Hooks, Want, our_path


class InvoiceNinjaHooks(Hooks):
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
