"""Directus simulator: static-token auth, ``/items/{collection}`` REST, the schema (``/collections``,
``/fields``), ``/permissions/me``, files and Flow webhooks, as Directus 11.17 on SQLite answers them.

Collections are seeded from the engine's declaration (``syncengine.vendors.directus``) unless given
(``collections=[]`` starts with none, as a fresh Directus); tests add their own with ``define_collection``
or ``/_sim/seed {"collections": {...}}``. Each collection has its fields: a field it lacks is dropped from
what is written, and values are kept as SQLite keeps them (simulators.directus_schema).

Observed on the real server and followed here: an unknown or unreadable collection is 403 FORBIDDEN, as is
a missing item on GET; for the admin token a PATCH or DELETE of a missing item answers 204 with no body
(and still logs the action and fires the Flow), for a token of a policy without admin access both are 403;
an unknown field in a filter, `fields` or `sort` is 403, not 400.

Tokens: ``token`` is the admin's static token; ``limited_token`` (when given) belongs to a user whose policy
allows create, read, update and delete on the collections present at start and nothing else (no
``directus_activity``, ``directus_files``, Flows or schema), the least privilege the engine's items need.

Files: ``POST /files`` (multipart), ``GET /files[/{id}]`` and ``GET /assets/{id}`` (the raw bytes). An upload
emits ``files.upload`` with ``{payload, key, collection: "directus_files"}`` and no ``items.create``, as
Directus' FilesService.uploadOne does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators import directus_query as q
from simulators.base import Abort, Clock, route
from simulators.directus_flows import DirectusFlows
from simulators.directus_schema import FORBIDDEN_ITEM, DirectusSchema, forbidden_collection, forbidden_field
from syncengine.vendors import directus
from syncengine.vendors.directus import COLLECTIONS, Collection

API_USER = "6f1c7e0a-2b4d-4e8a-9c1f-5d2e3a4b5c6d"  # the directus_users id behind the admin token
LIMITED_USER = "0b3f2c7e-91d4-4a6e-8f2b-7c5d1e9a3b60"  # the user behind `limited_token`
ACTIONS = {"GET": "read", "HEAD": "read", "POST": "create", "PATCH": "update", "DELETE": "delete"}
SYSTEM_PATHS = {"activity": "directus_activity", "revisions": "directus_revisions",
                "files": "directus_files", "assets": "directus_files",
                "flows": "directus_flows", "operations": "directus_operations",
                "collections": "directus_collections", "fields": "directus_fields"}  # fmt: skip
SYSTEM_COLLECTIONS = (*sorted(set(SYSTEM_PATHS.values())), "directus_permissions", "directus_policies",
                      "directus_roles", "directus_users")  # fmt: skip
ACTIVITY_FIELDS = {"id": "integer", "action": "string", "user": "uuid", "timestamp": "timestamp",
                   "ip": "string", "user_agent": "text", "collection": "string", "item": "string",
                   "origin": "string", "revisions": "alias"}  # fmt: skip
REVISION_FIELDS = {"id": "integer", "activity": "integer", "collection": "string", "item": "string",
                   "data": "json", "delta": "json", "parent": "integer", "version": "uuid"}  # fmt: skip
FILE_FIELDS = ("id", "storage", "filename_disk", "filename_download", "title", "type", "folder",
               "uploaded_by", "created_on", "modified_by", "modified_on", "charset", "filesize", "width",
               "height", "duration", "embed", "description", "location", "tags", "metadata", "focal_point_x",
               "focal_point_y", "tus_id", "tus_data", "uploaded_on")  # fmt: skip


class DirectusSimulator(DirectusFlows, DirectusSchema):
    vendor = "directus"
    webhook_retries = 0  # a Flow's "Webhook / Request URL" operation never retries
    engine_credentials = {"DIRECTUS_TOKEN": "directus-static-token"}

    def subscribe_engine(self, receiver: str, secret: str | None) -> None:
        """A Flow per watched event, whose request adds our secret header."""
        self.add_webhook_target(f"{receiver}/webhooks/directus", events=list(directus.EVENTS),
                                headers={"X-Webhook-Secret": secret})  # fmt: skip

    def __init__(
        self,
        clock: Clock | None = None,
        token: str = "directus-static-token",  # noqa: S107 - a simulator's well-known test token
        collections: Iterable[Collection] | Mapping[str, Collection] | None = None,
        limited_token: str | None = None,
    ) -> None:
        self.token, self.limited_token = token, limited_token
        declared = COLLECTIONS if collections is None else collections
        self.declared = list(declared.values() if isinstance(declared, Mapping) else declared)
        super().__init__(clock)
        self.on_reset()

    def on_reset(self) -> None:
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}  # id -> (directus_files row, bytes)
        self.activity: list[dict[str, Any]] = []  # directus_activity, oldest first
        self.revisions: list[dict[str, Any]] = []  # directus_revisions, oldest first
        self.collections: dict[str, dict[str, Any]] = {}
        for collection in self.declared:
            self.make_collection(collection.body())
        # token -> the collections and actions its policy allows; None: admin access
        self.policies: dict[str, dict[str, set[str]] | None] = {self.token: None}
        if self.limited_token:
            self.policies[self.limited_token] = {c: set(ACTIONS.values()) for c in self.collections}

    def define_collection(
        self, name: str, fields: Iterable[str] = (), pk_type: str = "integer",
        unique: Iterable[str] = (), timestamps: bool = True,
    ) -> None:  # fmt: skip
        """A collection of string fields (the `unique` ones too), for tests that need their own."""
        pk = {"field": "id", "type": pk_type, "meta": {"hidden": True},
              "schema": {"is_primary_key": True, "has_auto_increment": pk_type == "integer"}}  # fmt: skip
        names = list(dict.fromkeys([*fields, *unique]))
        body = [
            {"field": f, "type": "string", "meta": {}, "schema": {"is_unique": f in unique}} for f in names
        ]
        dates = [{"field": f"date_{w}", "type": "timestamp", "meta": {"special": [f"date-{w}"]}}
                 for w in ("created", "updated")] if timestamps else []  # fmt: skip
        with self.lock:
            self.collections.pop(name, None)
            self.make_collection({"collection": name, "schema": {}, "fields": [pk, *body, *dates]})

    def grant(self, token: str, collection: str, *actions: str) -> None:
        """Let `token` (the limited one) do `actions` on `collection` (a system one too)."""
        with self.lock:
            policy = self.policies[token]
            assert policy is not None, "the admin token may do everything already"
            policy.setdefault(collection, set()).update(actions)

    # ---- vendor hooks ------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, **extensions: Any) -> Response:
        return self.json(
            {"errors": [{"message": message, "extensions": {**extensions, "code": code}}]}, status=status
        )

    def error_response(self, status: int, message: str) -> Response:
        code = {
            400: "INVALID_PAYLOAD",
            401: "INVALID_CREDENTIALS",
            403: "FORBIDDEN",
            404: "ROUTE_NOT_FOUND",
            405: "ROUTE_NOT_FOUND",
            503: "SERVICE_UNAVAILABLE",
        }.get(status, "INTERNAL_SERVER_ERROR")
        if status >= 500 and status != 503:
            message = "An unexpected error occurred."
        return self.error(status, code, message)

    def not_found_response(self, request: Request) -> Response:
        return self.error(404, "ROUTE_NOT_FOUND", f"Route {request.path} doesn't exist.")

    def rate_limited_response(self, retry_after: int) -> Response:
        return self.error(429, "REQUESTS_EXCEEDED", f"Too many requests, retry after {retry_after}s.")

    def authenticate(self, request: Request) -> Response | None:
        """A wrong token is 401; no token is the public role, which may read nothing here (403); the
        limited token may only do what its policy allows."""
        if request.path == "/server/ping":
            return None
        token, needs = self._token(request), _needs(request)
        if token is None:  # the public role, which may do nothing here
            return (
                self._forbidden_collection(needs[0])
                if needs
                else self.error(403, "FORBIDDEN", FORBIDDEN_ITEM)
            )
        if token not in self.policies:
            return self.error(401, "INVALID_CREDENTIALS", "Invalid user credentials.")
        policy = self.policies[token]
        if policy is None or needs is None or needs[1] in policy.get(needs[0], set()):
            return None
        collection, action = needs
        if collection == "directus_fields" or request.path.startswith("/fields/"):
            message = (f'You don\'t have permission to perform "{action}" for collection "{collection}" '
                       "or it does not exist.")  # fmt: skip
            return self.error(403, "FORBIDDEN", message, reason=message)
        return self._forbidden_collection(collection)

    def sign(self, body: bytes, secret: str | None) -> dict[str, str]:
        """Flows do not sign: the secret travels as the header the Flow was configured with."""
        headers = {"User-Agent": "axios/1.7.9"}
        if secret:
            headers["X-Webhook-Secret"] = secret
        return headers

    def webhook_body(self, event: str, payload: Any) -> bytes:
        return json.dumps(payload).encode()  # the rendered {{$trigger}}

    def webhook_targets_for(self, event: str) -> list[dict[str, Any]]:
        """Targets list full events (``invoices.items.create``) or Flow scopes (``items.create``)."""
        scope = event.split(".", 1)[1]
        return [
            t
            for t in self.webhook_targets
            if not t.get("events") or event in t["events"] or scope in t["events"]
        ] + self.flow_targets(event)

    def seed(self, data: Any) -> dict[str, Any]:
        """``{"collections": {name: {fields, pk_type, unique, timestamps}}, "items": {name: [rows]}}``. A
        seeded row may set `date_created`/`date_updated`; a field the collection lacks is an error here
        (a test's mistake), where the API would drop it."""
        data = data or {}
        out: dict[str, Any] = {}
        with self.lock:
            for name, cfg in (data.get("collections") or {}).items():
                self.define_collection(name, **cfg)
            for name, rows in (data.get("items") or {}).items():
                cfg = self._collection(name)
                for row in rows:
                    unknown = set(row) - set(cfg["fields"])
                    if unknown:
                        raise ValueError(f"directus {name} has no field {', '.join(sorted(unknown))}")
                out[name] = [self._insert(name, dict(row), emit=False)[cfg["pk"]] for row in rows]
        return out

    # ---- helpers ----------------------------------------------------------------------------------

    def _token(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return header[7:] if header.lower().startswith("bearer ") else request.args.get("access_token")

    def _admin(self, request: Request) -> bool:
        return self.policies.get(self._token(request) or "", {}) is None

    def _forbidden_collection(self, name: str) -> Response:
        message = forbidden_collection(name)
        return self.error(403, "FORBIDDEN", message, reason=message)

    def _collection(self, name: str) -> dict[str, Any]:
        cfg = self.collections.get(name)
        if cfg is None:
            raise Abort(self._forbidden_collection(name))  # unknown collection: 403, not 404
        return cfg

    def _key(self, cfg: dict[str, Any], raw: Any) -> Any:
        if cfg["pk_type"] == "integer":
            try:
                return int(raw)
            except (TypeError, ValueError):
                raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN_ITEM)) from None
        return raw

    def _item(self, name: str, key: Any) -> dict[str, Any]:
        row = self.db[name].get(key)
        if row is None:
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN_ITEM))  # ItemsService.readOne on zero rows
        return row

    def _payload(self, request: Request) -> Any:
        raw = request.get_data()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            reason = f"{exc}"
            raise Abort(
                self.error(400, "INVALID_PAYLOAD", f"Invalid payload. {reason}.", reason=reason)
            ) from exc

    def _check_unique(self, name: str, row: dict[str, Any], own_key: Any) -> None:
        cfg = self.collections[name]
        unique = [f for f, spec in cfg["fields"].items() if spec["schema"]["is_unique"]]
        for field in unique:
            value = row.get(field)
            if value is None:
                continue
            for key, other in self.db[name].items():
                if key != own_key and other.get(field) == value:
                    message = f'Value "{value}" for field "{field}" in collection "{name}" has to be unique.'
                    raise Abort(self.error(400, "RECORD_NOT_UNIQUE", message, collection=name, field=field,
                                           value=value))  # fmt: skip

    def _dates(self, name: str, special: str) -> list[str]:
        fields = self.collections[name]["fields"].values()
        return [f["field"] for f in fields if special in ((f["meta"] or {}).get("special") or [])]

    def _insert(self, name: str, data: dict[str, Any], emit: bool = True) -> dict[str, Any]:
        cfg = self.collections[name]
        pk = cfg["pk"]
        defaults = {f: spec["schema"]["default_value"] for f, spec in cfg["fields"].items()}
        row = self.stored(name, defaults) | self.stored(name, data)
        if row.get(pk) is None:
            row[pk] = self.db.next_id(name) if cfg["pk_type"] == "integer" else str(uuid.uuid4())
        elif cfg["pk_type"] == "integer":
            row[pk] = int(row[pk])
            self.db._seq[name] = max(self.db._seq.get(name, 0), row[pk])
        if row[pk] in self.db[name]:
            message = f'Value "{row[pk]}" for field "{pk}" in collection "{name}" has to be unique.'
            raise Abort(self.error(400, "RECORD_NOT_UNIQUE", message, collection=name, field=pk))
        self._check_unique(name, row, None)
        for field in self._dates(name, "date-created"):
            row[field] = row[field] if not emit and row[field] else self.iso_now()
        self.db[name][row[pk]] = row
        if emit:
            self._log_activity("create", name, [row[pk]], {row[pk]: self.stored(name, data)})
            self.emit(
                f"{name}.items.create",
                {"event": f"{name}.items.create", "payload": data, "key": row[pk], "collection": name},
            )
        return row

    def _update(self, name: str, key: Any, data: dict[str, Any], stamp: str) -> dict[str, Any] | None:
        """The row after the update, or None when there is no such item (nothing is written)."""
        cfg = self.collections[name]
        row = self.db[name].get(key)
        if row is None:
            return None
        changes = {k: v for k, v in self.stored(name, data).items() if k != cfg["pk"]}
        self._check_unique(name, {**row, **changes}, key)
        row.update(changes)
        for field in self._dates(name, "date-updated"):
            row[field] = stamp
        return row

    def _refuse_unknown(self, request: Request, name: str, data: dict[str, Any], action: str) -> None:
        """Without admin access, an update naming a field the collection lacks is 403 (the admin's is
        dropped silently)."""
        if self._admin(request) or action != "update":
            return
        unknown = sorted(set(data) - set(self.collections[name]["fields"]))
        if unknown:
            message = forbidden_field(unknown[0], name)
            raise Abort(self.error(403, "FORBIDDEN", message, reason=message))

    def _refuse_missing(self, request: Request, name: str, keys: list[Any], action: str, data: Any) -> None:
        """Without admin access, Directus checks the items exist before an update or delete: 403."""
        if self._admin(request) or all(k in self.db[name] for k in keys):
            return
        if action == "update":
            fields = ", ".join(f'"{f}"' for f in data)
            message = (f'You don\'t have permissions to perform "update" for the field(s) {fields} in '
                       f'collection "{name}" or it does not exist.')  # fmt: skip
        else:
            message = (f'You don\'t have permission to perform "delete" for collection "{name}" or it does '
                       "not exist.")  # fmt: skip
        raise Abort(self.error(403, "FORBIDDEN", message, reason=message))

    def _log_activity(
        self, action: str, collection: str, keys: list[Any], deltas: dict[Any, dict[str, Any]] | None = None
    ) -> None:
        """One directus_activity row per item and action, as Directus's ActivityService writes them (item
        always a string, even for integer keys); the sweep reads deletions back from here. A create or an
        update also writes a directus_revisions row per item, as observed on Directus 11.17: `delta` is
        the payload as sent (unchanged fields too) with the `date_updated` the write set, `data` the item
        after it."""
        stamp = self.iso_now()
        for key in keys:
            activity = len(self.activity) + 1
            self.activity.append({
                "id": activity, "action": action, "user": API_USER, "timestamp": stamp,
                "ip": "127.0.0.1", "user_agent": "python-requests", "collection": collection,
                "item": str(key), "origin": None, "revisions": [],
            })  # fmt: skip
            if deltas is None or key not in deltas or key not in self.db[collection]:
                continue
            row = self.db[collection][key]
            delta = dict(deltas[key])
            for field in self._dates(collection, "date-updated"):
                if action == "update":
                    delta[field] = row[field]
            self.revisions.append({
                "id": len(self.revisions) + 1, "activity": activity, "collection": collection,
                "item": str(key), "data": dict(row), "delta": delta, "parent": None, "version": None,
            })  # fmt: skip

    def _out(self, request: Request, row: dict[str, Any]) -> dict[str, Any]:
        return q.project(row, q.list_param(request.args, "fields"))

    def _check(self, request: Request, fields: Mapping[str, str]) -> dict[str, Any] | None:
        """The parsed filter, after checking every field and operator the query names."""
        try:
            flt = q.parse_filter(request.args)
            q.check_query(request.args, flt, dict(fields))
        except q.UnknownField as exc:
            message = forbidden_field(exc.field, self._listing(request))
            raise Abort(self.error(403, "FORBIDDEN", message, reason=message)) from exc
        except q.QueryError as exc:
            raise Abort(_invalid_query(self, str(exc))) from exc
        return flt

    @staticmethod
    def _listing(request: Request) -> str:
        parts = request.path.strip("/").split("/")
        return parts[1] if parts[0] == "items" else SYSTEM_PATHS.get(parts[0], parts[0])

    # ---- routes -----------------------------------------------------------------------------------

    @route("GET", "/items/{collection}")
    def list_items(self, request: Request, collection: str) -> Response:
        cfg = self._collection(collection)
        types = {f: spec["type"] for f, spec in cfg["fields"].items()}
        return self._list(request, self.db[collection].values(), cfg["pk"], types)

    @route("GET", "/activity")
    def list_activity(self, request: Request) -> Response:
        """`GET /activity` takes the global query parameters (filter, sort, limit, page, meta) like items."""
        return self._list(request, self.activity, "id", ACTIVITY_FIELDS)

    @route("GET", "/revisions")
    def list_revisions(self, request: Request) -> Response:
        """`GET /revisions` takes the global query parameters like items (`data` and `delta` are JSON)."""
        return self._list(request, self.revisions, "id", REVISION_FIELDS)

    def _delta(self, collection: str, data: dict[str, Any]) -> dict[str, Any]:
        pk = self.collections[collection]["pk"]
        return {k: v for k, v in self.stored(collection, data).items() if k != pk}

    @route("GET", "/files")
    def list_files(self, request: Request) -> Response:
        rows = [row for row, _ in self.files.values()]
        return self._list(request, rows, "id", dict.fromkeys(FILE_FIELDS, "string"))

    def _list(self, request: Request, rows_in: Any, pk: str, types: Mapping[str, str]) -> Response:
        args = request.args
        flt = self._check(request, types)
        try:
            limit = int(args.get("limit", 100))
            offset = int(args.get("offset", 0))
            page = int(args["page"]) if "page" in args else None
        except ValueError:
            bad = next(n for n in ("limit", "offset", "page") if n in args and not _is_int(args[n]))
            return _invalid_query(self, f'Invalid query. "{bad}" must be a number.')
        rows = sorted(rows_in, key=lambda r: str(r[pk]).zfill(20))
        try:
            matched = [r for r in rows if q.matches(r, flt)]
        except q.QueryError as exc:
            return _invalid_query(self, str(exc))
        if args.get("search"):
            matched = [r for r in matched if q.search(r, args["search"])]
        matched = q.sort_items(matched, q.list_param(args, "sort"))
        if page is not None and limit != -1:
            offset = max(page - 1, 0) * limit  # page overrides offset
        chunk = matched[offset:] if limit == -1 else matched[offset : offset + max(limit, 0)]
        body: dict[str, Any] = {"data": [self._out(request, r) for r in chunk]}
        wanted = set(q.list_param(args, "meta"))
        if wanted:
            meta: dict[str, int] = {}
            if wanted & {"*", "total_count"}:
                meta["total_count"] = len(rows)
            if wanted & {"*", "filter_count"}:
                meta["filter_count"] = len(matched)
            body["meta"] = meta
        return self.json(body)

    @route("GET", "/items/{collection}/{key}")
    def get_item(self, request: Request, collection: str, key: str) -> Response:
        cfg = self._collection(collection)
        self._check(request, {f: spec["type"] for f, spec in cfg["fields"].items()})
        return self.json({"data": self._out(request, self._item(collection, self._key(cfg, key)))})

    @route("POST", "/items/{collection}")
    def create_items(self, request: Request, collection: str) -> Response:
        self._collection(collection)
        body = self._payload(request)
        if body is None:
            body = {}  # observed: an empty body makes an empty item
        if isinstance(body, list):
            rows = [self._insert(collection, dict(item)) for item in body if isinstance(item, dict)]
            return self.json({"data": [self._out(request, r) for r in rows]})
        if not isinstance(body, dict):
            reason = f"Unexpected token in JSON: {json.dumps(body)[:40]} is not valid JSON"
            return self.error(400, "INVALID_PAYLOAD", f"Invalid payload. {reason}.", reason=reason)
        return self.json({"data": self._out(request, self._insert(collection, body))})

    @route("PATCH", "/items/{collection}/{key}")
    def update_item(self, request: Request, collection: str, key: str) -> Response:
        cfg = self._collection(collection)
        body = self._payload(request)
        if not isinstance(body, dict):
            body = {}
        pk = self._key(cfg, key)
        self._refuse_unknown(request, collection, body, "update")
        self._refuse_missing(request, collection, [pk], "update", body)
        row = self._update(collection, pk, body, self.iso_now())
        self._log_activity("update", collection, [pk], {pk: self._delta(collection, body)})
        # single-item events carry the key from the URL, as a string
        self.emit(
            f"{collection}.items.update",
            {"event": f"{collection}.items.update", "payload": body, "keys": [key], "collection": collection},
        )
        if row is None:
            return self.empty(204)  # observed: the admin's PATCH of a missing item, 204 with no body
        return self.json({"data": self._out(request, row)})

    @route("PATCH", "/items/{collection}")
    def update_items(self, request: Request, collection: str) -> Response:
        """Batch: ``{"keys": [...], "data": {...}}`` (one event, numeric keys) or ``[{pk, ...}, ...]``."""
        cfg = self._collection(collection)
        body = self._payload(request)
        stamp = self.iso_now()  # one batch, one date_updated for every row
        if (
            isinstance(body, dict)
            and isinstance(body.get("keys"), list)
            and isinstance(body.get("data"), dict)
        ):
            keys, data = body["keys"], body["data"]
            self._refuse_unknown(request, collection, data, "update")
            self._refuse_missing(request, collection, keys, "update", data)
            rows = [self._update(collection, k, data, stamp) for k in keys]
            self._log_activity("update", collection, keys, dict.fromkeys(keys, self._delta(collection, data)))
            self.emit(f"{collection}.items.update", {"event": f"{collection}.items.update", "payload": data,
                                                     "keys": keys, "collection": collection})  # fmt: skip
        elif isinstance(body, list):
            rows = []
            for item in body:
                key = item.get(cfg["pk"])
                changes = {k: v for k, v in item.items() if k != cfg["pk"]}
                rows.append(self._update(collection, key, item, stamp))
                self._log_activity("update", collection, [key], {key: self._delta(collection, changes)})
                self.emit(f"{collection}.items.update", {"event": f"{collection}.items.update",
                          "payload": changes, "keys": [key], "collection": collection})  # fmt: skip
        else:
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "keys" or an array is required.')
        return self.json({"data": [self._out(request, r) for r in rows if r is not None]})

    @route("DELETE", "/items/{collection}/{key}")
    def delete_item(self, request: Request, collection: str, key: str) -> Response:
        cfg = self._collection(collection)
        pk = self._key(cfg, key)
        self._refuse_missing(request, collection, [pk], "delete", None)
        self.db[collection].pop(pk, None)  # observed: a missing item is "deleted" again, with its event
        self._log_activity("delete", collection, [key])
        self.emit(f"{collection}.items.delete", {"event": f"{collection}.items.delete", "payload": [key],
                                                 "keys": [key], "collection": collection})  # fmt: skip
        return self.empty(204)

    @route("DELETE", "/items/{collection}")
    def delete_items(self, request: Request, collection: str) -> Response:
        self._collection(collection)
        body = self._payload(request)
        keys = body if isinstance(body, list) else (body or {}).get("keys")
        if not isinstance(keys, list):
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "keys" must be an array.')
        self._refuse_missing(request, collection, keys, "delete", None)
        for key in keys:
            self.db[collection].pop(key, None)
        self._log_activity("delete", collection, keys)
        self.emit(
            f"{collection}.items.delete",
            {"event": f"{collection}.items.delete", "payload": keys, "keys": keys, "collection": collection},
        )
        return self.empty(204)

    # ---- who am I ---------------------------------------------------------------------------------------

    @route("GET", "/permissions/me")
    def my_permissions(self, request: Request) -> Response:
        """What the token's policies allow, per collection and action (`access`: full or none)."""
        policy = self.policies[self._token(request) or ""]
        if policy is None:
            full = {"access": "full", "fields": ["*"]}
            names = [*SYSTEM_COLLECTIONS, *self.collections]
            actions = (*ACTIONS.values(), "share")
            return self.json(
                {"data": {name: {a: dict(full) for a in dict.fromkeys(actions)} for name in names}}
            )
        return self.json({"data": {
            name: {a: {"access": "full", "fields": ["*"]} if a in allowed else {"access": "none"}
                   for a in ("read", "create", "update", "delete", "share")}
            for name, allowed in policy.items()
        }})  # fmt: skip

    @route("GET", "/users/me")
    def me(self, request: Request) -> Response:
        """A user without read on directus_users sees only its id."""
        if not self._admin(request):
            return self.json({"data": {"id": LIMITED_USER}})
        return self.json({"data": {"id": API_USER, "first_name": "Admin", "last_name": "User",
                                   "email": "admin@example.com", "status": "active"}})  # fmt: skip

    # ---- files (directus_files, storage "local") -----------------------------------------------------

    def upload_file(self, data: bytes, filename: str, mimetype: str, **fields: Any) -> dict[str, Any]:
        """Store a file as an upload through the API would, and emit ``files.upload`` (also for tests)."""
        key = str(uuid.uuid4())
        extension = filename.rsplit(".", 1)[-1] if "." in filename else ""
        now = self.iso_now()[:19]  # observed: SQLite gives these without a zone or milliseconds
        row = dict.fromkeys(FILE_FIELDS) | {
            "id": key, "storage": "local", "filename_disk": f"{key}.{extension}" if extension else key,
            "filename_download": filename, "title": fields.pop("title", None) or _title(filename),
            "type": mimetype or "application/octet-stream", "uploaded_by": API_USER, "created_on": now,
            "modified_on": now, "uploaded_on": now, "filesize": len(data), **fields,
        }  # fmt: skip
        with self.lock:
            self.files[key] = (row, data)
        payload = {k: v for k, v in row.items() if k != "id"}
        self.emit("files.upload", {"event": "files.upload", "payload": payload, "key": key,
                                   "collection": "directus_files"})  # fmt: skip
        return row

    def _file(self, key: str) -> tuple[dict[str, Any], bytes]:
        found = self.files.get(key)
        if found is None:
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN_ITEM))
        return found

    @route("POST", "/files")
    def create_file(self, request: Request) -> Response:
        upload = next(iter(request.files.values()), None)
        if upload is None:
            return self.error(400, "INVALID_PAYLOAD", "Invalid payload. No files where included in the body.")
        fields = {k: v for k, v in request.form.items() if k in ("title", "folder", "description")}
        row = self.upload_file(upload.read(), upload.filename or "file", upload.mimetype, **fields)
        return self.json({"data": self._out(request, row)})

    @route("GET", "/files/{key}")
    def get_file(self, request: Request, key: str) -> Response:
        return self.json({"data": self._out(request, self._file(key)[0])})

    @route("GET", "/assets/{key}")
    def get_asset(self, request: Request, key: str) -> Response:
        row, data = self._file(key)
        disposition = "attachment" if "download" in request.args else "inline"
        return Response(data, mimetype=row["type"], headers={
            "Content-Disposition": f'{disposition}; filename="{row["filename_download"]}"',
            "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=2592000",
            "Last-Modified": formatdate(self.now(), usegmt=True),
        })  # fmt: skip

    @route("GET", "/server/ping")
    def ping(self, request: Request) -> Response:
        return Response("pong", mimetype="text/html")


def _needs(request: Request) -> tuple[str, str] | None:
    """The (collection, action) a request needs, or None for what any signed-in user may call."""
    parts = request.path.strip("/").split("/")
    action = ACTIONS.get(request.method, "read")
    if parts[0] == "items" and len(parts) > 1:
        return parts[1], action
    if parts[0] == "fields" and len(parts) > 1 and parts[1] and action == "read":
        return parts[1], action  # a collection's fields: whoever may read the collection may read them
    if parts[0] in SYSTEM_PATHS and parts[:2] != ["fields", ""]:
        return SYSTEM_PATHS[parts[0]], action
    return None


def _invalid_query(sim: DirectusSimulator, message: str) -> Response:
    reason = message.removeprefix("Invalid query. ").rstrip(".")
    return sim.error(400, "INVALID_QUERY", message, reason=reason)


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _title(filename: str) -> str:
    """Directus' formatTitle, roughly: the name without extension, words capitalised."""
    stem = filename.rsplit(".", 1)[0]
    return " ".join(word.capitalize() for word in stem.replace("_", " ").replace("-", " ").split())
