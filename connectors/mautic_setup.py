"""`syncengine setup` for Mautic: the contact fields and the two emails of `syncengine.vendors.mautic`, and
what the API user may do, through Mautic's own API.

Fields are listed with `GET /api/fields/contact`; a missing custom field is created (`POST
/api/fields/contact/new`), an unpublished one published. Mautic cannot change a field's type, so a
`marketing_consent` of another type is left for a person. The emails are read by id; when the configured
one (or, unset, the default) does not exist, setup creates a starter template named for its purpose (or
finds the one it created before) and says which id to set when it is not the default. An email is usable
when it is published, a template email (the kind sent to one contact at a time), and uses at least one of
our tokens.

Permissions are checked without a visible trace: the reads the engine makes are tried (contacts, their
activity, the audit log the delete sweep reads, served to administrators only), and the writes are asked
of `POST /api/users/{id}/permissioncheck` for the API user (`GET /api/users/self`), which needs no
permission of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from syncengine.errors import Permanent
from syncengine.vendors.mautic import (
    CORE_FIELDS,
    CUSTOM_FIELDS,
    EMAILS,
    PERMISSIONS,
    ContactField,
    TemplateEmail,
)

from .setup import CREATED, FORBIDDEN, OK, UPDATED, WRONG, Finding, VendorSetup

PAGE = 100
ROLES = "Settings > Roles"


class MauticSetup(VendorSetup):
    system = "mautic"

    def schema(self, apply: bool) -> list[Finding]:
        fields = {f["alias"]: f for f in self._rows("fields/contact", "fields")}
        findings = [self._core(fields, apply)]
        findings += [self._custom(field, fields.get(field.alias), apply) for field in CUSTOM_FIELDS]
        return findings + [self._email(email, apply) for email in EMAILS]

    def permissions(self) -> list[Finding]:
        findings = [
            self._read("read contacts", "/api/contacts", {"limit": 1, "minimal": 1}),
            self._read(
                "read contact activity (opens, form submissions)", "/api/contacts/activity", {"limit": 1}
            ),
            self._audit_log(),
        ]
        return [*findings, self._granted()]

    # --- fields --------------------------------------------------------------------------------------

    def _core(self, fields: dict[str, dict[str, Any]], apply: bool) -> Finding:
        subject = "contact fields " + ", ".join(CORE_FIELDS)
        missing = [alias for alias in CORE_FIELDS if alias not in fields]
        if missing:
            fix = "create them as text fields in Mautic (Settings > Custom Fields) with these aliases"
            return self.finding(subject, WRONG, "missing: " + ", ".join(missing), fix)
        hidden = [fields[alias] for alias in CORE_FIELDS if not _published(fields[alias])]
        if not hidden:
            return self.finding(subject, OK)
        names = ", ".join(f["alias"] for f in hidden)
        publish = lambda: [self._publish(f) for f in hidden]  # noqa: E731
        return self.fixable(subject, apply, publish, f"unpublished: {names}", status=WRONG, done=UPDATED)

    def _custom(self, field: ContactField, have: dict[str, Any] | None, apply: bool) -> Finding:
        subject = f"contact field {field.alias} ({field.type})"
        if have is None:
            create = lambda: self.api.request("POST", "/api/fields/contact/new", json=field.body())  # noqa: E731
            return self.fixable(subject, apply, create, "the engine reads the contact's consent from it")
        if have.get("type") != field.type:
            fix = f"Mautic cannot change a type: delete {field.alias} (Settings > Custom Fields), run setup"
            return self.finding(subject, WRONG, f"is a {have.get('type')} field", fix)
        if not _published(have):
            return self.fixable(
                subject, apply, lambda: self._publish(have), "unpublished", status=WRONG, done=UPDATED
            )
        return self.finding(subject, OK)

    def _publish(self, field: dict[str, Any]) -> None:
        self.api.request("PATCH", f"/api/fields/contact/{field['id']}/edit", json={"isPublished": True},
                         idempotent=True)  # fmt: skip

    # --- emails --------------------------------------------------------------------------------------

    def _email(self, email: TemplateEmail, apply: bool) -> Finding:
        email_id = email.email_id(self.settings.services["mautic"].options)
        subject = f"email {email_id} ({email.variable})"
        found = self._get_email(email_id)
        if found is not None:
            wrong = _unusable(found, email)
            fix = (
                f"correct email {email_id} in Mautic (Channels > Emails), or set {email.variable} to another"
            )
            return self.finding(subject, WRONG, "; ".join(wrong), fix) if wrong else self.finding(subject, OK)
        if email.option in self.settings.services["mautic"].options:
            fix = f"set {email.variable} to a template email's id, or unset it and run `syncengine setup`"
            return self.finding(subject, WRONG, f"email {email_id} does not exist", fix)
        return self._starter(email, email_id, apply)

    def _starter(self, email: TemplateEmail, email_id: int, apply: bool) -> Finding:
        """No email at the default id and no setting: ours by name, created when it is not there yet."""
        subject = f"email {email_id} ({email.variable})"
        # Listed whole rather than searched: Mautic reads "word:" in a search as a command.
        ours = next((e for e in self._rows("emails", "emails") if e.get("name") == email.name), None)
        if ours is None and not apply:
            detail = f"no email {email_id}; setup creates the template {email.name!r}"
            return self.finding(subject, "missing", detail, "run `syncengine setup --system mautic`")
        status = OK
        if ours is None:
            ours = self.api.request("POST", "/api/emails/new", json=email.body()).json()["email"]
            status = CREATED
        if int(ours["id"]) != email_id:
            detail = f"the template {email.name!r} is email {ours['id']}"
            return self.finding(subject, WRONG, detail, f"set {email.variable}={ours['id']}")
        return self.finding(
            subject, status, f"{email.name!r}: edit its text in Mautic" if status == CREATED else ""
        )

    def _get_email(self, email_id: int) -> dict[str, Any] | None:
        try:
            return self.api.get_json(f"/api/emails/{email_id}")["email"]
        except Permanent as exc:
            if exc.status == 404:
                return None
            raise

    # --- permissions ---------------------------------------------------------------------------------

    def _read(self, what: str, path: str, params: dict[str, Any]) -> Finding:
        return self._tried(what, lambda: self.api.get_json(path, params=params))

    def _audit_log(self) -> Finding:
        """The delete sweep's source: Mautic lists its tables instead of the rows to a non-administrator."""
        what = "read the audit log (contact deletes whose webhook was lost)"
        body = self.api.get_json("/api/stats/audit_log", params={"limit": 1})
        if "stats" in body:
            return self.finding(what, OK)
        fix = "make the API user an administrator (or those deletes are seen by webhook only)"
        return self.finding(what, FORBIDDEN, "Mautic serves its audit log to administrators only", fix)

    def _tried(self, what: str, call: Callable[[], Any]) -> Finding:
        try:
            call()
        except Permanent as exc:
            if exc.status != 403:
                raise
            return self.finding(what, FORBIDDEN, "refused", f"grant it to the API user's role ({ROLES})")
        return self.finding(what, OK)

    def _granted(self) -> Finding:
        me = self.api.get_json("/api/users/self")
        who = f"API user {me.get('username')}"
        if (me.get("role") or {}).get("isAdmin"):
            return self.finding("permissions", OK, f"{who} is an administrator")
        path, asked = f"/api/users/{me['id']}/permissioncheck", {"permissions": list(PERMISSIONS)}
        try:
            answer = self.api.request("POST", path, json=asked, idempotent=True).json()
        except Permanent as exc:  # a Mautic that will not say: the operator checks the role by hand
            fix = f"check by hand that its role grants {', '.join(PERMISSIONS)} ({ROLES})"
            return self.finding(
                "permissions", "error", f"Mautic did not answer the check for {who}: {exc}", fix
            )
        refused = [name for name in PERMISSIONS if not answer.get(name)]
        if not refused:
            return self.finding("permissions", OK, f"{who} may do all the engine does")
        detail = "; ".join(f"{name} ({PERMISSIONS[name]})" for name in refused)
        role = (me.get("role") or {}).get("name") or "its role"
        return self.finding(
            "permissions", FORBIDDEN, f"{who} lacks {detail}", f"grant them to {role} ({ROLES})"
        )

    # --- listing -------------------------------------------------------------------------------------

    def _rows(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        """Every row of a Mautic list, keyed by id or not, page by page until `total`."""
        start = 0
        while True:
            body = self.api.get_json(f"/api/{path}", params={"start": start, "limit": PAGE})
            rows = body.get(key) or []
            rows = list(rows.values()) if isinstance(rows, dict) else list(rows)
            yield from rows
            start += len(rows)
            if len(rows) < PAGE or start >= int(body.get("total") or 0):
                return


def _published(row: dict[str, Any]) -> bool:
    return row.get("isPublished", True) not in (False, 0, "0")


def _unusable(found: dict[str, Any], email: TemplateEmail) -> list[str]:
    """Why an email cannot serve as this template: unpublished, a segment email, or none of our tokens."""
    wrong = []
    if not _published(found):
        wrong.append("unpublished")
    if found.get("emailType") not in (None, "template"):
        wrong.append(f"a {found.get('emailType')} (segment) email, not a template email")
    text = " ".join(str(found.get(k) or "") for k in ("subject", "customHtml", "plainText"))
    text += json.dumps(found.get("content") or "")
    if not any(f"{{{token}}}" in text for token in email.tokens):
        wrong.append("uses none of the tokens " + ", ".join(f"{{{t}}}" for t in email.tokens))
    return wrong
