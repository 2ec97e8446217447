"""Frappe's document lifecycle over the simulator store: naming, validation, save, submit, cancel, delete.

Docs are stored complete (every column, ``None`` when unset) because ``Document.as_dict()`` answers that way.
Webhooks are queued while a request runs and sent only if it succeeds, like Frappe's
``enqueue_after_commit``; the events each step fires follow ``Document.insert``, ``save`` and
``run_post_save_methods``.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from datetime import UTC, date, datetime
from typing import Any

from simulators.base import Clock, Simulator
from simulators.erpnext.doctypes import CHILD_STANDARD, CHILDREN, DOCTYPES, DocType
from simulators.erpnext.errors import FrappeError, invalid, not_found

Doc = dict[str, Any]
MASK = "*"
_NOT_SETTABLE = ("name", "doctype", "owner", "creation", "modified", "modified_by", "idx")  # set by Frappe


class FrappeBase(Simulator):
    """Documents, naming and business rules; routes live in ``simulator.py``, webhooks in ``webhooks.py``."""

    vendor = "erpnext"
    company = "My Co"
    abbr = "MC"

    def __init__(self, clock: Clock | None = None, custom_fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(clock)
        self.custom_fields: dict[str, tuple[str, ...]] = {
            k: tuple(v) for k, v in (custom_fields or {}).items()
        }
        self.bank_account = f"Bank - {self.abbr}"
        self._outbox: list[tuple[str, Any, dict[str, Any] | None]] = []
        self._fired: set[tuple[str, str]] = set()

    # ---- reading ----------------------------------------------------------------------------------

    def meta(self, doctype: str) -> DocType:
        meta = DOCTYPES.get(doctype)
        if meta is None:
            raise FrappeError("DoesNotExistError", f"DocType {doctype} not found")
        return meta

    def known(self, doctype: str) -> frozenset[str]:
        return self.meta(doctype).known(self.custom_fields.get(doctype, ()))

    def get_doc(self, doctype: str, name: str) -> Doc:
        self.meta(doctype)
        doc = self.db[doctype].get(name)
        if doc is None:
            raise not_found(doctype, name)
        return doc

    def as_dict(self, doc: Doc) -> Doc:
        """A copy as the API shows it (Password fields already hold their mask, see ``_keep_secrets``)."""
        return copy.deepcopy(doc)

    def now_str(self) -> str:
        """Frappe's naive ``YYYY-MM-DD HH:MM:SS.ffffff`` in the site time zone (UTC here)."""
        return datetime.fromtimestamp(self.now(), tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def today(self) -> date:
        return datetime.fromtimestamp(self.now(), tz=UTC).date()

    def _secret(self, doc: Doc, field: str) -> str | None:
        return self.db["__Auth"].get((doc["doctype"], doc["name"], field))

    # ---- building ---------------------------------------------------------------------------------

    def _child(self, doctype: str, parent: Doc, table: str, idx: int, row: Any, user: str) -> Doc:
        if not isinstance(row, dict):
            raise invalid(f"Row #{idx}: {table} rows must be objects")
        cols = CHILDREN[doctype]
        now = parent["modified"]
        base = {c: None for c in (*CHILD_STANDARD, *cols)}
        base.update({k: v for k, v in row.items() if k in cols or k == "name"})
        base.update(
            doctype=doctype,
            idx=idx,
            parent=parent["name"],
            parenttype=parent["doctype"],
            parentfield=table,
            docstatus=parent["docstatus"],
            owner=user,
            modified_by=user,
            creation=row.get("creation") or now,
            modified=now,
        )
        base["name"] = base["name"] or secrets.token_hex(5)
        return base

    def _apply(self, doc: Doc, data: Doc, user: str) -> None:
        """``doc.update(data)``: known columns only, child tables replaced wholesale, secrets set apart."""
        meta = self.meta(doc["doctype"])
        known = self.known(doc["doctype"])
        for key, value in data.items():
            if key in meta.children:
                rows = value if isinstance(value, list) else []
                doc[key] = [
                    self._child(meta.children[key], doc, key, i, r, user) for i, r in enumerate(rows, 1)
                ]
            elif key in meta.secrets:
                if value and set(str(value)) != {MASK}:
                    doc["__pending_secret_" + key] = value
            elif key in known and key not in _NOT_SETTABLE:
                doc[key] = value

    def _name(self, doc: Doc, meta: DocType, explicit: str | None) -> str:
        store = self.db[meta.name]
        if explicit:
            name = explicit
        elif meta.naming == "customer":
            name = self._customer_name(doc)
        elif meta.naming.startswith("field:"):
            name = str(doc.get(meta.naming[6:]) or "")
        elif meta.naming.startswith("series:"):
            name = self._series(meta.naming[7:])
        elif meta.naming == "contact":
            name = self._contact_name(doc)
        else:
            name = secrets.token_hex(5)
        if not name:
            raise FrappeError("MandatoryError", f"Error: Value missing for {meta.name}: {meta.naming[6:]}")
        if name in store:
            raise FrappeError("DuplicateEntryError", f"{meta.name} {name} already exists", "Duplicate Name")
        return name

    def _customer_name(self, doc: Doc) -> str:
        """ERPNext ``Customer.get_customer_name``: a taken name gets `` - <n>`` instead of an error."""
        base = str(doc.get("customer_name") or "")
        if base not in self.db["Customer"]:
            return base
        pattern = re.compile(re.escape(base) + r" - (\d+)$")
        taken = [int(m.group(1)) for n in self.db["Customer"] if (m := pattern.match(n))]
        return f"{base} - {max(taken, default=0) + 1}"

    def _contact_name(self, doc: Doc) -> str:
        name = " ".join(p for p in (doc.get("first_name"), doc.get("last_name")) if p).strip()
        links = doc.get("links") or []
        if links and links[0].get("link_name"):
            name = f"{name}-{links[0]['link_name']}"
        candidate, n = name, 0
        while candidate in self.db["Contact"]:
            n += 1
            candidate = f"{name}-{n}"
        return candidate

    def _series(self, pattern: str) -> str:
        prefix = pattern.replace(".YYYY.", str(self.today().year))
        digits = prefix.count("#") or 5
        prefix = prefix.replace(".", "").replace("#", "")
        self.db["__series"][prefix] = self.db["__series"].get(prefix, 0) + 1
        return f"{prefix}{self.db['__series'][prefix]:0{digits}d}"

    # ---- lifecycle --------------------------------------------------------------------------------

    def insert(self, doctype: str, data: Doc, user: str = "Administrator", seeding: bool = False) -> Doc:
        meta = self.meta(doctype)
        now = self.now_str()
        doc: Doc = {c: None for c in self.known(doctype)}
        doc.update({t: [] for t in meta.children})
        doc.update(meta.defaults)
        doc.update(
            doctype=doctype,
            name="new",
            docstatus=0,
            idx=0,
            owner=user,
            modified_by=user,
            creation=now,
            modified=now,
        )
        docstatus = int(data.get("docstatus") or 0)
        self._apply(doc, {k: v for k, v in data.items() if k != "docstatus"}, user)
        if seeding:  # an import keeps its dates, as ``frappe.flags.in_import`` does
            doc.update({k: data[k] for k in ("creation", "modified", "owner") if data.get(k)})
            if doc.get("posting_date") and "set_posting_time" in doc:
                doc["set_posting_time"] = 1
        self._validate(doc, meta)
        explicit = data.get("name") if isinstance(data.get("name"), str | int) else None
        doc["name"] = self._name(doc, meta, str(explicit) if explicit is not None else None)
        for table in meta.children:
            for row in doc[table]:
                row["parent"] = doc["name"]
        self._keep_secrets(doc, meta)
        self.db[doctype][doc["name"]] = doc
        self._fire(doc, "after_insert", in_insert=True)
        self._fire(doc, "on_update", in_insert=True)
        if docstatus == 1:
            try:
                self._submit(doc, user, in_insert=True, keep_modified=seeding)
            except FrappeError:  # the request's transaction rolls back: no half-inserted document
                del self.db[doctype][doc["name"]]
                raise
        return doc

    def save(self, doc: Doc, data: Doc, user: str) -> Doc:
        """``update_doc``: lock on ``modified``; docstatus submits/cancels; no edits once submitted."""
        if "modified" in data and str(data["modified"]) != str(doc["modified"]):
            raise FrappeError(
                "TimestampMismatchError",
                "Error: Document has been modified after you have "
                f"opened it ({data['modified']}, {doc['modified']}). Please refresh to get the "
                "latest document.",
            )
        target = int(data.get("docstatus", doc["docstatus"]) or 0)
        changes = {k: v for k, v in data.items() if k not in ("docstatus", "modified")}
        if doc["docstatus"] == 2:
            raise invalid("Cannot edit cancelled document")
        if doc["docstatus"] == 1:
            trial = copy.deepcopy(doc)
            self._apply(trial, changes, user)
            changed = [k for k in changes if self._differs(doc, trial, k)]
            if changed:
                raise FrappeError(
                    "UpdateAfterSubmitError", f"Not allowed to change {changed[0]} after submission"
                )
            if target == 2:
                return self.cancel(doc, user)
            if target != 1:
                raise FrappeError("DocstatusTransitionError", f"Cannot change docstatus from 1 to {target}")
            return doc
        if target == 2:
            raise FrappeError("DocstatusTransitionError", "Cannot change docstatus from 0 to 2")
        draft = copy.deepcopy(doc)
        self._apply(draft, changes, user)
        meta = self.meta(doc["doctype"])
        self._validate(draft, meta)
        draft.update(modified=self.now_str(), modified_by=user)
        self._keep_secrets(draft, meta)
        doc.clear()
        doc.update(draft)
        self._fire(doc, "on_update")
        if target == 1:
            return self._submit(doc, user)
        self._fire(doc, "on_change")
        return doc

    def submit(self, doc: Doc, user: str) -> Doc:
        if not self.meta(doc["doctype"]).submittable:
            raise invalid(f"{doc['doctype']} is not submittable")
        if doc["docstatus"] != 0:
            raise FrappeError(
                "DocstatusTransitionError", f"Cannot change docstatus from {doc['docstatus']} to 1"
            )
        draft = copy.deepcopy(doc)
        self._validate(draft, self.meta(doc["doctype"]))
        doc.clear()
        doc.update(draft)
        self._fire(doc, "on_update")
        return self._submit(doc, user)

    def _differs(self, doc: Doc, trial: Doc, key: str) -> bool:
        """Whether an update touches ``key``; child rows compare by their columns, not names or stamps."""
        meta = self.meta(doc["doctype"])
        if key in meta.children:
            cols = CHILDREN[meta.children[key]]
            rows = [[r.get(c) for c in cols] for r in doc[key]]
            return rows != [[r.get(c) for c in cols] for r in trial[key]]
        return key in self.known(doc["doctype"]) and trial.get(key) != doc.get(key)

    def _submit(self, doc: Doc, user: str, in_insert: bool = False, keep_modified: bool = False) -> Doc:
        meta = self.meta(doc["doctype"])
        if not meta.submittable:
            raise invalid(f"{doc['doctype']} is not submittable")
        self._before_submit(doc)
        self._set_docstatus(doc, 1, user, keep_modified)
        self._on_submit(doc, user)
        self._fire(doc, "on_submit", in_insert=in_insert)
        if not in_insert:
            self._fire(doc, "on_change")
        return doc

    def cancel(self, doc: Doc, user: str) -> Doc:
        if doc["docstatus"] != 1:
            raise FrappeError(
                "DocstatusTransitionError", f"Cannot change docstatus from {doc['docstatus']} to 2"
            )
        self._refuse_if_linked(doc, submitted_only=True)
        self._set_docstatus(doc, 2, user)
        self._on_cancel(doc, user)
        self._fire(doc, "on_cancel")
        self._fire(doc, "on_change")
        return doc

    def delete(self, doc: Doc, user: str) -> None:
        if doc["docstatus"] == 1:
            raise invalid("Submitted Record cannot be deleted. You must Cancel it first.")
        self._refuse_if_linked(doc, submitted_only=False)
        self._fire(doc, "on_trash")
        del self.db[doc["doctype"]][doc["name"]]
        if doc["doctype"] != "Deleted Document":
            self.store_raw(
                "Deleted Document",
                {
                    "deleted_name": doc["name"],
                    "deleted_doctype": doc["doctype"],
                    "data": json.dumps(doc, default=str),
                    "restored": 0,
                },
                user,
            )

    def store_raw(self, doctype: str, fields: Doc, user: str = "Administrator") -> Doc:
        """``db_insert`` without validation or hooks: how Frappe writes Deleted Document and request logs."""
        now = self.now_str()
        doc: Doc = {c: None for c in self.known(doctype)}
        doc.update(
            fields,
            doctype=doctype,
            name=secrets.token_hex(5),
            docstatus=0,
            idx=0,
            owner=user,
            modified_by=user,
            creation=now,
            modified=now,
        )
        self.db[doctype][doc["name"]] = doc
        return doc

    def _set_docstatus(self, doc: Doc, status: int, user: str, keep_modified: bool = False) -> None:
        doc["docstatus"] = status
        if not keep_modified:
            doc.update(modified=self.now_str(), modified_by=user)
        for table in self.meta(doc["doctype"]).children:
            for row in doc[table]:
                row["docstatus"] = status

    def _keep_secrets(self, doc: Doc, meta: DocType) -> None:
        for field in meta.secrets:
            value = doc.pop("__pending_secret_" + field, None)
            if value is not None:
                self.db["__Auth"][(doc["doctype"], doc["name"], field)] = str(value)
                doc[field] = MASK * len(str(value))

    # ---- hooks for the ERPNext rules (rules.py) -------------------------------------------------------

    def _validate(self, doc: Doc, meta: DocType) -> None:
        """Frappe's own checks: mandatory columns and Link fields that must point at existing documents."""
        missing = [f for f in meta.mandatory if doc.get(f) in (None, "")]
        if missing:
            raise FrappeError("MandatoryError", f"Error: Value missing for {meta.name}: {missing[0]}")
        for field, target in meta.links.items():
            if doc.get(field) and doc[field] not in self.db[target]:
                raise FrappeError("LinkValidationError", f"Could not find {target}: {doc[field]}")

    def _before_submit(self, doc: Doc) -> None:
        """Checks that only apply when a document is submitted."""

    def _on_submit(self, doc: Doc, user: str) -> None:
        """Effects of a submit on this and other documents."""

    def _on_cancel(self, doc: Doc, user: str) -> None:
        """Effects of a cancel on this and other documents."""

    def _links_to(self, doc: Doc, submitted_only: bool) -> list[tuple[str, str]]:
        """Documents that link to ``doc``; blocks delete (any non-cancelled) and cancel (submitted ones)."""
        return []

    def _refuse_if_linked(self, doc: Doc, submitted_only: bool) -> None:
        links = self._links_to(doc, submitted_only)
        if links:
            source, name = links[0]
            raise FrappeError(
                "LinkExistsError",
                f"Cannot delete or cancel because {doc['doctype']} "
                f"{doc['name']} is linked with {source} {name}",
            )

    # ---- webhook hook (see webhooks.py) -----------------------------------------------------------

    def _fire(self, doc: Doc, event: str, in_insert: bool = False) -> None:
        """Queue the webhooks for ``event``; sent when the request succeeds."""
