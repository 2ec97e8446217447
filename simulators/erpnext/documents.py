"""Frappe's document lifecycle over the simulator store: naming, validation, save, submit, cancel, delete.

Docs are stored complete (every column, ``None`` when unset); an answer leaves the empty ones out, as Frappe's
JSON of a document does (``json_handler`` → ``as_dict(no_nulls=True)``, rows included).
Webhooks are queued while a request runs and sent only if it succeeds, like Frappe's
``enqueue_after_commit``; the events each step fires follow ``Document.insert``, ``save`` and
``run_post_save_methods``. Each request keeps Frappe's message log (``msgprint``; errors.py renders it).

Stamps (``creation``, ``modified``, posting dates) are naive, in the site's time zone (System Settings
``time_zone``, Europe/Paris by default like the test peer). Custom fields are Custom Field documents: a
column exists on its doctype only while its Custom Field does, and a unique one refuses a taken value
(UniqueValidationError, 417).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.base import Clock, Simulator
from simulators.erpnext.doctypes import CHILD_MANDATORY, CHILD_STANDARD, CHILDREN, DOCTYPES, DocType, label
from simulators.erpnext.errors import FrappeError, Message, invalid, not_found, printed
from simulators.erpnext.versions import get_diff, version_data

Doc = dict[str, Any]
MASK = "*"
_NOT_SETTABLE = ("name", "doctype", "owner", "creation", "modified", "modified_by", "idx")  # set by Frappe
STAMP = "%Y-%m-%d %H:%M:%S.%f"
SITE_TIME_ZONE = "Europe/Paris"
CustomFields = dict[str, list[str | dict[str, Any]]]  # doctype -> field names, or Custom Field documents


def no_nulls(value: Any) -> Any:
    """A document (or its rows) without the fields that hold None."""
    if isinstance(value, dict):
        return {k: no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [no_nulls(v) for v in value]
    return value


class FrappeBase(Simulator):
    """Documents, naming and business rules; routes live in ``simulator.py``, webhooks in ``webhooks.py``."""

    vendor = "erpnext"
    company = "My Co"
    abbr = "MC"

    def __init__(
        self, clock: Clock | None = None, custom_fields: CustomFields | None = None,
        time_zone: str = SITE_TIME_ZONE,
    ) -> None:  # fmt: skip
        self.time_zone = time_zone
        self._zone = ZoneInfo(time_zone)
        self._seed_fields = custom_fields or {}
        self._outbox: list[tuple[str, Any, dict[str, Any] | None]] = []
        self._fired: set[tuple[str, str]] = set()
        self._messages: list[Message] = []
        self._commits: list[Callable[[], Any]] = []
        super().__init__(clock)
        self.on_reset()

    def on_reset(self) -> None:
        """A fresh site: its masters (site.py) and the seeded custom fields."""
        self._site_masters()
        for doctype, fields in self._seed_fields.items():
            for field in fields:
                self.add_custom_field(doctype, field)

    def _site_masters(self) -> None:
        """The company, its accounts and the stock masters (rules.py)."""

    def add_custom_field(self, doctype: str, field: str | dict[str, Any]) -> Doc:
        """A Custom Field as a data import makes it (no webhooks); a bare name is a plain Data field."""
        spec = {"fieldname": field} if isinstance(field, str) else dict(field)
        return self.insert("Custom Field", {"dt": doctype, "fieldtype": "Data", **spec}, seeding=True)

    # ---- the message log ----------------------------------------------------------------------------

    def msgprint(self, message: str, title: str = "Message", *, alert: bool = False, **extra: Any) -> None:
        entry: Message = {"message": message, "title": title, **extra}
        self._messages.append({**entry, "alert": 1} if alert else entry)

    def on_commit(self, fn: Callable[[], Any]) -> None:
        """Run when the request succeeds (its transaction commits); forgotten when it fails."""
        self._commits.append(fn)

    def begin(self) -> None:
        """A request starts: no queued webhooks, messages or commit hooks from another."""
        self._outbox, self._fired, self._messages, self._commits = [], set(), [], []

    def fail(self, exc_type: str, *messages: str) -> FrappeError:
        """Print the reasons, then raise without a message of its own (MandatoryError and the like)."""
        for message in messages:
            self.msgprint(message)
        return printed(exc_type)

    # ---- reading ----------------------------------------------------------------------------------

    def meta(self, doctype: str) -> DocType:
        meta = DOCTYPES.get(doctype)
        if meta is None:
            raise FrappeError("DoesNotExistError", f"DocType {doctype} not found")
        return meta

    def custom_fields(self, doctype: str) -> list[Doc]:
        return [f for f in self.db["Custom Field"].values() if f["dt"] == doctype]

    def known(self, doctype: str) -> frozenset[str]:
        return self.meta(doctype).known(tuple(f["fieldname"] for f in self.custom_fields(doctype)))

    def get_doc(self, doctype: str, name: str) -> Doc:
        self.meta(doctype)
        doc = self.db[doctype].get(name)
        if doc is None:
            raise not_found(doctype, name)
        return doc

    def as_dict(self, doc: Doc) -> Doc:
        """A copy as the API shows it: no empty fields, in rows neither (Password fields already hold their
        mask, see ``_keep_secrets``)."""
        return no_nulls(copy.deepcopy(doc))

    def site_now(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=self._zone).replace(tzinfo=None)

    def now_str(self) -> str:
        """Frappe's naive ``YYYY-MM-DD HH:MM:SS.ffffff`` in the site's time zone."""
        return self.site_now().strftime(STAMP)

    def later(self, stamp: str) -> str:
        """Now, or a microsecond after ``stamp`` when the clock has not moved since (a frozen test clock):
        a later write always has a later ``modified``."""
        now = self.now_str()
        if now > stamp:
            return now
        return (datetime.strptime(stamp, STAMP) + timedelta(microseconds=1)).strftime(STAMP)

    def today(self) -> date:
        return self.site_now().date()

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
        naming = {
            "customer": self._customer_name, "contact": self._contact_name,
            "custom_field": self._custom_field_name, "account": self._account_name,
        }  # fmt: skip
        if explicit:
            name = explicit
        elif meta.naming == "prompt":  # frappe.model.naming._prompt_autoname
            raise invalid("Please set the document name")
        elif meta.naming in naming:
            name = naming[meta.naming](doc)
        elif meta.naming.startswith("field:"):
            name = str(doc.get(meta.naming[6:]) or "")
        elif meta.naming.startswith("series:"):
            name = self._series(meta.naming[7:])
        else:
            name = secrets.token_hex(5)
        if not name:
            field = meta.naming[6:]
            raise self.fail("MandatoryError", f"Error: Value missing for {meta.name}: {label(field)}")
        if name in store or (meta.naming.startswith("field:") and _taken_ignoring_case(store, name)):
            raise FrappeError(
                "DuplicateEntryError", f"{meta.name} <strong>{name}</strong> already exists", "Duplicate Name"
            )
        return name

    def _customer_name(self, doc: Doc) -> str:
        """ERPNext ``Customer.get_customer_name``: a taken name gets `` - <n>`` instead of an error, with a
        note in the answer's messages."""
        base = str(doc.get("customer_name") or "").strip()
        if base not in self.db["Customer"]:
            return base
        pattern = re.compile(re.escape(base) + r" - (\d+)$")
        taken = [int(m.group(1)) for n in self.db["Customer"] if (m := pattern.match(n))]
        name = f"{base} - {max(taken, default=0) + 1}"
        note = f"Changed customer name to '{name}' as '{base}' already exists."
        self.msgprint(note, "Note", indicator="yellow")
        return name

    def _contact_name(self, doc: Doc) -> str:
        """``Contact.autoname``: the full name, then the first link's name; a hash when both are empty."""
        name = self._full_name(doc)
        links = doc.get("links") or []
        if links and links[0].get("link_name"):
            name = f"{name}-{str(links[0]['link_name']).strip()}"
        if not name:
            return secrets.token_hex(5)
        candidate, n = name, 0
        while candidate in self.db["Contact"]:
            n += 1
            candidate = f"{name}-{n}"
        return candidate

    @staticmethod
    def _full_name(doc: Doc) -> str:
        names = [doc.get(k) for k in ("first_name", "middle_name", "last_name")]
        return " ".join(str(p) for p in names if p).strip() or str(doc.get("company_name") or "")

    def _custom_field_name(self, doc: Doc) -> str:
        """``CustomField.set_fieldname``: `custom_` + the label when no field name is given; lower case."""
        if not doc.get("fieldname"):
            text = re.sub(r"[^0-9a-zA-Z_]", "", str(doc.get("label") or "").replace(" ", "_"))
            doc["fieldname"] = f"custom_{text}"
        doc["fieldname"] = str(doc["fieldname"]).lower()
        if doc["fieldname"] in self.known(doc["dt"]):
            field = f"<strong>{doc['fieldname']}</strong>"
            raise invalid(f"A field with the name {field} already exists in {doc['dt']}")
        return f"{doc['dt']}-{doc['fieldname']}"

    def _account_name(self, doc: Doc) -> str:
        company = self.db["Company"].get(doc.get("company")) or {}
        number = f"{doc['account_number']} - " if doc.get("account_number") else ""
        return f"{number}{str(doc['account_name']).strip()} - {company.get('abbr', self.abbr)}"

    def _series(self, pattern: str) -> str:
        prefix = pattern.replace(".YYYY.", str(self.today().year))
        digits = prefix.count("#") or 5
        prefix = prefix.replace(".", "").replace("#", "")
        self.db["__series"][prefix] = self.db["__series"].get(prefix, 0) + 1
        return f"{prefix}{self.db['__series'][prefix]:0{digits}d}"

    # ---- lifecycle --------------------------------------------------------------------------------

    def insert(self, doctype: str, data: Doc, user: str = "Administrator", seeding: bool = False) -> Doc:
        """``Document.insert``: named first (set_new_name), then validated, then stored; the naming series
        taken by a refused insert is given back, as the rolled-back transaction does."""
        meta = self.meta(doctype)
        now = self.now_str()
        doc: Doc = {c: None for c in self.known(doctype)}
        doc.update({t: [] for t in meta.children})
        doc.update(meta.defaults)
        doc.update(
            doctype=doctype, name="new", docstatus=0, idx=0, owner=user, modified_by=user, creation=now,
            modified=now,
        )  # fmt: skip
        docstatus = int(data.get("docstatus") or 0)
        self._apply(doc, {k: v for k, v in data.items() if k != "docstatus"}, user)
        if seeding:  # an import keeps its dates, as ``frappe.flags.in_import`` does
            doc.update({k: data[k] for k in ("creation", "modified", "owner") if data.get(k)})
            if doc.get("posting_date") and "set_posting_time" in doc:
                doc["set_posting_time"] = 1
        series = dict(self.db["__series"])
        try:
            explicit = data.get("name") if isinstance(data.get("name"), str | int) else None
            if seeding and meta.naming == "prompt" and not explicit:  # a seed may leave the name to us
                explicit = f"{meta.name} {secrets.token_hex(4)}"
            doc["name"] = self._name(doc, meta, str(explicit) if explicit else None)
            for table in meta.children:
                for row in doc[table]:
                    row["parent"] = doc["name"]
            self._validate(doc, meta)
            self._check_unique(doc)
        except FrappeError:
            self.db["__series"] = series
            raise
        self._keep_secrets(doc, meta)
        self.db[doctype][doc["name"]] = doc
        self._fire(doc, "after_insert", in_insert=True)
        self._fire(doc, "on_update", in_insert=True)
        inserted = copy.deepcopy(doc)
        self._on_update(doc, user, in_insert=True)
        if not seeding:  # what on_update wrote with db_set is diffed against the row just inserted
            self._save_version(inserted, doc, user)
        if seeding:  # what on_update wrote (a primary Contact) leaves an import's dates as given
            doc.update({k: data[k] for k in ("creation", "modified") if data.get(k)})
        if docstatus == 1:
            try:
                self._submit(doc, user, in_insert=True, keep_modified=seeding)
            except FrappeError:  # the request's transaction rolls back: no half-inserted document
                del self.db[doctype][doc["name"]]
                raise
        return doc

    def _check_unique(self, doc: Doc) -> None:
        """A unique custom field refuses a value another document holds (MariaDB's unique index compares
        case-insensitively): its label "must be unique", UniqueValidationError."""
        for field in self.custom_fields(doc["doctype"]):
            name, value = field["fieldname"], doc.get(field["fieldname"])
            if not field.get("unique") or value in (None, ""):
                continue
            others = (d for d in self.db[doc["doctype"]].values() if d["name"] != doc["name"])
            if any(str(d.get(name) or "").casefold() == str(value).casefold() for d in others):
                shown = field.get("label") or label(name)
                raise self.fail("UniqueValidationError", f"{shown} must be unique")

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
        self._check_unique(draft)
        draft.update(modified=self.later(doc["modified"]), modified_by=user)
        self._keep_secrets(draft, meta)
        before = copy.deepcopy(doc)
        doc.clear()
        doc.update(draft)
        self._fire(doc, "on_update")
        self._on_update(doc, user)
        self._save_version(before, doc, user)
        if target == 1:
            return self._submit(doc, user)
        self._fire(doc, "on_change")
        return doc

    def submit(self, doc: Doc, user: str) -> Doc:
        if not self.meta(doc["doctype"]).submittable:
            raise invalid(f"{doc['doctype']} is not submittable")
        if doc["docstatus"] == 1:  # Document.submit saves it again (an update after submit): 200, re-stamped
            doc.update(modified=self.later(doc["modified"]), modified_by=user)
            return doc
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

    def _save_version(self, old: Doc, new: Doc, user: str) -> None:
        """``Document.save_version``: a Version of what changed, for a doctype that tracks changes
        (versions.py); written after on_update, so a little later than the document's ``modified``."""
        meta = self.meta(new["doctype"])
        if not meta.track_changes:
            return
        fields = [*meta.columns, *(f["fieldname"] for f in self.custom_fields(meta.name))]
        diff = get_diff(old, new, fields)
        if diff is None:
            return
        data = {"ref_doctype": new["doctype"], "docname": new["name"], "data": version_data(diff)}
        version = self.store_raw("Version", data, user)
        stamp = self.later(new["modified"])
        version.update(creation=stamp, modified=stamp)

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
        self._on_trash(doc, user)
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
            doc.update(modified=self.later(doc["modified"]), modified_by=user)
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
        """Frappe's own checks: Link fields that must point at existing documents, then mandatory columns
        (of the document and of its rows), each missing one printed, then one MandatoryError."""
        for field, target in meta.links.items():
            if doc.get(field) and doc[field] not in self.db[target]:
                raise FrappeError("LinkValidationError", f"Could not find {label(field)}: {doc[field]}")
        missing = [f"Error: Value missing for {meta.name}: {label(f)}" for f in meta.mandatory
                   if doc.get(f) in (None, "")]  # fmt: skip
        for table, child in meta.children.items():
            for row in doc[table]:
                missing += [
                    f"Error: <strong>{child}</strong> Row #{row['idx']}: Value missing for: {text}"
                    for f, text in CHILD_MANDATORY.get(child, {}).items() if row.get(f) in (None, "")
                ]  # fmt: skip
        if missing:
            raise self.fail("MandatoryError", *missing)

    def _on_update(self, doc: Doc, user: str, in_insert: bool = False) -> None:
        """The controller's ``on_update`` (after the save's hooks), for the ERPNext rules."""

    def _on_trash(self, doc: Doc, user: str) -> None:
        """The controller's ``on_trash``, before the document goes."""

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


def _taken_ignoring_case(store: dict[str, Doc], name: str) -> bool:
    """MariaDB's collation ignores case, so a document named by a field (an Item's code) is a duplicate of
    one whose name differs only in case: the insert fails with DuplicateEntryError."""
    folded = name.casefold()
    return any(other.casefold() == folded for other in store)
