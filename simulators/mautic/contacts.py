"""Contacts and companies: list/search/where, create with dedupe on unique identifiers, edit, delete.

``POST /contacts/new`` answers 201 for a new contact and 200 when it matched an existing one on a unique
identifier (email by default), as ``LeadApiController::getNewEntity`` does. Saving an identified contact fires
``mautic.lead_post_save_new`` the first time it becomes identified and ``mautic.lead_post_save_update`` on
every later save, changed or not (``WebhookSubscriber::onLeadNewUpdate``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.mautic.fields import IDENTIFYING, LEAD_COLUMNS, Row, company_json, contact_json, lead_column
from simulators.mautic.listing import BadQuery, matches_where, nested, order, search_contact
from simulators.mautic.webhooks import MauticWebhooks

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COMPANY_COLUMNS = ("id", "date_added", "date_modified", "is_published")


class MauticContacts(MauticWebhooks):
    """Mixin: ``/api/contacts`` and ``/api/companies``; field definitions live in ``self.lead_fields``."""

    lead_fields: list[Row]
    company_fields: list[Row]
    write_audit_log: Callable[[Any, str, Row], None]  # simulators.mautic.stats

    # ---- contacts ---------------------------------------------------------------------------------

    def contact(self, row: Row, minimal: bool = False) -> Row:
        return contact_json(row, self.lead_fields, minimal)

    def _aliases(self) -> set[str]:
        return {f["alias"] for f in self.lead_fields}

    def _lead_col_ok(self, column: str) -> bool:
        return column in LEAD_COLUMNS or column in self._aliases()

    @route("GET", "/api/contacts")
    def list_contacts(self, request: Request) -> Response:
        args = request.args
        try:
            where = nested(args, "where")
            rows = [
                r
                for r in self.db["leads"].values()
                if search_contact(r, args.get("search", ""))
                and matches_where(r, where, lead_column, self._lead_col_ok)
            ]
            order_by = (args.get("orderBy") or "id").removeprefix("l.")
            if not self._lead_col_ok(order_by):
                raise BadQuery(f"Invalid orderBy column: {order_by}")
            rows = order(rows, order_by, args.get("orderByDir", "ASC"), lead_column)
        except BadQuery as exc:
            raise self.fail(400, str(exc)) from None
        minimal = args.get("minimal", "") not in ("", "0", "false")
        return self.envelope("contacts", rows, args, lambda r: self.contact(r, minimal))

    @route("GET", "/api/contacts/{contact_id}")
    def get_contact(self, request: Request, contact_id: str) -> Response:
        return self.json({"contact": self.contact(self.entity("leads", contact_id))})

    @route("POST", "/api/contacts/new")
    def new_contact(self, request: Request) -> Response:
        data = self._input(request)
        existing = self.find_duplicate(data)
        row = self.save_contact(existing, data)
        return self.json({"contact": self.contact(row)}, status=200 if existing else 201)

    @route("POST", "/api/contacts/batch/new")
    def batch_new(self, request: Request) -> Response:
        items = self.body(request)
        if not isinstance(items, list) or len(items) > 200:
            raise self.fail(400, "A batch is a JSON array of at most 200 contacts (api_batch_max_limit)")
        contacts, codes = [], []
        for item in items:
            existing = self.find_duplicate(item)
            contacts.append(self.contact(self.save_contact(existing, item)))
            codes.append(200 if existing else 201)
        return self.json({"contacts": contacts, "statusCodes": codes}, status=201)

    @route("PATCH", "/api/contacts/{contact_id}/edit")
    def patch_contact(self, request: Request, contact_id: str) -> Response:
        row = self.save_contact(self.entity("leads", contact_id), self._input(request))
        return self.json({"contact": self.contact(row)})

    @route("PUT", "/api/contacts/{contact_id}/edit")
    def put_contact(self, request: Request, contact_id: str) -> Response:
        """PUT replaces every field (absent ones are cleared), or creates a contact when the id is unknown."""
        row = self.db["leads"].get(int(contact_id)) if contact_id.isdigit() else None
        saved = self.save_contact(row, self._input(request), replace=True)
        return self.json({"contact": self.contact(saved)}, status=200 if row else 201)

    @route("DELETE", "/api/contacts/{contact_id}/delete")
    def delete_contact(self, request: Request, contact_id: str) -> Response:
        row = self.entity("leads", contact_id)
        del self.db["leads"][row["id"]]
        shown = self.contact(row)
        self.write_audit_log(row["id"], "delete", {"name": row["fields"].get("email") or str(row["id"])})
        self.fire("mautic.lead_post_delete", id=row["id"], contact=shown)
        return self.json({"contact": shown})

    def _input(self, request: Request) -> Row:
        data = self.body(request)
        if data is None:
            data = request.form.to_dict()
        if not isinstance(data, dict):
            raise self.fail(400, "Request body must be a JSON object")
        return data

    def find_duplicate(self, data: Row) -> Row | None:
        """``checkForDuplicateContact``: a contact equal on any unique identifier field that was given."""
        keys = [f["alias"] for f in self.lead_fields if f["is_unique_identifier"] and data.get(f["alias"])]
        for row in sorted(self.db["leads"].values(), key=lambda r: r["id"]):
            if any(str(row["fields"].get(k) or "").lower() == str(data[k]).lower() for k in keys):
                return row
        return None

    def save_contact(self, row: Row | None, data: Row, replace: bool = False, seeding: bool = False) -> Row:
        """Create or update; blank values do not overwrite unless ``overwriteWithBlank``; fires the events."""
        now = self.db_now()
        email = data.get("email")
        if email and not _EMAIL.match(str(email)):
            raise self.fail(
                400, "email: A valid email is required.", details={"email": ["A valid email is required."]}
            )
        is_new = row is None
        if row is None:
            row = {
                "id": self.db.next_id("leads"),
                "date_added": now,
                "date_modified": now,
                "date_identified": None,
                "last_active": None,
                "points": 0,
                "tags": [],
                "is_published": True,
                "dnc": [],
                "fields": {a: None for a in self._aliases()},
            }
        else:
            row["date_modified"] = now
        before = dict(row["fields"])
        blank_ok = replace or is_new or bool(data.get("overwriteWithBlank"))
        values = {k: v for k, v in data.items() if k in self._aliases()}
        if replace:
            values = {a: values.get(a) for a in self._aliases()}
        for alias, value in values.items():
            if value in ("", None) and not blank_ok:
                continue
            row["fields"][alias] = None if value == "" else value
        self._apply_extras(row, data)
        if seeding:
            row.update({k: data[k] for k in ("date_added", "date_modified", "date_identified") if k in data})
        just_identified = row["date_identified"] is None and any(row["fields"].get(f) for f in IDENTIFYING)
        if just_identified:
            row["date_identified"] = row["date_added"] if seeding else now
        self.db["leads"][row["id"]] = row
        if not seeding:
            # Lead::$changes, as LeadSubscriber::onLeadPostSave logs it: each changed field as [old, new]
            changed = {a: [before.get(a), v] for a, v in row["fields"].items() if before.get(a) != v}
            if changed:
                self.write_audit_log(row["id"], "create" if is_new else "update", {"fields": changed})
        if not seeding and row["date_identified"] is not None:
            event = "mautic.lead_post_save_new" if just_identified else "mautic.lead_post_save_update"
            self.fire(event, contact=self.contact(row))
        return row

    @staticmethod
    def _apply_extras(row: Row, data: Row) -> None:
        tags = data.get("tags")
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        for tag in tags or []:
            if tag.startswith("-"):
                row["tags"] = [t for t in row["tags"] if t != tag[1:]]
            elif tag not in row["tags"]:
                row["tags"].append(tag)
        if "points" in data:
            row["points"] = int(data["points"] or 0)
        if data.get("lastActive"):
            row["last_active"] = str(data["lastActive"]).replace("T", " ")[:19]

    # ---- companies --------------------------------------------------------------------------------

    def company(self, row: Row) -> Row:
        return company_json(row, self.company_fields)

    def _company_col_ok(self, column: str) -> bool:
        return column in COMPANY_COLUMNS or any(f["alias"] == column for f in self.company_fields)

    @staticmethod
    def _company_column(row: Row, column: str) -> Any:
        column = column.removeprefix("comp.")
        return row.get(column) if column in COMPANY_COLUMNS else row["fields"].get(column)

    @route("GET", "/api/companies")
    def list_companies(self, request: Request) -> Response:
        args = request.args
        needle = (args.get("search") or "").lower()
        try:
            where = nested(args, "where")
            rows = [
                r
                for r in self.db["companies"].values()
                if needle in str(r["fields"].get("companyname") or "").lower()
                and matches_where(r, where, self._company_column, self._company_col_ok)
            ]
            order_by = (args.get("orderBy") or "id").removeprefix("comp.")
            if not self._company_col_ok(order_by):
                raise BadQuery(f"Invalid orderBy column: {order_by}")
            rows = order(rows, order_by, args.get("orderByDir", "ASC"), self._company_column)
        except BadQuery as exc:
            raise self.fail(400, str(exc)) from None
        return self.envelope("companies", rows, args, self.company)

    @route("GET", "/api/companies/{company_id}")
    def get_company(self, request: Request, company_id: str) -> Response:
        return self.json({"company": self.company(self.entity("companies", company_id))})

    @route("POST", "/api/companies/new")
    def new_company(self, request: Request) -> Response:
        """Companies are identified by name (``IdentifyCompanyHelper``): a known name answers 200."""
        data = self._input(request)
        if not data.get("companyname"):
            raise self.fail(
                400, "companyname: A value is required.", details={"companyname": ["A value is required."]}
            )
        name = str(data["companyname"]).lower()
        existing = next(
            (
                c
                for c in self.db["companies"].values()
                if str(c["fields"].get("companyname") or "").lower() == name
            ),
            None,
        )
        row = self.save_company(existing, data)
        return self.json({"company": self.company(row)}, status=200 if existing else 201)

    @route("PATCH", "/api/companies/{company_id}/edit")
    @route("PUT", "/api/companies/{company_id}/edit")
    def edit_company(self, request: Request, company_id: str) -> Response:
        row = self.save_company(self.entity("companies", company_id), self._input(request))
        return self.json({"company": self.company(row)})

    @route("DELETE", "/api/companies/{company_id}/delete")
    def delete_company(self, request: Request, company_id: str) -> Response:
        row = self.entity("companies", company_id)
        del self.db["companies"][row["id"]]
        self.fire("mautic.company_post_delete", id=row["id"], company=self.company(row))
        return self.json({"company": self.company(row)})

    @route("POST", "/api/companies/{company_id}/contact/{contact_id}/add")
    def add_company_contact(self, request: Request, company_id: str, contact_id: str) -> Response:
        company, lead = self.entity("companies", company_id), self.entity("leads", contact_id)
        self.db["company_leads"][(company["id"], lead["id"])] = True
        if not lead["fields"].get("company"):
            lead["fields"]["company"] = company["fields"].get("companyname")
            lead["date_modified"] = self.db_now()
        return self.json({"success": True})

    @route("POST", "/api/companies/{company_id}/contact/{contact_id}/remove")
    def remove_company_contact(self, request: Request, company_id: str, contact_id: str) -> Response:
        company, lead = self.entity("companies", company_id), self.entity("leads", contact_id)
        self.db["company_leads"].pop((company["id"], lead["id"]), None)
        return self.json({"success": True})

    def save_company(self, row: Row | None, data: Row, fire: bool = True) -> Row:
        now = self.db_now()
        if row is None:
            row = {
                "id": self.db.next_id("companies"),
                "date_added": now,
                "date_modified": now,
                "is_published": True,
                "fields": {f["alias"]: None for f in self.company_fields},
            }
        else:
            row["date_modified"] = now
        for field in self.company_fields:
            if data.get(field["alias"]) not in (None, ""):
                row["fields"][field["alias"]] = data[field["alias"]]
        self.db["companies"][row["id"]] = row
        if fire:
            self.fire("mautic.company_post_save", company=self.company(row))
        return row
