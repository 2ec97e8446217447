"""`syncengine setup` for Invoice Ninja: nothing to create (see `syncengine.vendors.invoiceninja`), so this
checks the token: it works (`GET /api/v1/ping` names its user and company), and its user may do what the
engine does, tried without a trace. Reading is a list of one; creating is `GET /api/v1/<entity>/create`
(a blank entity for a create form, authorised like a create: `Create<Entity>Request`); editing is
`GET /api/v1/<entity>/{id}/edit` on the first one listed (`Edit<Entity>Request`). Webhooks are an
administrator's (`CreateWebhookRequest`), tried the same way.
"""

from __future__ import annotations

from typing import Any

from syncengine.errors import Permanent
from syncengine.vendors.invoiceninja import ENTITIES, SINGULAR

from .invoiceninja import API
from .setup import FORBIDDEN, OK, Finding, VendorSetup

PERMISSIONS_PAGE = "Settings > User Management > the user > Permissions"


class InvoiceNinjaSetup(VendorSetup):
    system = "invoiceninja"

    def permissions(self) -> list[Finding]:
        ping = self.api.get_json(f"{API}/ping")
        who = f"token of {ping.get('user_name')} at {ping.get('company_name')}"
        findings = [self.finding("token", OK, f"{who} works")]
        findings += [self._entity(kind, purpose, actions) for kind, (purpose, actions) in ENTITIES.items()]
        return [*findings, self._webhooks()]

    def _entity(self, kind: str, purpose: str, actions: tuple[str, ...]) -> Finding:
        refused, note = [], ""
        rows = self._allowed(f"{API}/{kind}", {"per_page": 1})
        if rows is None:
            refused.append("view")
        if "create" in actions and self._allowed(f"{API}/{kind}/create") is None:
            refused.append("create")
        if "edit" in actions and rows:
            if self._allowed(f"{API}/{kind}/{rows[0]['id']}/edit") is None:
                refused.append("edit")
        elif "edit" in actions:
            note = " (edit not tried: none there yet)"
        if not refused:
            return self.finding(kind, OK, "may " + ", ".join(actions) + note)
        names = ", ".join(f"{action}_{SINGULAR[kind]}" for action in refused)
        fix = f"grant {names} to the token's user ({PERMISSIONS_PAGE}), or use an administrator's token"
        return self.finding(kind, FORBIDDEN, f"may not {', '.join(refused)} ({purpose})", fix)

    def _webhooks(self) -> Finding:
        subject = "webhooks"
        if self._allowed(f"{API}/webhooks/create") is not None:
            return self.finding(subject, OK, "the token's user may manage them")
        fix = ("make the token's user an administrator, or run `INVOICENINJA_TOKEN=<an admin's token> "
               "syncengine webhooks install --system invoiceninja`")  # fmt: skip
        return self.finding(subject, FORBIDDEN, "only an administrator may manage webhooks", fix)

    def _allowed(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """The answer's `data` as a list, or None when Invoice Ninja refuses it (403)."""
        try:
            data = self.api.get_json(path, params=params)["data"]
        except Permanent as exc:
            if exc.status != 403:
                raise
            return None
        return data if isinstance(data, list) else [data]
