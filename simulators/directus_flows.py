"""Directus Flows (as Directus 11 runs them): ``/flows`` and ``/operations`` as the Directus API serves them,
and the deliveries an active event Flow makes through its "Webhook / Request URL" (``request``) operation.

A Flow is ``{id (uuid), name, status, trigger, options, operation}``; ``operation`` is the first
operation's id. An action event Flow whose ``options.scope`` holds ``items.create`` (…) and whose
``options.collections`` holds the collection runs its first operation after the item event; one whose
scope holds ``files.upload`` runs after an upload. The request
operation's ``options`` are ``{url, method, headers: [{header, value}], body}``; the simulator renders the
body ``{{$trigger}}`` (what syncengine installs) and skips other templates. No signing, no retry.
"""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators import directus_query as q
from simulators.base import Abort, Simulator, route
from simulators.directus_schema import required_error

FLOWS, OPERATIONS = "directus_flows", "directus_operations"
ADMIN_USER = "6f1c7e0a-2b4d-4e8a-9c1f-5d2e3a4b5c6d"  # the directus_users id behind the admin token
TRIGGER_BODY = "{{$trigger}}"


class DirectusFlows(Simulator):
    """Mixin for the Directus simulator (which provides `error` and `_payload`): the Flows API and the
    targets active Flows give."""

    # ---- deliveries --------------------------------------------------------------------------------

    def flow_targets(self, event: str) -> list[dict[str, Any]]:
        # `contacts.items.create` is scope `items.create` of collection `contacts`; other events
        # (`files.upload`) are scopes of their own, not tied to a collection.
        collection, scope = event.split(".", 1) if ".items." in event else (None, event)
        targets = []
        for flow in self.db[FLOWS].values():
            options = flow.get("options") or {}
            if flow.get("status") != "active" or flow.get("trigger") != "event":
                continue
            if options.get("type", "action") != "action" or scope not in (options.get("scope") or []):
                continue
            if collection is not None and collection not in (options.get("collections") or []):
                continue
            op = self.db[OPERATIONS].get(flow.get("operation"))
            opts = (op or {}).get("options") or {}
            if not op or op.get("type") != "request" or str(opts.get("body", "")).strip() != TRIGGER_BODY:
                continue
            headers = {h["header"]: h["value"] for h in opts.get("headers") or [] if h.get("header")}
            method = str(opts.get("method") or "GET").upper()
            url = opts.get("url", "")
            target = {"url": url, "secret": None, "events": [event], "headers": headers, "method": method}
            targets.append(target)
        return targets

    # ---- /flows and /operations --------------------------------------------------------------------

    def _system_item(self, table: str, key: str) -> dict[str, Any]:
        row = self.db[table].get(key)
        if row is None:
            raise Abort(self.error(403, "FORBIDDEN", "You don't have permission to access this."))
        return row

    def _system_out(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """A flow lists its operations' ids (the `operations` alias field), as Directus answers it."""
        if table != FLOWS:
            return row
        return {
            **row,
            "operations": [k for k, op in self.db[OPERATIONS].items() if op.get("flow") == row["id"]],
        }

    def _list_system(self, request: Request, table: str) -> Response:
        try:
            flt = q.parse_filter(request.args)
            rows = [self._system_out(table, r) for r in self.db[table].values() if q.matches(r, flt)]
        except q.QueryError as exc:
            return self.error(400, "INVALID_QUERY", str(exc))
        return self.json({"data": rows})

    def _create_system(
        self, request: Request, table: str, required: tuple[str, ...], defaults: dict[str, Any]
    ) -> Response:
        body = self._payload(request)
        if not isinstance(body, dict):
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "data" must be an object.')
        missing = [f for f in required if body.get(f) in (None, "")]
        if missing:  # one FAILED_VALIDATION per missing field, as Directus validates a system item
            return self.json({"errors": [required_error(f) for f in missing]}, status=400)
        stamp = self.iso_now()[:19]  # SQLite: no zone, no milliseconds
        row = {**defaults, **body, "id": str(uuid.uuid4()), "date_created": stamp, "user_created": ADMIN_USER}
        self.db[table][row["id"]] = row
        return self.json({"data": self._system_out(table, row)})

    def _update_system(self, request: Request, table: str, key: str) -> Response:
        row = self._system_item(table, key)
        body = self._payload(request)
        if not isinstance(body, dict):
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "data" must be an object.')
        row.update({k: v for k, v in body.items() if k not in ("id", "operations")})
        return self.json({"data": self._system_out(table, row)})

    @route("GET", "/flows")
    def list_flows(self, request: Request) -> Response:
        return self._list_system(request, FLOWS)

    @route("GET", "/flows/{key}")
    def get_flow(self, request: Request, key: str) -> Response:
        return self.json({"data": self._system_out(FLOWS, self._system_item(FLOWS, key))})

    @route("POST", "/flows")
    def create_flow(self, request: Request) -> Response:
        defaults = {"icon": None, "color": None, "description": None, "status": "active", "trigger": None,
                    "accountability": "all", "options": None, "operation": None}  # fmt: skip
        return self._create_system(request, FLOWS, ("name",), defaults)

    @route("PATCH", "/flows/{key}")
    def update_flow(self, request: Request, key: str) -> Response:
        return self._update_system(request, FLOWS, key)

    @route("DELETE", "/flows/{key}")
    def delete_flow(self, request: Request, key: str) -> Response:
        self._system_item(FLOWS, key)
        del self.db[FLOWS][key]
        for op_key in [k for k, op in self.db[OPERATIONS].items() if op.get("flow") == key]:
            del self.db[OPERATIONS][op_key]  # operations belong to their flow (ON DELETE CASCADE)
        return self.empty(204)

    @route("GET", "/operations")
    def list_operations(self, request: Request) -> Response:
        return self._list_system(request, OPERATIONS)

    @route("GET", "/operations/{key}")
    def get_operation(self, request: Request, key: str) -> Response:
        return self.json({"data": self._system_item(OPERATIONS, key)})

    @route("POST", "/operations")
    def create_operation(self, request: Request) -> Response:
        body = self.body(request)
        if isinstance(body, dict) and body.get("flow") and body["flow"] not in self.db[FLOWS]:
            return self.error(400, "INVALID_FOREIGN_KEY", "Invalid foreign key.", collection=None, field=None,
                              value=None)  # fmt: skip
        defaults = {"name": None, "options": None, "resolve": None, "reject": None}
        return self._create_system(request, OPERATIONS, ("key", "type", "flow", "position_x", "position_y"),
                                   defaults)  # fmt: skip

    @route("PATCH", "/operations/{key}")
    def update_operation(self, request: Request, key: str) -> Response:
        return self._update_system(request, OPERATIONS, key)

    @route("DELETE", "/operations/{key}")
    def delete_operation(self, request: Request, key: str) -> Response:
        self._system_item(OPERATIONS, key)
        del self.db[OPERATIONS][key]
        return self.empty(204)
