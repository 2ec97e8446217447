"""Directus simulator: static-token auth, ``/items/{collection}`` REST and Flow webhooks (apis.md §5, §9).

Collections are configured (constructor or ``/_sim/seed {"collections": {...}}``); an unknown one answers
403 FORBIDDEN like a real instance. Each collection has an integer or uuid primary key, optional unique
fields, and ``date_created``/``date_updated`` special fields (``date_updated`` is null until the first
update).

Files: ``POST /files`` (multipart), ``GET /files/{id}`` and ``GET /assets/{id}`` (the raw bytes). An upload
emits ``files.upload`` with ``{payload, key, collection: "directus_files"}`` and no ``items.create``, as
Directus' FilesService.uploadOne does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators import directus_query as q
from simulators.base import Abort, Clock, route
from simulators.directus_flows import DirectusFlows

DEFAULT_COLLECTIONS: dict[str, dict[str, Any]] = {
    name: {"pk": "id", "pk_type": "integer", "unique": ["ext_id"], "timestamps": True}
    for name in (
        "contacts",
        "clients",
        "products",
        "invoices",
        "payments",
        "expenses",
        "reviews",
        "activities",
    )
}
FORBIDDEN = "You don't have permission to access this."
API_USER = "6f1c7e0a-2b4d-4e8a-9c1f-5d2e3a4b5c6d"  # the directus_users id behind the static token


class DirectusSimulator(DirectusFlows):
    vendor = "directus"
    webhook_retries = 0  # a Flow's "Webhook / Request URL" operation never retries

    def __init__(
        self,
        clock: Clock | None = None,
        token: str = "directus-static-token",  # noqa: S107 - a simulator's well-known test token
        collections: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.token = token
        self.initial_collections = collections if collections is not None else DEFAULT_COLLECTIONS
        super().__init__(clock)
        self.on_reset()

    def on_reset(self) -> None:
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}  # id -> (directus_files row, bytes)
        self.activity: list[dict[str, Any]] = []  # directus_activity, oldest first
        self.collections: dict[str, dict[str, Any]] = {}
        for name, cfg in self.initial_collections.items():
            self.define_collection(name, **cfg)

    def define_collection(
        self,
        name: str,
        pk: str = "id",
        pk_type: str = "integer",
        unique: list[str] | None = None,
        timestamps: bool = True,
    ) -> None:
        with self.lock:
            self.collections[name] = {
                "pk": pk,
                "pk_type": pk_type,
                "unique": list(unique or []),
                "timestamps": timestamps,
            }

    # ---- vendor hooks ------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, **extensions: Any) -> Response:
        return self.json(
            {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}, status=status
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
        """A wrong token is 401; no token is the public role, which may read nothing here (403)."""
        if request.path == "/server/ping":
            return None
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.args.get("access_token")
        if token is None:
            return self.error(403, "FORBIDDEN", FORBIDDEN)
        if token != self.token:
            return self.error(401, "INVALID_CREDENTIALS", "Invalid user credentials.")
        return None

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
        """``{"collections": {name: {pk, pk_type, unique, timestamps}}, "items": {name: [rows]}}``."""
        data = data or {}
        out: dict[str, Any] = {}
        with self.lock:
            for name, cfg in (data.get("collections") or {}).items():
                self.define_collection(name, **cfg)
            for name, rows in (data.get("items") or {}).items():
                if name not in self.collections:
                    self.define_collection(name)
                out[name] = [
                    self._insert(name, dict(row), emit=False)[self.collections[name]["pk"]] for row in rows
                ]
        return out

    # ---- helpers ----------------------------------------------------------------------------------

    def _collection(self, name: str) -> dict[str, Any]:
        cfg = self.collections.get(name)
        if cfg is None:
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN))  # unknown collection: 403, not 404
        return cfg

    def _key(self, cfg: dict[str, Any], raw: str) -> Any:
        if cfg["pk_type"] == "integer":
            try:
                return int(raw)
            except ValueError:
                raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN)) from None
        return raw

    def _item(self, name: str, key: Any) -> dict[str, Any]:
        row = self.db[name].get(key)
        if row is None:
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN))  # ItemsService.readOne on zero rows
        return row

    def _payload(self, request: Request) -> Any:
        body = self.body(request)
        if body is None:
            raise Abort(self.error(400, "INVALID_PAYLOAD", "Invalid payload. Invalid JSON body."))
        return body

    def _check_unique(self, name: str, row: dict[str, Any], own_key: Any) -> None:
        cfg = self.collections[name]
        for field in cfg["unique"]:
            value = row.get(field)
            if value is None:
                continue
            for key, other in self.db[name].items():
                if key != own_key and other.get(field) == value:
                    raise Abort(
                        self.error(
                            400,
                            "RECORD_NOT_UNIQUE",
                            f'Value "{value}" for field "{field}" in collection "{name}" has to be unique.',
                            collection=name,
                            field=field,
                            value=value,
                        )
                    )

    def _insert(self, name: str, data: dict[str, Any], emit: bool = True) -> dict[str, Any]:
        cfg = self.collections[name]
        pk = cfg["pk"]
        row = dict(data)
        if row.get(pk) is None:
            row[pk] = self.db.next_id(name) if cfg["pk_type"] == "integer" else str(uuid.uuid4())
        elif cfg["pk_type"] == "integer":
            row[pk] = int(row[pk])
            self.db._seq[name] = max(self.db._seq.get(name, 0), row[pk])
        if row[pk] in self.db[name]:
            message = f'Value "{row[pk]}" for field "{pk}" in collection "{name}" has to be unique.'
            raise Abort(self.error(400, "RECORD_NOT_UNIQUE", message, collection=name, field=pk))
        self._check_unique(name, row, None)
        if cfg["timestamps"]:
            row.setdefault("date_created", self.iso_now())
            row.setdefault("date_updated", None)
        self.db[name][row[pk]] = row
        if emit:
            self._log_activity("create", name, [row[pk]])
            self.emit(
                f"{name}.items.create",
                {"event": f"{name}.items.create", "payload": data, "key": row[pk], "collection": name},
            )
        return row

    def _update(self, name: str, key: Any, data: dict[str, Any], stamp: str) -> dict[str, Any]:
        cfg = self.collections[name]
        row = self._item(name, key)
        changes = {k: v for k, v in data.items() if k != cfg["pk"]}
        self._check_unique(name, {**row, **changes}, key)
        row.update(changes)
        if cfg["timestamps"]:
            row["date_updated"] = stamp
        return row

    def _log_activity(self, action: str, collection: str, keys: list[Any]) -> None:
        """One directus_activity row per item and action, as Directus's ActivityService writes them (item
        always a string, even for integer keys); the sweep reads deletions back from here."""
        stamp = self.iso_now()
        for key in keys:
            self.activity.append({
                "id": len(self.activity) + 1, "action": action, "user": API_USER, "timestamp": stamp,
                "ip": "127.0.0.1", "user_agent": "python-requests", "collection": collection,
                "item": str(key), "origin": None, "comment": None,
            })  # fmt: skip

    def _out(self, request: Request, row: dict[str, Any]) -> dict[str, Any]:
        return q.project(row, q.list_param(request.args, "fields"))

    # ---- routes -----------------------------------------------------------------------------------

    @route("GET", "/items/{collection}")
    def list_items(self, request: Request, collection: str) -> Response:
        cfg = self._collection(collection)
        return self._list(request, self.db[collection].values(), cfg["pk"])

    @route("GET", "/activity")
    def list_activity(self, request: Request) -> Response:
        """`GET /activity` takes the global query parameters (filter, sort, limit, page, meta) like items."""
        return self._list(request, self.activity, "id")

    def _list(self, request: Request, rows_in: Any, pk: str) -> Response:
        args = request.args
        try:
            flt = q.parse_filter(args)
            limit = int(args.get("limit", 100))
            offset = int(args.get("offset", 0))
            page = int(args["page"]) if "page" in args else None
        except (q.QueryError, ValueError) as exc:
            return self.error(
                400,
                "INVALID_QUERY",
                str(exc)
                if isinstance(exc, q.QueryError)
                else "Invalid query. limit, offset and page must be integers.",
            )
        rows = sorted(rows_in, key=lambda r: str(r[pk]).zfill(20))
        try:
            matched = [r for r in rows if q.matches(r, flt)]
        except q.QueryError as exc:
            return self.error(400, "INVALID_QUERY", str(exc))
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
        return self.json({"data": self._out(request, self._item(collection, self._key(cfg, key)))})

    @route("POST", "/items/{collection}")
    def create_items(self, request: Request, collection: str) -> Response:
        self._collection(collection)
        body = self._payload(request)
        if isinstance(body, list):
            rows = [self._insert(collection, dict(item)) for item in body if isinstance(item, dict)]
            return self.json({"data": [self._out(request, r) for r in rows]})
        if not isinstance(body, dict):
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "data" must be an object or array.')
        return self.json({"data": self._out(request, self._insert(collection, body))})

    @route("PATCH", "/items/{collection}/{key}")
    def update_item(self, request: Request, collection: str, key: str) -> Response:
        cfg = self._collection(collection)
        body = self._payload(request)
        if not isinstance(body, dict):
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "data" must be an object.')
        row = self._update(collection, self._key(cfg, key), body, self.iso_now())
        self._log_activity("update", collection, [key])
        # §9: single-item events carry the key from the URL, as a string
        self.emit(
            f"{collection}.items.update",
            {"event": f"{collection}.items.update", "payload": body, "keys": [key], "collection": collection},
        )
        return self.json({"data": self._out(request, row)})

    @route("PATCH", "/items/{collection}")
    def update_items(self, request: Request, collection: str) -> Response:
        """Batch: ``{"keys": [...], "data": {...}}`` (one event, numeric keys) or ``[{pk, ...}, ...]``."""
        cfg = self._collection(collection)
        body = self._payload(request)
        stamp = self.iso_now()  # one batch, one date_updated for every row (§9)
        if (
            isinstance(body, dict)
            and isinstance(body.get("keys"), list)
            and isinstance(body.get("data"), dict)
        ):
            keys = body["keys"]
            rows = [self._update(collection, k, body["data"], stamp) for k in keys]
            self._log_activity("update", collection, keys)
            self.emit(
                f"{collection}.items.update",
                {
                    "event": f"{collection}.items.update",
                    "payload": body["data"],
                    "keys": keys,
                    "collection": collection,
                },
            )
        elif isinstance(body, list):
            rows = []
            for item in body:
                row = self._update(collection, item.get(cfg["pk"]), item, stamp)
                rows.append(row)
                self._log_activity("update", collection, [row[cfg["pk"]]])
                self.emit(
                    f"{collection}.items.update",
                    {
                        "event": f"{collection}.items.update",
                        "payload": {k: v for k, v in item.items() if k != cfg["pk"]},
                        "keys": [row[cfg["pk"]]],
                        "collection": collection,
                    },
                )
        else:
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "keys" or an array is required.')
        return self.json({"data": [self._out(request, r) for r in rows]})

    @route("DELETE", "/items/{collection}/{key}")
    def delete_item(self, request: Request, collection: str, key: str) -> Response:
        cfg = self._collection(collection)
        self._item(collection, self._key(cfg, key))
        del self.db[collection][self._key(cfg, key)]
        self._log_activity("delete", collection, [key])
        self.emit(
            f"{collection}.items.delete",
            {
                "event": f"{collection}.items.delete",
                "payload": [key],
                "keys": [key],
                "collection": collection,
            },
        )
        return self.empty(204)

    @route("DELETE", "/items/{collection}")
    def delete_items(self, request: Request, collection: str) -> Response:
        self._collection(collection)
        body = self._payload(request)
        keys = body if isinstance(body, list) else (body or {}).get("keys")
        if not isinstance(keys, list):
            return self.error(400, "INVALID_PAYLOAD", 'Invalid payload. "keys" must be an array.')
        for key in keys:
            self._item(collection, key)
        for key in keys:
            del self.db[collection][key]
        self._log_activity("delete", collection, keys)
        self.emit(
            f"{collection}.items.delete",
            {"event": f"{collection}.items.delete", "payload": keys, "keys": keys, "collection": collection},
        )
        return self.empty(204)

    # ---- files (directus_files, storage "local") -----------------------------------------------------

    def upload_file(self, data: bytes, filename: str, mimetype: str, **fields: Any) -> dict[str, Any]:
        """Store a file as an upload through the API would, and emit ``files.upload`` (also for tests)."""
        key = str(uuid.uuid4())
        extension = filename.rsplit(".", 1)[-1] if "." in filename else ""
        row = {
            "id": key, "storage": "local", "filename_disk": f"{key}.{extension}" if extension else key,
            "filename_download": filename, "title": fields.pop("title", None) or _title(filename),
            "type": mimetype or "application/octet-stream", "folder": None, "uploaded_by": None,
            "uploaded_on": self.iso_now(), "modified_by": None, "modified_on": self.iso_now(),
            "filesize": len(data), "width": None, "height": None, "description": None, "tags": None,
            "metadata": None, **fields,
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
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN))
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
            "Cache-Control": "public, max-age=0",
        })  # fmt: skip

    @route("GET", "/server/ping")
    def ping(self, request: Request) -> Response:
        return Response("pong", mimetype="text/html")


def _title(filename: str) -> str:
    """Directus' formatTitle, roughly: the name without extension, words capitalised."""
    stem = filename.rsplit(".", 1)[0]
    return " ".join(word.capitalize() for word in stem.replace("_", " ").replace("-", " ").split())
