"""Frappe webhooks: Webhook documents decide what is sent where (``frappe/integrations/…/webhook.py``).

Per matching Webhook (doctype + docevent, optional condition), the body is ``json.dumps(data, default=str)``
where ``data`` comes from ``webhook_data`` (field → key), else the Jinja ``webhook_json`` template, else
``{}``; headers are only the configured ones plus ``X-Frappe-Webhook-Signature`` =
base64(HMAC-SHA256(secret, json.dumps(data))) when security is enabled. Each webhook fires at most once per
document per request and the document is read when the request has committed, so a webhook on
``after_insert`` of a document inserted with ``docstatus: 1`` sees it submitted. Three attempts, sleeping
``3*i+1`` s after failure ``i`` (none after a read timeout); every attempt is a ``Webhook Request Log``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from simulators.base import Delivery
from simulators.erpnext.documents import Doc, no_nulls
from simulators.erpnext.rules import ERPNextRules

_ALWAYS = ("on_update", "after_insert", "on_submit", "on_cancel", "on_trash")
# Frappe adds these two only outside insert; "before_update_after_submit" (not "on_update_after_submit")
# is what run_webhooks lists, so an on_update_after_submit webhook is never sent through this path.
_NOT_ON_INSERT = ("on_change", "before_update_after_submit")
ATTEMPTS = 3


def _jinja() -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=False)  # renders JSON, never HTML
    env.filters["json"] = lambda value: json.dumps(no_nulls(value), default=str)  # as frappe.as_json
    return env


class FrappeWebhooks(ERPNextRules):
    """Queues, renders, signs and retries webhook requests; see the module docstring."""

    webhook_retries = ATTEMPTS - 1
    webhook_timeout = 5.0

    _jenv = _jinja()
    _sending: dict[str, Any] | None = None

    def _fire(self, doc: Doc, event: str, in_insert: bool = False) -> None:
        if event not in _ALWAYS and (in_insert or event not in _NOT_ON_INSERT):
            return
        self._outbox.append((f"{doc['doctype']}:{event}", doc, None))  # control-surface targets
        for hook in self.db["Webhook"].values():
            if not hook["enabled"] or (hook["webhook_doctype"], hook["webhook_docevent"]) != (
                doc["doctype"],
                event,
            ):
                continue
            if hook.get("condition") and not self._condition(hook["condition"], doc):
                continue
            if (hook["name"], doc["name"]) in self._fired:
                continue
            self._fired.add((hook["name"], doc["name"]))
            self._outbox.append((f"{doc['doctype']}:{event}", doc, hook))

    def _condition(self, expression: str, doc: Doc) -> bool:
        try:
            return bool(self._jenv.compile_expression(expression)(doc=copy.deepcopy(doc)))
        except TemplateError:
            return False

    def flush_outbox(self) -> None:
        """The request succeeded: its commit hooks run, then what it queued is sent
        (``enqueue_after_commit``)."""
        commits, self._commits = self._commits, []
        for commit in commits:
            commit()
        outbox, self._outbox, self._fired = self._outbox, [], set()
        for event, doc, hook in outbox:
            if hook is None:
                self.emit(event, self.as_dict(doc))
                continue
            try:
                target, data = self._request_for(doc, hook)
            except (TemplateError, ValueError) as exc:  # Frappe logs the failure and sends nothing
                self.store_raw(
                    "Webhook Request Log",
                    {
                        "webhook": hook["name"],
                        "reference_doctype": doc["doctype"],
                        "reference_document": doc["name"],
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )
                continue
            self._sending = target
            try:
                self.emit(event, data)
            finally:
                self._sending = None

    def _request_for(self, doc: Doc, hook: Doc) -> tuple[dict[str, Any], Any]:
        context = copy.deepcopy(doc)  # the template sees every field (a Document's attributes)
        if hook.get("webhook_data"):
            data: Any = {row["key"]: context.get(row["fieldname"]) for row in hook["webhook_data"]}
        elif hook.get("webhook_json"):
            data = json.loads(self._jenv.from_string(hook["webhook_json"]).render(doc=context))
        else:
            data = {}
        url = hook["request_url"]
        if hook.get("is_dynamic_url"):
            url = self._jenv.from_string(url).render(doc=context)
        headers = {
            h["key"]: h["value"] for h in hook.get("webhook_headers") or [] if h.get("key") and h.get("value")
        }
        target = {
            "url": url,
            "method": hook.get("request_method") or "POST",
            "headers": headers,
            "secret": self._secret(hook, "webhook_secret") if hook.get("enable_security") else None,
            "webhook": hook["name"],
            "reference_doctype": doc["doctype"],
            "reference_document": doc["name"],
        }
        return target, data

    # ---- delivery hooks of the base ---------------------------------------------------------------

    def webhook_targets_for(self, event: str) -> list[dict[str, Any]]:
        if self._sending is not None:
            return [self._sending]
        return super().webhook_targets_for(event)

    def webhook_body(self, event: str, payload: Any) -> bytes:
        return json.dumps(payload, default=str).encode()

    def sign(self, body: bytes, secret: str | None) -> dict[str, str]:
        if not secret:
            return {}
        digest = hmac.new(secret.encode("utf8"), body, hashlib.sha256).digest()
        return {"X-Frappe-Webhook-Signature": base64.b64encode(digest).decode()}

    def webhook_retry_delay(self, delivery: Delivery, status: int | None, error: str | None) -> float | None:
        ok = status is not None and status < 400  # requests' raise_for_status
        target = delivery.target
        if target.get("webhook"):
            with self.lock:
                self.store_raw(
                    "Webhook Request Log",
                    {
                        "webhook": target["webhook"],
                        "reference_doctype": target["reference_doctype"],
                        "reference_document": target["reference_document"],
                        "url": target["url"],
                        "headers": json.dumps(target.get("headers") or {}),
                        "data": json.dumps(delivery.payload),
                        "error": None if ok else (error or f"HTTPError: {status}"),
                    },
                )
        if ok or delivery.attempt >= ATTEMPTS:
            return None
        if error and error.startswith("ReadTimeout"):
            return 0.0  # the loop ``continue``s without sleeping after a read timeout
        return (3 * (delivery.attempt - 1) + 1) * self.webhook_interval_scale
