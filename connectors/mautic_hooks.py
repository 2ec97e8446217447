"""Our webhook subscriptions in Mautic: one webhook with every trigger, signed with our secret; ours when it
is named `syncengine` or its URL's path is `/webhooks/mautic`."""

from __future__ import annotations

from syncengine.vendors import mautic

from .hooks import OUR_NAME, Held, Hooks, Want, our_path


class MauticHooks(Hooks):
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
