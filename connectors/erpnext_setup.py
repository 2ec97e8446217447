"""`syncengine setup` for ERPNext: the custom fields of syncengine.vendors.erpnext, created through the
Custom Field doctype; the company, accounts and masters the engine names, checked (and made where that is
safe: an account the settings name but that does not exist yet, the "Products" item group, the "Nos" UOM,
the fallback Item); and every permission the engine's calls need, asked of Frappe itself
(`frappe.client.has_permission`, which changes nothing).

What setup never does: change an existing account, pick an account for the operator, or give the API user a
role. Those stay problems, each with the one thing a person does about it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncengine.errors import Permanent, SyncError
from syncengine.redaction import redact
from syncengine.vendors.erpnext import (
    ACCOUNTS,
    CUSTOM_FIELDS,
    FALLBACK_ITEM,
    ITEM_DEFAULTS,
    ITEM_GROUP,
    PAYMENT_ENTRY_METHOD,
    PERMISSIONS,
    STOCK_UOM,
    AccountSetting,
    CustomField,
)

from .setup import CREATED, ERROR, FORBIDDEN, MISSING, OK, UPDATED, WRONG, Finding, VendorSetup

Doc = dict[str, Any]
PROBE = "syncengine-setup-probe"  # a document name no site has: the probe call answers 404, or 403
ROLE_FIX = "give the API user's role {ptypes} on {doctype} (Role Permissions Manager), or a role that has it"


class ERPNextSetup(VendorSetup):
    system = "erpnext"

    def schema(self, apply: bool) -> list[Finding]:
        """Each check on its own: one ERPNext refuses (a permission) is its line, the others still run."""
        found: list[Doc | None] = [None]

        def company() -> list[Finding]:
            found[0], lines = self._company()
            return lines

        checks: list[tuple[str, Callable[[], list[Finding]]]] = [
            ("company", company),
            ("Custom Field", lambda: self._custom_fields(apply)),
            (f"Item Group {ITEM_GROUP}", lambda: [self._item_group(apply)]),
            (f"UOM {STOCK_UOM}", lambda: [self._uom(apply)]),
            (f"Item {FALLBACK_ITEM}", lambda: [self._fallback_item(apply)]),
            *((spec.variable, lambda spec=spec: [self._account(spec, found[0], apply)]) for spec in ACCOUNTS),
            ("time zone", lambda: [self._time_zone()]),
        ]  # fmt: skip
        return [line for subject, check in checks for line in self._guarded(subject, check)]

    def permissions(self) -> list[Finding]:
        findings = [self._doctype_permissions(doctype, ptypes) for doctype, ptypes in PERMISSIONS]
        findings.append(self._method(PAYMENT_ENTRY_METHOD, dt="Sales Invoice", dn=PROBE))
        return findings

    # --- reading -------------------------------------------------------------------------------------

    def _guarded(self, subject: str, check: Callable[[], list[Finding]]) -> list[Finding]:
        try:
            return check()
        except SyncError as exc:
            status = FORBIDDEN if getattr(exc, "status", None) == 403 else ERROR
            fix = "give the API user read on it (README: Connecting the real systems)"
            return [self.finding(subject, status, redact(str(exc))[:200], fix)]

    def _get(self, doctype: str, name: str) -> Doc | None:
        try:
            return self.api.get(doctype, name)
        except Permanent as exc:
            if exc.status == 404:
                return None
            raise

    def _mend(self, subject: str, apply: bool, change: Callable[[], Any], detail: str, *,
              status: str = MISSING, done: str = CREATED) -> Finding:  # fmt: skip
        """`fixable`, with a refusal of the change (a permission, a validation) as its own line."""
        try:
            return self.fixable(subject, apply, change, detail, status=status, done=done)
        except Permanent as exc:
            fixed = FORBIDDEN if exc.status == 403 else ERROR
            refused = f"{detail}; ERPNext refused: {redact(str(exc))[:200]}"
            return self.finding(subject, fixed, refused, "do it in ERPNext as an administrator")

    # --- the company ---------------------------------------------------------------------------------

    def _company(self) -> tuple[Doc | None, list[Finding]]:
        name = self.api.company
        if not name:
            names = [c["name"] for c in self.api.list_page("Company", fields=("name",), order_by="name asc")]
            fix = (
                f"set ERPNEXT_COMPANY to one of: {', '.join(names)}"
                if names
                else "create a company in ERPNext"
            )
            return None, [self.finding("company", MISSING, "ERPNEXT_COMPANY is not set", fix)]
        company = self._get("Company", name)
        if company is None:
            fix = "set ERPNEXT_COMPANY to the exact name of a company in ERPNext (Accounting > Company)"
            return None, [self.finding(f"company {name}", MISSING, "no such company", fix)]
        detail = f"abbr {company.get('abbr')}, {company.get('default_currency')}"
        return company, [self.finding(f"company {name}", OK, detail)]

    # --- custom fields -------------------------------------------------------------------------------

    def _custom_fields(self, apply: bool) -> list[Finding]:
        names = [field.name for field in CUSTOM_FIELDS]
        rows = self.api.list_page(
            "Custom Field", filters=[["name", "in", names]], limit=len(names),
            fields=("name", "dt", "fieldname", "fieldtype", "unique"), order_by="name asc",
        )  # fmt: skip
        held = {row["name"]: row for row in rows}
        return [self._custom_field(field, held.get(field.name), apply) for field in CUSTOM_FIELDS]

    def _custom_field(self, field: CustomField, held: Doc | None, apply: bool) -> Finding:
        subject = f"Custom Field {field.dt}.{field.fieldname}"
        what = f"{field.fieldtype}{', unique' if field.unique else ''}"
        if held is None:
            return self._mend(subject, apply, lambda: self.api.create("Custom Field", field.document()),
                              f"missing ({what})")  # fmt: skip
        if held.get("fieldtype") != field.fieldtype:
            fix = f"make {field.dt}.{field.fieldname} a {field.fieldtype} field (Customize Form) or delete it"
            return self.finding(subject, WRONG, f"is {held.get('fieldtype')}, not {field.fieldtype}", fix)
        if field.unique and not held.get("unique"):
            change = lambda: self.api.update("Custom Field", field.name, {"unique": 1})  # noqa: E731
            return self._mend(subject, apply, change, "not unique", status=WRONG, done=UPDATED)
        return self.finding(subject, OK, what)

    # --- masters ---------------------------------------------------------------------------------------

    def _item_group(self, apply: bool) -> Finding:
        subject = f"Item Group {ITEM_GROUP}"
        if self._get("Item Group", ITEM_GROUP) is not None:
            return self.finding(subject, OK)
        body = {"item_group_name": ITEM_GROUP, "parent_item_group": "All Item Groups", "is_group": 0}
        return self._mend(subject, apply, lambda: self.api.create("Item Group", body), "missing")

    def _uom(self, apply: bool) -> Finding:
        subject = f"UOM {STOCK_UOM}"
        if self._get("UOM", STOCK_UOM) is not None:
            return self.finding(subject, OK)
        body = {"uom_name": STOCK_UOM, "must_be_whole_number": 1}
        return self._mend(subject, apply, lambda: self.api.create("UOM", body), "missing")

    def _fallback_item(self, apply: bool) -> Finding:
        """The Item an invoice line without a SKU is booked on."""
        subject = f"Item {FALLBACK_ITEM}"
        item = self._get("Item", FALLBACK_ITEM)
        if item is None:
            body = {**ITEM_DEFAULTS, "item_code": FALLBACK_ITEM, "item_name": "Miscellaneous"}
            return self._mend(
                subject, apply, lambda: self.api.create("Item", body), "missing (lines without a SKU)"
            )
        if item.get("disabled"):
            return self.finding(subject, WRONG, "disabled", f"enable Item {FALLBACK_ITEM} in ERPNext")
        return self.finding(subject, OK)

    # --- accounts ----------------------------------------------------------------------------------------

    def _account(self, spec: AccountSetting, company: Doc | None, apply: bool) -> Finding:
        name, kind = self.settings.services["erpnext"].options.get(spec.option), spec.types[0]
        if not name:
            example = f"{spec.example} - {company.get('abbr') if company else '<abbr>'}"
            fix = f"set {spec.variable} to a leaf {kind} account of the company, e.g. '{example}'"
            return self.finding(spec.variable, MISSING, "not set", fix)
        subject = f"{spec.variable} {name}"
        if company is None:
            return self.finding(
                subject, ERROR, "cannot be checked without the company", "fix the company line first"
            )
        account = self._get("Account", name)
        if account is None:
            return self._new_account(subject, name, kind, company, apply)
        problem = _account_problem(account, company["name"], spec.types)
        if problem:
            return self.finding(subject, WRONG, problem[0], problem[1])
        return self.finding(subject, OK, f"{account.get('account_type')} account of {company['name']}")

    def _new_account(self, subject: str, name: str, kind: str, company: Doc, apply: bool) -> Finding:
        """An account the settings name but ERPNext lacks: a leaf under the company's group of its type."""
        suffix = f" - {company['abbr']}"
        if not name.endswith(suffix):
            fix = f"name it '{name}{suffix}': ERPNext ends every account name with the company's abbreviation"
            return self.finding(subject, MISSING, "no such account", fix)
        groups = self.api.list_page(
            "Account", fields=("name",), order_by="creation asc",
            filters=[["company", "=", company["name"]], ["account_type", "=", kind], ["is_group", "=", 1]],
        )  # fmt: skip
        if not groups:
            fix = f"create a {kind} group account in {company['name']}'s Chart of Accounts, then run setup"
            return self.finding(subject, MISSING, f"no such account, and no {kind} group to put it in", fix)
        body = {
            "account_name": name.removesuffix(suffix), "company": company["name"],
            "parent_account": groups[0]["name"], "account_type": kind, "is_group": 0,
        }  # fmt: skip
        detail = f"missing (a leaf {kind} account under {groups[0]['name']})"
        return self._mend(subject, apply, lambda: self.api.create("Account", body), detail)

    def _time_zone(self) -> Finding:
        """Stamps are read in the site's zone; shown, so an operator sees which one."""
        return self.finding("time zone", OK, f"the site's stamps are read as {self.api.site_timezone}")

    # --- permissions ---------------------------------------------------------------------------------------

    def _doctype_permissions(self, doctype: str, ptypes: tuple[str, ...]) -> Finding:
        subject = f"permission {doctype}"
        try:
            denied = [p for p in ptypes if not self._allowed(doctype, p)]
        except SyncError as exc:
            return self.finding(subject, ERROR, redact(str(exc))[:200], "check the API user and ERPNEXT_URL")
        if denied:
            fix = ROLE_FIX.format(ptypes=", ".join(denied), doctype=doctype)
            return self.finding(subject, FORBIDDEN, f"may not {', '.join(denied)}", fix)
        return self.finding(subject, OK, ", ".join(ptypes))

    def _allowed(self, doctype: str, ptype: str) -> bool:
        answer = self.api.call("frappe.client.has_permission", doctype=doctype, docname="", perm_type=ptype)
        return bool((answer or {}).get("has_permission"))

    def _method(self, method: str, **args: Any) -> Finding:
        """A whitelisted method, called on a document that does not exist: 404 says we may call it."""
        subject = f"method {method.rsplit('.', 1)[-1]}"
        try:
            self.api.call(method, **args)
        except Permanent as exc:
            if exc.status == 404:
                return self.finding(subject, OK)
            status = FORBIDDEN if exc.status == 403 else ERROR
            return self.finding(
                subject, status, redact(str(exc))[:200], "give the API user a role that may call it"
            )
        return self.finding(subject, OK)


def _account_problem(account: Doc, company: str, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    """(what is wrong, the fix) for an account that cannot take the engine's rows, or None."""
    if account.get("company") != company:
        return f"belongs to {account.get('company')}", f"use an account of {company}"
    if account.get("is_group"):
        return "is a group account", f"use a leaf account under {account['name']} (setup creates a named one)"
    if account.get("account_type") not in kinds:
        shown = f"a {account['account_type']}" if account.get("account_type") else "an untyped"
        return f"is {shown} account", f"set its Account Type to {kinds[0]} in the Chart of Accounts"
    if account.get("disabled"):
        return "is disabled", "enable it in the Chart of Accounts"
    return None
