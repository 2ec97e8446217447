"""Mautic webhooks: ``/api/hooks`` CRUD (``webhook:webhooks:*`` permissions) and deliveries as
``WebhookBundle`` sends them (immediate mode).

Body ``{"<event key>": [{…payload…, "timestamp": "…+00:00"}]}`` encoded like PHP's ``json_encode``;
headers ``Content-Type: application/json``, ``X-Origin-Base-URL`` and ``Webhook-Signature`` =
base64(HMAC-SHA256(secret, exact body)). Nothing is ever re-sent: the queue rows are deleted right after the
HTTP call. A 410 answer unpublishes the webhook, and so do ``disable_limit`` failures in a row (``isSick``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from simulators.base import Delivery, route
from simulators.mautic.common import MauticBase
from simulators.mautic.fields import Row, api_time, php_json

TRIGGERS = {
    "mautic.lead_post_save_new": "Contact Identified Event",
    "mautic.lead_post_save_update": "Contact Updated Event",
    "mautic.lead_points_change": "Contact Points Changed Event",
    "mautic.lead_post_delete": "Contact Deleted Event",
    "mautic.lead_channel_subscription_changed": "Contact Channel Subscription Change Event",
    "mautic.lead_company_change": "Contact Company Subscription Change Event",
    "mautic.lead_list_change": "Contact Segment Membership Change Event",
    "mautic.company_post_save": "Company Create/Update Event",
    "mautic.company_post_delete": "Company Delete Event",
    "mautic.form_on_submit": "Form Submit Event",
    "mautic.email_on_send": "Email Send Event",
    "mautic.email_on_open": "Email Open Event",
    "mautic.page_on_hit": "Page Hit Event",
    "mautic.sms_on_send": "SMS Send Event",
}
DISABLE_LIMIT = 100  # webhook_disable_limit


class MauticWebhooks(MauticBase):
    """Mixin: the hooks API, ``fire()`` for the other endpoints, and the base's delivery hooks."""

    webhook_retries = 0

    def fire(self, event: str, **payload: Any) -> None:
        """Queue ``event`` with its payload (``contact=…``, ``submission=…``, ``stat=…``)."""
        stamp = datetime.fromtimestamp(self.now(), tz=UTC).replace(microsecond=0).isoformat()
        self.emit(event, {event: [{**payload, "timestamp": stamp}]})

    # ---- /api/hooks -------------------------------------------------------------------------------

    def hook_json(self, hook: Row) -> Row:
        return {
            "isPublished": hook["isPublished"],
            "dateAdded": api_time(hook["date_added"]),
            "dateModified": api_time(hook.get("date_modified")),
            "createdBy": 1,
            "createdByUser": "Admin User",
            "id": hook["id"],
            "name": hook["name"],
            "description": hook.get("description"),
            "webhookUrl": hook["url"],
            "secret": hook["secret"],
            "eventsOrderbyDir": hook.get("order_dir"),
            "category": None,
            "triggers": list(hook["triggers"]),
        }

    @route("GET", "/api/hooks")
    def list_hooks(self, request: Request) -> Response:
        self.require(request, "webhook:webhooks:viewother")
        hooks = sorted(self.db["hooks"].values(), key=lambda h: h["id"])
        return self.envelope("hooks", hooks, request.args, self.hook_json)

    @route("GET", "/api/hooks/triggers")
    def list_triggers(self, request: Request) -> Response:
        return self.json({"triggers": {k: {"label": v, "description": v} for k, v in TRIGGERS.items()}})

    @route("GET", "/api/hooks/{hook_id}")
    def get_hook(self, request: Request, hook_id: str) -> Response:
        self.require(request, "webhook:webhooks:viewother")
        return self.json({"hook": self.hook_json(self.entity("hooks", hook_id))})

    @route("POST", "/api/hooks/new")
    def new_hook(self, request: Request) -> Response:
        self.require(request, "webhook:webhooks:create")
        hook = {"id": self.db.next_id("hooks"), "date_added": self.db_now(), "isPublished": True, "log": []}
        self._apply_hook(hook, self.body(request) or {}, replace=True)
        self.db["hooks"][hook["id"]] = hook
        return self.json({"hook": self.hook_json(hook)}, status=201)

    @route("PATCH", "/api/hooks/{hook_id}/edit")
    @route("PUT", "/api/hooks/{hook_id}/edit")
    def edit_hook(self, request: Request, hook_id: str) -> Response:
        self.require(request, "webhook:webhooks:editother")
        hook = self.entity("hooks", hook_id)
        trial = dict(hook)
        self._apply_hook(trial, self.body(request) or {}, replace=request.method == "PUT")
        hook.update(trial, date_modified=self.db_now())
        return self.json({"hook": self.hook_json(hook)})

    @route("DELETE", "/api/hooks/{hook_id}/delete")
    def delete_hook(self, request: Request, hook_id: str) -> Response:
        self.require(request, "webhook:webhooks:deleteother")
        hook = self.entity("hooks", hook_id)
        del self.db["hooks"][hook["id"]]
        return self.json({"hook": self.hook_json(hook)})

    def _apply_hook(self, hook: Row, data: Row, replace: bool) -> None:
        errors: dict[str, list[str]] = {}
        for key, column in (
            ("name", "name"),
            ("description", "description"),
            ("webhookUrl", "url"),
            ("eventsOrderbyDir", "order_dir"),
            ("isPublished", "isPublished"),
        ):
            if key in data:
                hook[column] = data[key]
        if "triggers" in data:
            triggers = data["triggers"] if isinstance(data["triggers"], list) else []
            if not triggers or any(t not in TRIGGERS for t in triggers):
                errors["triggers"] = ["Select at least one valid event."]
            hook["triggers"] = [t for t in triggers if t in TRIGGERS]
        hook["secret"] = data.get("secret") or hook.get("secret") or secrets.token_hex(16)
        if (replace or "name" in data) and not hook.get("name"):
            errors["name"] = ["A value is required."]
        if replace or "webhookUrl" in data:
            parts = urlsplit(str(hook.get("url") or ""))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors["webhookUrl"] = ["A valid URL is required."]
        if replace and not hook.get("triggers"):
            errors.setdefault("triggers", ["Select at least one valid event."])
        if errors:
            field, messages = next(iter(errors.items()))
            raise self.fail(400, f"{field}: {messages[0]}", details=errors)

    # ---- delivery hooks of the base ---------------------------------------------------------------

    def webhook_targets_for(self, event: str) -> list[dict[str, Any]]:
        hooks = [h for h in self.db["hooks"].values() if h["isPublished"] and event in h["triggers"]]
        return hooks + super().webhook_targets_for(event)

    def webhook_body(self, event: str, payload: Any) -> bytes:
        return php_json(payload)

    def sign(self, body: bytes, secret: str | None) -> dict[str, str]:
        headers = {"X-Origin-Base-URL": self.site_url}
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
            headers["Webhook-Signature"] = base64.b64encode(digest).decode()
        return headers

    def webhook_retry_delay(self, delivery: Delivery, status: int | None, error: str | None) -> float | None:
        hook = delivery.target
        if "log" in hook and status is not None:  # a transport error leaves no log row
            with self.lock:
                hook["log"] = [*hook["log"], status][-DISABLE_LIMIT:]
                sick = len(hook["log"]) >= DISABLE_LIMIT and not any(200 <= s < 300 for s in hook["log"])
                if status == 410 or sick:
                    hook["isPublished"] = False
        return None
