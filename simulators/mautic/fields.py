"""Mautic's contact and company shapes: fields grouped by ``fields.<group>.<alias>`` plus ``fields.all``.

Rows are kept as Mautic's tables hold them (``leads`` columns such as ``date_modified`` in UTC
``Y-m-d H:i:s``), so ``where[][col]`` and ``orderBy`` use DB column names as they do against DBAL; the API
prints dates as ISO 8601 with ``+00:00``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]

_LEAD_FIELDS = (  # alias, label, type, group, unique identifier
    ("title", "Title", "lookup", "core", False),
    ("firstname", "First Name", "text", "core", False),
    ("lastname", "Last Name", "text", "core", False),
    ("company", "Primary company", "text", "core", False),
    ("position", "Position", "text", "core", False),
    ("email", "Email", "email", "core", True),
    ("mobile", "Mobile", "tel", "core", False),
    ("phone", "Phone", "tel", "core", False),
    ("fax", "Fax", "tel", "core", False),
    ("address1", "Address Line 1", "text", "core", False),
    ("address2", "Address Line 2", "text", "core", False),
    ("city", "City", "text", "core", False),
    ("state", "State", "region", "core", False),
    ("zipcode", "Zip Code", "text", "core", False),
    ("country", "Country", "country", "core", False),
    ("preferred_locale", "Preferred Locale", "locale", "core", False),
    ("timezone", "Preferred Timezone", "timezone", "core", False),
    ("website", "Website", "url", "core", False),
    ("facebook", "Facebook", "text", "social", False),
    ("instagram", "Instagram", "text", "social", False),
    ("linkedin", "LinkedIn", "text", "social", False),
    ("twitter", "Twitter", "text", "social", False),
)
_COMPANY_FIELDS = (
    ("companyname", "Company Name", "text", "core", True),
    ("companyemail", "Company Email", "email", "core", False),
    ("companyaddress1", "Address 1", "text", "core", False),
    ("companyaddress2", "Address 2", "text", "core", False),
    ("companyphone", "Phone", "tel", "core", False),
    ("companycity", "City", "text", "core", False),
    ("companystate", "State", "region", "core", False),
    ("companyzipcode", "Zip Code", "text", "core", False),
    ("companycountry", "Country", "country", "core", False),
    ("companywebsite", "Website", "url", "core", False),
    ("companyindustry", "Industry", "select", "professional", False),
    ("companydescription", "Description", "text", "professional", False),
)
LEAD_GROUPS = ("core", "social", "personal", "professional")
COMPANY_GROUPS = ("core", "professional", "other")
# Columns of the ``leads`` table besides one column per field alias.
LEAD_COLUMNS = (
    "id",
    "owner_id",
    "stage_id",
    "is_published",
    "date_added",
    "date_modified",
    "date_identified",
    "created_by",
    "modified_by",
    "points",
    "last_active",
    "preferred_profile_image",
)
IDENTIFYING = ("firstname", "lastname", "email", "company")  # Lead::isAnonymous() looks at these


def field_defs(builtin: tuple[tuple[str, str, str, str, bool], ...], obj: str) -> list[Row]:
    return [
        {
            "id": i,
            "alias": a,
            "label": lb,
            "type": t,
            "group": g,
            "object": obj,
            "is_fixed": True,
            "is_unique_identifier": u,
        }
        for i, (a, lb, t, g, u) in enumerate(builtin, 1)
    ]


def default_lead_fields() -> list[Row]:
    return field_defs(_LEAD_FIELDS, "lead")


def default_company_fields() -> list[Row]:
    return field_defs(_COMPANY_FIELDS, "company")


def db_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def api_time(value: str | None) -> str | None:
    """``2024-05-01 12:00:00`` (DB, UTC) → ``2024-05-01T12:00:00+00:00`` (API)."""
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()


def php_json(data: Any) -> bytes:
    """``json_encode`` defaults: compact, ``\\/`` for slashes, ``\\uXXXX`` for non-ASCII."""
    return json.dumps(data, separators=(",", ":")).replace("/", "\\/").encode()


def _grouped(values: Row, defs: list[Row], groups: tuple[str, ...], row_id: int) -> Row:
    out: dict[str, Any] = {g: {} for g in groups}
    everything: Row = {"id": row_id}
    for f in defs:
        value = values.get(f["alias"])
        out.setdefault(f["group"], {})[f["alias"]] = {
            "id": str(f["id"]),
            "label": f["label"],
            "alias": f["alias"],
            "type": f["type"],
            "group": f["group"],
            "object": f["object"],
            "is_fixed": "1" if f["is_fixed"] else "0",
            "properties": "a:0:{}",
            "value": value,
            "normalizedValue": "" if value is None else value,
        }
        everything[f["alias"]] = value
    grouped = {g: (v or []) for g, v in out.items()}  # an empty PHP array encodes as []
    grouped["all"] = everything
    return grouped


def _audit(row: Row) -> Row:
    return {
        "isPublished": row.get("is_published", True),
        "dateAdded": api_time(row["date_added"]),
        "dateModified": api_time(row.get("date_modified")),
        "createdBy": 1,
        "createdByUser": "Admin User",
        "modifiedBy": 1 if row.get("date_modified") else None,
        "modifiedByUser": "Admin User" if row.get("date_modified") else None,
    }


def contact_json(row: Row, defs: list[Row], minimal: bool = False) -> Row:
    out = {
        **_audit(row),
        "id": row["id"],
        "points": row.get("points", 0),
        "color": None,
        "fields": _grouped(row["fields"], defs, LEAD_GROUPS, row["id"]),
        "lastActive": api_time(row.get("last_active")),
        "owner": None,
        "tags": [{"id": i, "tag": t} for i, t in enumerate(row.get("tags", []), 1)],
        "stage": None,
        "dateIdentified": api_time(row.get("date_identified")),
        "preferredProfileImage": "gravatar",
    }
    if not minimal:  # "minimal: return only array of entities without additional lists in it"
        out.update(ipAddresses=[], utmtags=[], doNotContact=row.get("dnc", []), frequencyRules=[])
    return out


def company_json(row: Row, defs: list[Row]) -> Row:
    return {
        **_audit(row),
        "id": row["id"],
        "fields": _grouped(row["fields"], defs, COMPANY_GROUPS, row["id"]),
    }


def lead_column(row: Row, column: str) -> Any:
    """A ``leads`` column value: fixed columns first, else the field of that alias."""
    column = column.removeprefix("l.")
    if column in LEAD_COLUMNS:
        return row.get(column)
    return row["fields"].get(column)
