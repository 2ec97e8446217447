"""Revolut webhooks v2: subscriptions under ``/api/2.0/webhooks``, signing-secret rotation, signed deliveries.

A delivery carries ``Revolut-Request-Timestamp`` (unix ms) and ``Revolut-Signature: v1=<hex HMAC-SHA256 of
"v1.{ts}.{raw body}">``, one ``v1=`` entry per active secret while a rotated secret is still inside its
``expiration_period``. A failed delivery is retried three more times at ``webhook_retry_interval`` (600 s at
Revolut; tests shorten it or set ``webhook_interval_scale``), then listed under ``failed-events``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from simulators.base import LOOPBACK_HOSTS, Delivery, route
from simulators.revolut.common import RevolutBase, iso, parse_ts

EVENTS = ("TransactionCreated", "TransactionStateChanged", "PayoutLinkCreated", "PayoutLinkStateChanged")
DEFAULT_EVENTS = ["TransactionCreated", "TransactionStateChanged"]
MAX_WEBHOOKS = 10
MAX_ACTIVE_SECRETS = 3
MAX_EXPIRATION = 7 * 86400.0
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> float:
    """ISO-8601 duration (``PT5H30M``, ``P7D``) in seconds: what ``expiration_period`` takes."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(text)
    w, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return w * 604800 + d * 86400 + h * 3600 + mi * 60 + s


