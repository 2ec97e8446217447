"""What `syncengine setup` reads and changes in Mautic besides contacts: custom fields, the API user and
their permissions.

Facts, from ``mautic/mautic`` (paths under ``app/bundles/``):

- ``/api/fields/{contact|company}`` (``LeadBundle/Controller/Api/FieldApiController``, a
  ``CommonApiController``): list ``{"total", "fields"}``, one ``{"field": …}``, ``POST …/new`` (201),
  ``PATCH|PUT …/{id}/edit``. A field is ``{id, isPublished, label, alias, type, group, order, object,
  defaultValue, isRequired, isPubliclyUpdatable, isUniqueIdentifier, properties}`` (``LeadField::
  loadApiMetadata``); a boolean needs ``properties.yes`` and ``properties.no`` (``FormFieldHelper``), an
  alias is unique. Listing needs ``lead:fields:view``, changing ``lead:fields:full``.
- ``GET /api/users/self`` answers the calling user, unwrapped, with their role (``isAdmin``);
  ``POST /api/users/{id}/permissioncheck {"permissions": [...]}`` answers ``{permission: bool}`` and checks
  nothing of the caller (``UserBundle/Controller/Api/UserApiController::isGrantedAction``); no permission
  given is 400 "At least one permission must be submitted.".
"""

from __future__ import annotations

import re

from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.mautic.common import USER
from simulators.mautic.fields import Row, api_time
from simulators.mautic.stats import MauticStats

FIELD_TYPES = frozenset({"text", "textarea", "multiselect", "select", "boolean", "lookup", "date", "datetime",
                         "time", "timezone", "email", "html", "number", "tel", "url", "country", "region",
                         "locale"})  # fmt: skip
REQUIRED_PROPERTIES = {"boolean": ("yes", "no"), "select": ("list",), "multiselect": ("list",)}


class MauticAdmin(MauticStats):
    """Mixin: the fields API and the API user's permissions."""

    users: dict[str, str]

    # ---- /api/fields ------------------------------------------------------------------------------

    def _field_defs(self, obj: str) -> list[Row]:
        if obj not in ("contact", "company"):
            raise self.fail(404, f"Requested URL not found: /api/fields/{obj}")
        return self.lead_fields if obj == "contact" else self.company_fields

    def field_json(self, field: Row) -> Row:
        return {
            "isPublished": field.get("isPublished", True), "dateAdded": api_time(field.get("date_added")),
            "id": field["id"], "label": field["label"], "alias": field["alias"], "type": field["type"],
            "group": field["group"], "order": field["id"], "object": field["object"],
            "defaultValue": field.get("defaultValue"), "isRequired": False, "isPubliclyUpdatable": False,
            "isUniqueIdentifier": field["is_unique_identifier"], "properties": field.get("properties") or [],
        }  # fmt: skip

    @route("GET", "/api/fields/{obj}")
    def list_fields(self, request: Request, obj: str) -> Response:
        self.require(request, "lead:fields:view")
        return self.envelope("fields", self._field_defs(obj), request.args, self.field_json)

    @route("GET", "/api/fields/{obj}/{field_id}")
    def get_field(self, request: Request, obj: str, field_id: str) -> Response:
        self.require(request, "lead:fields:view")
        return self.json({"field": self.field_json(self._field(obj, field_id))})

    @route("POST", "/api/fields/{obj}/new")
    def new_field(self, request: Request, obj: str) -> Response:
        self.require(request, "lead:fields:full")
        defs, data = self._field_defs(obj), self.body(request) or {}
        alias = re.sub(r"[^a-z0-9_]", "", str(data.get("alias") or data.get("label") or "").lower())
        self._check_field(defs, data, alias)
        field = {"id": max((f["id"] for f in defs), default=0) + 1, "label": data["label"], "alias": alias,
                 "type": data.get("type", "text"), "group": data.get("group") or "core",
                 "object": "lead" if obj == "contact" else "company", "is_fixed": False,
                 "is_unique_identifier": bool(data.get("isUniqueIdentifier")), "date_added": self.db_now(),
                 "isPublished": data.get("isPublished", True) not in (False, 0, "0"),
                 "properties": data.get("properties") or []}  # fmt: skip
        defs.append(field)
        table = "leads" if obj == "contact" else "companies"
        for row in self.db[table].values():
            row["fields"].setdefault(alias, None)
        return self.json({"field": self.field_json(field)}, status=201)

    @route("PATCH", "/api/fields/{obj}/{field_id}/edit")
    @route("PUT", "/api/fields/{obj}/{field_id}/edit")
    def edit_field(self, request: Request, obj: str, field_id: str) -> Response:
        self.require(request, "lead:fields:full")
        field, data = self._field(obj, field_id), self.body(request) or {}
        for key in ("label", "isPublished", "properties", "defaultValue"):
            if key in data:
                field[key] = data[key]
        # FieldApiController reads the entity's misspelt `isUniqueIdentifer` from either spelling.
        for key in ("isUniqueIdentifier", "isUniqueIdentifer"):
            if key in data:
                field["is_unique_identifier"] = bool(data[key])
        return self.json({"field": self.field_json(field)})

    def _field(self, obj: str, field_id: str) -> Row:
        found = next((f for f in self._field_defs(obj) if str(f["id"]) == field_id), None)
        if found is None:
            raise self.fail(404, "Item was not found.")
        return found

    def _check_field(self, defs: list[Row], data: Row, alias: str) -> None:
        kind = data.get("type", "text")
        if not data.get("label"):
            raise self.fail(400, "label: A value is required.", details={"label": ["A value is required."]})
        if kind not in FIELD_TYPES:
            raise self.fail(
                400, "type: This value is not valid.", details={"type": ["This value is not valid."]}
            )
        properties = data.get("properties") or {}
        for name in REQUIRED_PROPERTIES.get(kind, ()):
            if not (isinstance(properties, dict) and properties.get(name)):
                raise self.fail(400, f"Please enter the {name} value of the {kind} field.")
        if any(f["alias"] == alias for f in defs):
            message = "Another field is already using this alias. Please choose another."
            raise self.fail(400, f"alias: {message}", details={"alias": [message]})

    # ---- /api/users -------------------------------------------------------------------------------

    def _user_json(self, name: str) -> Row:
        admin = name not in self.roles
        role = {"isPublished": True, "id": 1 if admin else 2, "name": "Administrator" if admin else "API",
                "description": None, "isAdmin": admin}  # fmt: skip
        user_id = list(self.users).index(name) + 1
        return {"isPublished": True, "id": user_id, "username": name, "firstName": name, "lastName": "User",
                "email": f"{name}@example.test", "role": role}  # fmt: skip

    @route("GET", "/api/users/self")
    def users_self(self, request: Request) -> Response:
        name = request.environ.get(USER) or next(iter(self.users))  # an OAuth2 client acts as the first user
        return self.json(self._user_json(name))

    @route("POST", "/api/users/{user_id}/permissioncheck")
    def permission_check(self, request: Request, user_id: str) -> Response:
        names = list(self.users)
        if not user_id.isdigit() or not 0 < int(user_id) <= len(names):
            raise self.fail(404, "Item was not found.")
        asked = (self.body(request) or {}).get("permissions")
        if not asked:
            raise self.fail(400, "At least one permission must be submitted.")
        asked = asked if isinstance(asked, list) else [asked]
        user = names[int(user_id) - 1]  # the question is about that user, whoever asks
        return self.json({permission: self.granted(user, permission) for permission in asked})
