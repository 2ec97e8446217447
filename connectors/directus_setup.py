"""`syncengine setup` for Directus: the collections and fields declared in syncengine.vendors.directus,
created where missing, and the token's permissions read from `GET /permissions/me`.

What setup changes is only ever added or widened: a missing collection or field, a missing special
(`cast-boolean` …), a missing unique constraint, the collection's accountability. A field of the wrong type
is recreated only while it holds no value; one holding data, or a unique field with duplicate values, is
reported with what a person must do. Reading the schema needs an admin token (or read on
`directus_collections` and `directus_fields`); with a least-privilege token the check falls back to asking
the items API for every declared field, which tells a missing field but not a wrong type.
"""

from __future__ import annotations

from typing import Any

from syncengine.errors import Permanent
from syncengine.vendors.directus import COLLECTIONS, ITEM_ACTIONS, SYSTEM_GRANTS, Collection, Field

from .directus import SETUP, error_message
from .setup import FORBIDDEN, OK, UPDATED, WRONG, Finding, VendorSetup

ADMIN_FIX = f"{SETUP} once with an admin token as DIRECTUS_TOKEN, then go back to the engine's own token"
POLICY = "the policy of DIRECTUS_TOKEN's user"


class DirectusSetup(VendorSetup):
    system = "directus"

    def __init__(self, connector: Any, settings: Any) -> None:
        super().__init__(connector, settings)
        self.absent: set[str] = set()  # declared collections found missing: their grants are moot yet

    # --- schema --------------------------------------------------------------------------------------------

    def schema(self, apply: bool) -> list[Finding]:
        held = self._held_schema()
        if held is None:
            return self._schema_through_items()
        collections, fields = held
        findings: list[Finding] = []
        for declared in COLLECTIONS.values():
            if declared.name not in collections:
                findings.append(self._missing_collection(declared, apply))
                if not apply:
                    self.absent.add(declared.name)
                continue
            have = fields.get(declared.name, {})
            found = self._collection_meta(declared, collections[declared.name], apply)
            found += [f for field in declared.fields if (f := self._field(declared, field, have, apply))]
            findings += found or [self.finding(f"collection {declared.name}", OK, f"{len(have)} fields")]
        return findings

    def _held_schema(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]] | None:
        """(collection -> its meta, collection -> field -> field) as Directus reports them; None when the
        token may not read the schema."""
        try:
            collections = {c["collection"]: c.get("meta") or {} for c in self._get("/collections")}
            fields: dict[str, dict[str, dict[str, Any]]] = {}
            for row in self._get("/fields"):
                fields.setdefault(row["collection"], {})[row["field"]] = row
        except Permanent as exc:
            if exc.status == 403:
                return None
            raise
        return collections, fields

    def _missing_collection(self, declared: Collection, apply: bool) -> Finding:
        detail = f"missing ({len(declared.fields)} fields, unique {declared.key})"
        return self.fixable(
            f"collection {declared.name}", apply,
            lambda: self.api.request("POST", "/collections", json=declared.body()), detail,
        )  # fmt: skip

    def _collection_meta(self, declared: Collection, meta: dict[str, Any], apply: bool) -> list[Finding]:
        """Accountability (the delete sweep reads the activity log) and the app's archive button."""
        wrong = {k: v for k, v in declared.meta.items() if k != "note" and meta.get(k) != v}
        if not wrong:
            return []
        detail = ", ".join(f"{k} is {meta.get(k)!r}, needs {v!r}" for k, v in wrong.items())
        path = f"/collections/{declared.name}"
        call = lambda: self.api.request("PATCH", path, json={"meta": wrong}, idempotent=True)  # noqa: E731
        return [self.fixable(f"collection {declared.name}", apply, call, detail, status=WRONG, done=UPDATED)]

    def _field(self, declared: Collection, field: Field, have: dict[str, Any], apply: bool) -> Finding | None:
        subject, path = f"field {declared.name}.{field.name}", f"/fields/{declared.name}"
        row = have.get(field.name)
        if row is None:
            detail = f"missing ({_describe(field)})"
            return self.fixable(
                subject, apply, lambda: self.api.request("POST", path, json=field.body()), detail
            )
        if not field.accepts(row.get("type", "")):
            return self._retype(declared, field, row, apply)
        specials = (row.get("meta") or {}).get("special") or []
        lacking = [s for s in field.specials if s not in specials]
        if lacking:
            body = {"meta": {"special": [*specials, *lacking]}}
            call = lambda: self.api.request("PATCH", f"{path}/{field.name}", json=body, idempotent=True)  # noqa: E731
            return self.fixable(subject, apply, call, f"lacks the special {', '.join(lacking)}", status=WRONG,
                                done=UPDATED)  # fmt: skip
        if field.unique and not (row.get("schema") or {}).get("is_unique"):
            return self._make_unique(declared, field, apply)
        return None

    def _retype(self, declared: Collection, field: Field, row: dict[str, Any], apply: bool) -> Finding:
        """A field of the wrong type is made again while it holds nothing; with data, a person decides."""
        subject = f"field {declared.name}.{field.name}"
        detail = f"is {row.get('type')}, needs {_describe(field)}"
        if self._holds_values(declared.name, field.name):
            fix = (f"it holds values: copy them aside, delete the field in Directus, {SETUP}, "
                   "and put the values back")  # fmt: skip
            return self.finding(subject, WRONG, detail + " and holds values", fix)
        path = f"/fields/{declared.name}"

        def remake() -> None:
            self.api.request("DELETE", f"{path}/{field.name}")
            self.api.request("POST", path, json=field.body())

        return self.fixable(subject, apply, remake, detail + " (empty)", status=WRONG, done=UPDATED)

    def _make_unique(self, declared: Collection, field: Field, apply: bool) -> Finding:
        subject = f"field {declared.name}.{field.name}"
        detail = "is not unique (the engine looks items up by it)"
        if not apply:
            fix = f"{SETUP} (if Directus refuses, merge the duplicate values of {field.name} first)"
            return self.finding(subject, WRONG, detail, fix)
        body = {"schema": {"is_unique": True}}
        try:
            self.api.request("PATCH", f"/fields/{declared.name}/{field.name}", json=body, idempotent=True)
        except Permanent as exc:
            if exc.status != 400:
                raise
            fix = f"merge or clear the duplicate values of {field.name} in Directus, then {SETUP}"
            return self.finding(subject, WRONG, f"{detail}; Directus refused: {error_message(exc)}", fix)
        return self.finding(subject, UPDATED, detail)

    def _holds_values(self, collection: str, field: str) -> bool:
        query = {f"filter[{field}][_nnull]": "true", "limit": 1, "fields": "id"}
        return bool(self.api.get_json(f"/items/{collection}", params=query)["data"])

    def _schema_through_items(self) -> list[Finding]:
        """Without read on the schema: ask for every declared field through the items API (a missing
        collection or field is a 403 naming it)."""
        findings = [self.finding("schema", FORBIDDEN, "DIRECTUS_TOKEN may not read /collections and /fields, "
                                 "so field types are not checked", ADMIN_FIX)]  # fmt: skip
        for declared in COLLECTIONS.values():
            names = ",".join(f.name for f in declared.fields)
            try:
                self.api.get_json(f"/items/{declared.name}", params={"limit": 1, "fields": names})
            except Permanent as exc:
                if exc.status != 403:
                    raise
                detail = f"missing, or a field of it, or not readable: {error_message(exc)}"
                findings.append(self.finding(f"collection {declared.name}", WRONG, detail, ADMIN_FIX))
            else:
                findings.append(self.finding(f"collection {declared.name}", OK, "every field is there"))
        return findings

    def _get(self, path: str) -> list[dict[str, Any]]:
        return self.api.get_json(path, params={"limit": -1})["data"]

    # --- permissions -----------------------------------------------------------------------------------

    def permissions(self) -> list[Finding]:
        """Read from `GET /permissions/me` (Directus 11: collection -> action -> access), which any
        signed-in user may call and which changes nothing; an admin token has every access."""
        access = self.api.get_json("/permissions/me")["data"]
        if not isinstance(access, dict):
            return [self.finding("permissions", WRONG, "GET /permissions/me did not answer a map",
                                 "the engine needs Directus 11")]  # fmt: skip
        declared = [c for c in COLLECTIONS.values() if c.name not in self.absent]
        findings = [f for c in declared if (f := self._item_grants(c, access.get(c.name) or {}))]
        findings += self._system_grants(access)
        return findings or [
            self.finding("permissions", OK, "DIRECTUS_TOKEN may make every call the engine makes")
        ]

    def _item_grants(self, declared: Collection, granted: dict[str, Any]) -> Finding | None:
        names = {f.name for f in declared.fields}
        refused, partial = [], []
        for action in ITEM_ACTIONS:
            info = granted.get(action) or {}
            fields = set(info.get("fields") or [])
            if info.get("access") in (None, "none") or ("*" not in fields and not names <= fields):
                refused.append(action)
            elif info.get("access") == "partial":
                partial.append(action)
        subject = f"items of {declared.name}"
        if refused:
            fix = f"grant {', '.join(refused)} on {declared.name} (all fields) to {POLICY}"
            return self.finding(subject, FORBIDDEN, f"{', '.join(refused)} refused", fix)
        if partial:
            detail = f"{', '.join(partial)} limited by a permission filter: items outside it are invisible"
            fix = f"remove the filter from the {', '.join(partial)} permission on {declared.name}"
            return self.finding(subject, WRONG, detail, fix)
        return None

    def _system_grants(self, access: dict[str, Any]) -> list[Finding]:
        """One finding per system collection with what it lacks; Flows are needed by `webhooks install`
        only, and say so."""
        lacking: dict[str, list[Any]] = {}
        for grant in SYSTEM_GRANTS:
            info = (access.get(grant.collection) or {}).get(grant.action) or {}
            if info.get("access") in (None, "none"):
                lacking.setdefault(grant.collection, []).append(grant)
        findings = []
        for collection, grants in lacking.items():
            actions = ", ".join(g.action for g in grants)
            fix = f"grant {actions} on {collection} to {POLICY}"
            if grants[0].optional:
                fix += f" (only `{grants[0].optional}` needs it: or run it once with an admin token)"
            findings.append(self.finding(collection, FORBIDDEN, f"{actions} refused: {grants[0].why}", fix))
        return findings


def _describe(field: Field) -> str:
    """How the field is declared, in a finding: `decimal(15,2)`, `string, unique`."""
    kind = f"{field.type}({field.precision},{field.scale})" if field.precision else field.type
    return ", ".join([kind, *(["unique"] if field.unique else []), *field.specials])
