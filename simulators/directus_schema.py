"""Directus's schema, as Directus 11.17 on SQLite serves it: ``/collections`` and ``/fields`` (read, create,
change, delete), and what a field's type does to a value written into it.

Observed on the real server: a decimal field is made (and reported) as ``float`` with no precision, and
its values come back as JSON numbers; a boolean comes back 0/1 unless the field has ``cast-boolean``; a
JSON field gives text back unless it has ``cast-json``; a timestamp field gets ``cast-timestamp`` added,
and one without ``meta`` among a new collection's fields is refused (400 FAILED_VALIDATION);
``PATCH /fields`` ignores a new ``type``; SQLite keeps text written into a number column as it is ("abc"
stays "abc"); an invalid date is 400 INVALID_PAYLOAD, an invalid timestamp 500 "Invalid time value".
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import Abort, Simulator, route

FORBIDDEN_ITEM = "You don't have permission to access this."
# Directus's types as SQLite stores them: (reported type, data_type)
SQLITE_TYPES = {"decimal": ("float", "float"), "string": ("string", "varchar"),
                "timestamp": ("timestamp", "datetime"), "uuid": ("uuid", "char"),
                "bigInteger": ("bigInteger", "bigint")}  # fmt: skip
DEFAULT_PK = {"field": "id", "type": "integer", "meta": {"hidden": True},
              "schema": {"is_primary_key": True, "has_auto_increment": True}}  # fmt: skip
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")


def forbidden_collection(name: str) -> str:
    return f'You don\'t have permission to access collection "{name}" or it does not exist. Queried in root.'


def forbidden_field(field: str, collection: str) -> str:
    return (f'You don\'t have permission to access field "{field}" in collection "{collection}" or it does '
            "not exist. Queried in root.")  # fmt: skip


class DirectusSchema(Simulator):
    """Mixin for the Directus simulator (which provides `error`, `_payload` and `collections`)."""

    collections: dict[str, dict[str, Any]]

    # ---- the model ---------------------------------------------------------------------------------

    def make_collection(self, body: dict[str, Any]) -> dict[str, Any]:
        """A `POST /collections` body made into the collection (also how the declaration is seeded)."""
        name = body.get("collection")
        if not name:
            raise Abort(self._invalid('"collection" is required'))
        if not isinstance(body.get("schema"), dict):  # observed: a folder (no table) without meta is a 403
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN_ITEM))
        if name in self.collections:
            raise Abort(self._invalid(f'Collection "{name}" already exists'))
        fields = body.get("fields") or [DEFAULT_PK]
        if any(f.get("type") == "timestamp" and not isinstance(f.get("meta"), dict) for f in fields):
            # observed: a timestamp without `meta` among a new collection's fields is refused
            raise Abort(
                self.json({"errors": [required_error("collection"), required_error("field")]}, status=400)
            )
        rows = [self._field_row(name, f) for f in fields]
        pk = next((r for r in rows if r["schema"]["is_primary_key"]), None)
        if pk is None:
            raise Abort(self._invalid(f'Collection "{name}" needs a primary key'))
        meta = {**_collection_meta(name), **(body.get("meta") or {}), "collection": name}
        self.collections[name] = {"pk": pk["field"], "pk_type": pk["type"], "meta": meta,
                                  "fields": {r["field"]: r for r in rows}}  # fmt: skip
        self.db[name] = {}  # the (empty) table
        return self._collection_out(name)

    def add_field(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        cfg = self.collections[collection]
        name = body.get("field")
        if name in cfg["fields"]:
            raise Abort(self._invalid(f'Field "{name}" already exists in collection "{collection}"'))
        row = self._field_row(collection, body)
        if row["schema"]["is_unique"]:
            self._check_unique_column(collection, name)
        cfg["fields"][name] = row
        return row

    def _field_row(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        """A field as `/fields` answers it, from the body that creates it."""
        name, kind = body.get("field"), body.get("type")
        if not name or not kind:
            raise Abort(self._invalid('"field" and "type" are required'))
        meta_in = body.get("meta")
        if kind == "timestamp" and not isinstance(meta_in, dict):
            meta_in = {}  # a timestamp field always gets its meta (and `cast-timestamp`)
        schema_in = body.get("schema") or {}
        reported, data_type = SQLITE_TYPES.get(kind, (kind, kind))
        meta = None
        if isinstance(meta_in, dict):
            special = list(meta_in.get("special") or [])
            if kind == "timestamp" and "cast-timestamp" not in special:
                special.append("cast-timestamp")
            meta = {**_field_meta(collection, name), **meta_in, "special": special or None}
        schema = {
            "name": name, "table": collection, "data_type": data_type,
            "default_value": schema_in.get("default_value"), "max_length": 255 if kind == "string" else None,
            "numeric_precision": None, "numeric_scale": None, "is_generated": False,
            "generation_expression": None,
            "is_nullable": schema_in.get("is_nullable", not schema_in.get("is_primary_key")),
            "is_unique": bool(schema_in.get("is_unique")), "is_indexed": False,
            "is_primary_key": bool(schema_in.get("is_primary_key")),
            "has_auto_increment": bool(schema_in.get("has_auto_increment")),
            "foreign_key_column": None, "foreign_key_table": None,
        }  # fmt: skip
        return {"collection": collection, "field": name, "type": reported, "meta": meta, "schema": schema}

    def _check_unique_column(self, collection: str, field: str) -> None:
        values = [row.get(field) for row in self.db[collection].values() if row.get(field) is not None]
        if len(values) != len(set(map(str, values))):
            message = f'Value for field "{field}" in collection "{collection}" has to be unique.'
            raise Abort(self.error(400, "RECORD_NOT_UNIQUE", message, collection=collection, field=field))

    def _collection_out(self, name: str) -> dict[str, Any]:
        return {"collection": name, "meta": self.collections[name]["meta"], "schema": {"name": name}}

    def _schema_collection(self, name: str) -> dict[str, Any]:
        cfg = self.collections.get(name)
        if cfg is None:
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN_ITEM))
        return cfg

    def _invalid(self, reason: str) -> Response:
        return self.error(400, "INVALID_PAYLOAD", f"Invalid payload. {reason}.", reason=reason)

    # ---- values -------------------------------------------------------------------------------------

    def stored(self, collection: str, data: dict[str, Any]) -> dict[str, Any]:
        """What the row holds after writing `data`: fields the collection lacks dropped, values as SQLite
        keeps them (see the module doc)."""
        fields = self.collections[collection]["fields"]
        out = {}
        for name, value in data.items():
            row = fields.get(name)
            if row is not None:
                out[name] = self._cast(row, value)
        return out

    def _cast(self, row: dict[str, Any], value: Any) -> Any:
        kind, special = row["type"], (row["meta"] or {}).get("special") or []
        if value is None:
            return None
        if kind in ("integer", "bigInteger") and isinstance(value, str) and _NUMBER.match(value):
            return int(value) if _INTEGER.match(value) else _number(value)
        if (
            kind in ("float", "decimal")
            and isinstance(value, str | int | float)
            and _NUMBER.match(str(value))
        ):
            return _number(value)
        if kind == "boolean":
            stored = int(value) if isinstance(value, bool | int) else value
            return bool(stored) if "cast-boolean" in special and isinstance(stored, int) else stored
        if kind == "json":
            return _json_value(value, "cast-json" in special)
        if kind == "date" and value != "":
            return self._date(row, value)
        if kind == "timestamp" and value != "":
            return _timestamp(value)
        return value

    def _date(self, row: dict[str, Any], value: Any) -> str:
        parsed = _parse_time(value)
        if parsed is None:
            reason = f'Invalid Date format in field "{row["field"]}"'
            raise Abort(self.error(400, "INVALID_PAYLOAD", f"Invalid payload. {reason}.", reason=reason))
        return parsed.astimezone(UTC).strftime("%Y-%m-%d") if parsed.tzinfo else parsed.strftime("%Y-%m-%d")

    # ---- /collections --------------------------------------------------------------------------------

    @route("GET", "/collections")
    def list_collections(self, request: Request) -> Response:
        return self.json({"data": [self._collection_out(name) for name in sorted(self.collections)]})

    @route("GET", "/collections/{name}")
    def get_collection(self, request: Request, name: str) -> Response:
        self._schema_collection(name)
        return self.json({"data": self._collection_out(name)})

    @route("POST", "/collections")
    def create_collection(self, request: Request) -> Response:
        body = self._payload(request)
        if not isinstance(body, dict):
            return self._invalid('"data" must be an object')
        return self.json({"data": self.make_collection(body)})

    @route("PATCH", "/collections/{name}")
    def update_collection(self, request: Request, name: str) -> Response:
        cfg = self._schema_collection(name)
        body = self._payload(request)
        cfg["meta"].update({k: v for k, v in ((body or {}).get("meta") or {}).items() if k != "collection"})
        return self.json({"data": self._collection_out(name)})

    @route("DELETE", "/collections/{name}")
    def delete_collection(self, request: Request, name: str) -> Response:
        self._schema_collection(name)
        del self.collections[name]
        self.db.pop(name, None)
        return self.empty(204)

    # ---- /fields ------------------------------------------------------------------------------------------

    @route("GET", "/fields")
    def list_fields(self, request: Request) -> Response:
        rows = [row for name in sorted(self.collections) for row in self.collections[name]["fields"].values()]
        return self.json({"data": rows})

    @route("GET", "/fields/{collection}")
    def list_collection_fields(self, request: Request, collection: str) -> Response:
        if collection not in self.collections:
            return self.error(403, "FORBIDDEN", forbidden_collection(collection),
                              reason=forbidden_collection(collection))  # fmt: skip
        return self.json({"data": list(self.collections[collection]["fields"].values())})

    @route("GET", "/fields/{collection}/{field}")
    def get_field(self, request: Request, collection: str, field: str) -> Response:
        return self.json({"data": self._field(collection, field)})

    @route("POST", "/fields/{collection}")
    def create_field(self, request: Request, collection: str) -> Response:
        if collection not in self.collections:
            return self.error(403, "FORBIDDEN", forbidden_collection(collection),
                              reason=forbidden_collection(collection))  # fmt: skip
        body = self._payload(request)
        if not isinstance(body, dict):
            return self._invalid('"data" must be an object')
        return self.json({"data": self.add_field(collection, body)})

    @route("PATCH", "/fields/{collection}/{field}")
    def update_field(self, request: Request, collection: str, field: str) -> Response:
        """Meta (specials …) and the unique flag change; a new type is ignored, as Directus does."""
        row = self._field(collection, field)
        body = self._payload(request) or {}
        if isinstance(body.get("meta"), dict):
            row["meta"] = {**(row["meta"] or _field_meta(collection, field)), **body["meta"]}
        schema = body.get("schema") or {}
        if schema.get("is_unique") and not row["schema"]["is_unique"]:
            self._check_unique_column(collection, field)
        if "is_unique" in schema:
            row["schema"]["is_unique"] = bool(schema["is_unique"])
        return self.json({"data": row})

    @route("DELETE", "/fields/{collection}/{field}")
    def delete_field(self, request: Request, collection: str, field: str) -> Response:
        self._field(collection, field)
        del self.collections[collection]["fields"][field]
        for row in self.db[collection].values():
            row.pop(field, None)
        return self.empty(204)

    def _field(self, collection: str, field: str) -> dict[str, Any]:
        row = self.collections.get(collection, {}).get("fields", {}).get(field)
        if row is None:
            raise Abort(self.error(403, "FORBIDDEN", FORBIDDEN_ITEM))
        return row


def required_error(field: str) -> dict[str, Any]:
    extensions = {"field": field, "path": [], "type": "required", "code": "FAILED_VALIDATION"}
    return {"message": f'Validation failed for field "{field}". Value is required.', "extensions": extensions}


def _collection_meta(name: str) -> dict[str, Any]:
    return {
        "collection": name, "icon": None, "note": None, "display_template": None, "hidden": False,
        "singleton": False, "translations": None, "archive_field": None, "archive_app_filter": True,
        "archive_value": None, "unarchive_value": None, "sort_field": None, "accountability": "all",
        "color": None, "item_duplication_fields": None, "sort": None, "group": None, "collapse": "open",
        "preview_url": None, "versioning": False,
    }  # fmt: skip


def _field_meta(collection: str, field: str) -> dict[str, Any]:
    return {
        "collection": collection, "field": field, "special": None, "interface": None, "options": None,
        "display": None, "display_options": None, "readonly": False, "hidden": False, "sort": None,
        "width": "full", "translations": None, "note": None, "conditions": None, "required": False,
        "group": None, "validation": None, "validation_message": None, "searchable": True,
    }  # fmt: skip


def _number(value: Any) -> int | float:
    """A JSON number as Node prints a SQLite REAL: 12.5, 1000 (not 1000.0)."""
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _json_value(value: Any, cast: bool) -> Any:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if cast else value
    return value if cast else json.dumps(value)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None


def _timestamp(value: Any) -> str:
    parsed = _parse_time(value)
    if parsed is None:  # observed: Directus throws on `new Date(value)` and answers 500
        raise Abort(Response(json.dumps({"errors": [{"message": "Invalid time value", "extensions": {
            "code": "INTERNAL_SERVER_ERROR"}}]}), status=500, mimetype="application/json"))  # fmt: skip
    at = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