def v1_signature(secret: str, timestamp_ms: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v1." + timestamp_ms.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


class RevolutWebhooks(RevolutBase):
    """Mixin: the v2 subscription API plus the delivery hooks of the base (``sign``, body, retry policy)."""

    webhook_retries = 3
    webhook_retry_interval = 600.0

    # ---- subscription API -------------------------------------------------------------------------

    @route("POST", "/api/2.0/webhooks")
    def create_webhook(self, request: Request) -> Response:
        data = self.body_or_fail(request)
        if not data.get("url"):
            raise self.fail(400, 3000, "Required 'url' is missing")
        url = self._check_url(data["url"])
        events = self._check_events(data.get("events", DEFAULT_EVENTS))
        if len(self.db["webhooks"]) >= MAX_WEBHOOKS:
            raise self.fail(
                422,
                3352,
                f"Owner [ownerType=BUSINESS] already has {MAX_WEBHOOKS} webhooks. "
                f"Only {MAX_WEBHOOKS} are allowed.",
            )
        hook = {
            "id": str(uuid.uuid4()),
            "url": url,
            "events": events,
            "secret": self._new_secret(),
            "old_secrets": [],
        }
        self.db["webhooks"][hook["id"]] = hook
        return self.json(self._public(hook, with_secret=True), status=201)

    @route("GET", "/api/2.0/webhooks")
    def list_webhooks(self, request: Request) -> Response:
        return self.json([self._public(h) for h in self.db["webhooks"].values()])

    @route("GET", "/api/2.0/webhooks/{webhook_id}")
    def get_webhook(self, request: Request, webhook_id: str) -> Response:
        return self.json(self._public(self._hook(webhook_id), with_secret=True))

    @route("PATCH", "/api/2.0/webhooks/{webhook_id}")
    def update_webhook(self, request: Request, webhook_id: str) -> Response:
        hook = self._hook(webhook_id)
        data = self.body_or_fail(request)
        if "url" not in data and "events" not in data:
            raise self.fail(400, 3000, "url or events must be provided")
        url = self._check_url(data["url"]) if "url" in data else hook["url"]
        events = self._check_events(data["events"]) if "events" in data else hook["events"]
        hook.update(url=url, events=events)
        return self.json(self._public(hook))

    @route("DELETE", "/api/2.0/webhooks/{webhook_id}")
    def delete_webhook(self, request: Request, webhook_id: str) -> Response:
        self._hook(webhook_id)
        del self.db["webhooks"][webhook_id]
        return self.empty(204)

    @route("POST", "/api/2.0/webhooks/{webhook_id}/rotate-signing-secret")
    def rotate_secret(self, request: Request, webhook_id: str) -> Response:
        hook = self._hook(webhook_id)
        data = self.body(request) or {}
        try:
            period = parse_duration(str(data.get("expiration_period", "P0D")))
        except ValueError:
            raise self.fail(400, 2101, "Invalid expiration_period") from None
        if period > MAX_EXPIRATION:
            raise self.fail(400, 2101, "expiration_period cannot exceed P7D")
        now = self.now()
        kept = [s for s in hook["old_secrets"] if s["expires"] > now]
        if period > 0:
            kept.append({"secret": hook["secret"], "expires": now + period})
        if len(kept) + 1 > MAX_ACTIVE_SECRETS:
            raise self.fail(
                422,
                3355,
                f"Webhook {webhook_id} can't have more than {MAX_ACTIVE_SECRETS} active signing keys",
            )
        hook.update(secret=self._new_secret(), old_secrets=kept)
        return self.json(self._public(hook, with_secret=True))

    @route("GET", "/api/2.0/webhooks/{webhook_id}/failed-events")
    def failed_events(self, request: Request, webhook_id: str) -> Response:
        self._hook(webhook_id)
        try:
            limit = int(request.args.get("limit", 100))
            before = parse_ts(request.args["created_before"]) if "created_before" in request.args else None
        except ValueError:
            raise self.fail(400, 2101, "Invalid limit or created_before") from None
        if not 1 <= limit <= 1000:
            raise self.fail(400, 2101, "limit must be between 1 and 1000")
        events = [
            e
            for e in self.db["webhook_failures"].values()
            if e["webhook_id"] == webhook_id and (before is None or parse_ts(e["created_at"]) < before)
        ]
        events.sort(key=lambda e: e["created_at"], reverse=True)
        return self.json(events[:limit])

    def _hook(self, webhook_id: str) -> dict[str, Any]:
        hook = self.db["webhooks"].get(webhook_id)
        if hook is None:
            raise self.fail(404, 3040, "Webhook not found")
        return hook

    def _check_url(self, url: Any) -> str:
        """HTTPS only, as documented; plain HTTP is allowed for loopback receivers (simulator-only)."""
        parts = urlsplit(str(url))
        loopback_http = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if not parts.netloc or not (parts.scheme == "https" or loopback_http):
            raise self.fail(400, 3000, "Invalid url: only HTTPS URLs are supported")
        return str(url)

    def _check_events(self, events: Any) -> list[str]:
        if not isinstance(events, list) or any(e not in EVENTS for e in events):
            raise self.fail(400, 3000, f"Invalid events: expected a list of {', '.join(EVENTS)}")
        return list(dict.fromkeys(events))

    @staticmethod
    def _new_secret() -> str:
        return "wsk_" + secrets.token_urlsafe(24)

    @staticmethod
    def _public(hook: dict[str, Any], with_secret: bool = False) -> dict[str, Any]:
        out = {"id": hook["id"], "url": hook["url"], "events": list(hook["events"])}
        if with_secret:
            out["signing_secret"] = hook["secret"]
        return out

    # ---- delivery hooks of the base ---------------------------------------------------------------

    def event_payload(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"event": event, "timestamp": iso(self.now()), "data": data}

    def webhook_targets_for(self, event: str) -> list[dict[str, Any]]:
        """Subscriptions (live dicts: a rotation before a retry is honoured) plus control-surface targets."""
        hooks = [h for h in self.db["webhooks"].values() if event in h["events"]]
        return hooks + super().webhook_targets_for(event)

    def webhook_body(self, event: str, payload: Any) -> bytes:
        return json.dumps(payload, separators=(",", ":")).encode()

    def sign(self, body: bytes, secret: str | None) -> dict[str, str]:
        timestamp = str(int(self.now() * 1000))
        headers = {"Revolut-Request-Timestamp": timestamp}
        ring = self._key_ring(secret)
        if ring:
            headers["Revolut-Signature"] = ",".join(v1_signature(s, timestamp, body) for s in ring)
        return headers

    def _key_ring(self, secret: str | None) -> list[str]:
        """The current secret first, then rotated ones still inside their expiration period."""
        if not secret:
            return []
        with self.lock:
            now = self.now()
            for hook in self.db["webhooks"].values():
                if hook["secret"] == secret:
                    return [secret] + [s["secret"] for s in hook["old_secrets"] if s["expires"] > now]
        return [secret]

    def webhook_retry_delay(self, delivery: Delivery, status: int | None, error: str | None) -> float | None:
        delay = super().webhook_retry_delay(delivery, status, error)
        ok = status is not None and 200 <= status < 300
        hook_id = delivery.target.get("id")
        if delay is None and not ok and hook_id:
            with self.lock:
                now = iso(self.now())
                event_id = str(uuid.uuid4())
                self.db["webhook_failures"][event_id] = {
                    "id": event_id,
                    "created_at": delivery.payload.get("timestamp", now),
                    "updated_at": now,
                    "webhook_id": hook_id,
                    "webhook_url": delivery.target["url"],
                    "payload": delivery.payload,
                    "last_sent_date": now,
                }
        return delay
