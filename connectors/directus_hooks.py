"""Our webhook subscriptions in Directus: one event Flow per collection event (directus.FLOWS) whose first
operation posts the trigger to `/webhooks/directus` with our secret header; ours when it is named as ours
or posts to that path."""

from __future__ import annotations

from syncengine.vendors import directus

from .hooks import Held, Hooks, Want, our_path


class DirectusFlows(Hooks):
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
