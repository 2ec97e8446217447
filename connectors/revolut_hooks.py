"""Our webhook subscriptions in Revolut: one v2 webhook whose URL's path is `/webhooks/revolut`; its signing
secret is Revolut's own, so it is stored encrypted (never shown) for the receiver to verify with."""

from __future__ import annotations

from syncengine import at_rest, signing_secrets
from syncengine.vendors import revolut

from .hooks import Change, Held, Hooks, Want, label, our_path


class RevolutHooks(Hooks):
    """Revolut v2 webhooks; the signing secret is Revolut's own, so it is never compared, only reported."""

    system = "revolut"
    credentials = "the Revolut consent (`syncengine revolut consent`)"
    forbidden_fix = "run `syncengine revolut consent` again with the WRITE scope (webhooks need it)"
    needs_our_secret = False

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
        name = label("signing secret", held.url)
        if not apply:
            return Change("revolut", name, "missing", "not stored: the receiver would refuse its webhooks",
                          "run `syncengine webhooks install --system revolut`")  # fmt: skip
        return Change("revolut", name, "updated", self._keep_secret(secret))

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
