"""ERPNext v15 (Frappe) over REST API v2: documents, sweeps, submit, payment entries, webhooks.

Inputs and outputs are plain dicts in ERPNext's own shape (a document as ``GET /api/v2/document/{doctype}/
{name}`` answers it); mapping to the canonical record lives elsewhere.

ERPNext has no idempotency keys, so every create that must happen once goes through
``Connector.create_once``: under a lock on our marker, look the document up by a unique field that carries the
marker (Customer: a custom field with our marker, the email else the name; Item: ``item_code``; Sales
Invoice: a custom field, or a tag in ``remarks``, with our invoice number; Payment Entry: ``reference_no`` =
the Revolut transaction id) and insert only when it is absent. A create whose answer was lost is found by that
look-up on the next try. A ``DuplicateEntryError`` (409) or ``UniqueValidationError`` (417, a unique custom
field such as our marker) on insert also means "it exists": we read it back.

Times: Frappe stamps (``creation``, ``modified``) are naive, in the site's time zone. The connector reads that
zone from the site (``frappe.client.get_time_zone``, cached per process) and ``aware()`` turns a stamp into
an aware UTC instant; nothing naive leaves this module's callers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from connectors.base import Connector, pages_after, segment
from syncengine.errors import Ambiguous, Permanent, Retryable, SyncError
from syncengine.idempotency import Attempt, Effect
from syncengine.redaction import redact, register_secrets
from syncengine.settings import Secret, get_settings
from syncengine.vendors.erpnext import MARKER_FIELD, PAYMENT_ENTRY_METHOD, TIME_ZONE_METHOD

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Filters = list[list[Any]]
REMARKS = "remarks"  # invoice marker as a "[syncengine:<number>]" tag in the remarks, for sites without it
DEFAULT_PAGE = 100
VERSIONS = 25  # the saves looked at; a field changed back and forth more often is dated by `modified`
# Keys that Frappe sets itself; sending them back would confuse the insert. A top-level `name` is kept when
# set: some doctypes are named by the caller (a Webhook without one is 417 "Please set the document name").
_SERVER_KEYS = frozenset({"owner", "creation", "modified", "modified_by", "parent", "idx"})
_TAGS = re.compile(r"<[^>]+>")
CONTACT_FIELDS = ("email_id", "mobile_no")  # a Customer's copies of its primary Contact's
# A create refused because the document exists: a duplicate name (409), or a value of a unique field (417).
EXISTS = frozenset({"DuplicateEntryError", "UniqueValidationError"})
SITE_ZONE_TTL = 3600.0  # the site's time zone is read again after an hour (a site's zone rarely changes)
_site_zones: dict[str, tuple[float, tzinfo]] = {}  # base URL -> (monotonic time read, zone)


class FrappeError(Permanent):
    """A Frappe exception answered as such (ValidationError 417, DuplicateEntryError 409, …)."""

    def __init__(self, message: str, status: int | None, body: object, exc_type: str | None) -> None:
        super().__init__(message, status, body)
        self.exc_type = exc_type


class StaleDocument(Retryable):
    """The document changed since we read it (TimestampMismatchError): the current version is attached,
    re-read right away, so the caller merges again before the retry."""

    def __init__(self, message: str, current: Doc) -> None:
        super().__init__(message, retry_after=0.0, status=417)
        self.current = current


def frappe_error(body: Any) -> tuple[str | None, str]:
    """``(exc_type, message)`` from v2's ``errors`` + ``messages`` lists or v1's ``exc_type`` +
    ``_server_messages``.

    v2 links the raised exception with one logged message (frappe.utils.response): for an exception raised
    without a message of its own (MandatoryError) that is the first message logged, which may be an
    unrelated alert ("Item Price added …"), while the reasons sit in the top-level ``messages``. So the
    reason is every message that is not an alert, the error's own first."""
    if not isinstance(body, dict):
        return None, str(body or "")[:300]
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        logged = [first, *(m for m in body.get("messages") or [] if isinstance(m, dict))]
        reasons = [_plain(m.get("message")) for m in logged if not m.get("alert")]
        alerts = [_plain(m.get("message")) for m in logged if m.get("alert")]
        message = "; ".join(r for r in reasons if r) or "; ".join(a for a in alerts if a)
        return first.get("type") or first.get("exc_type"), message
    messages = _server_messages(body.get("_server_messages"))
    return body.get("exc_type"), "; ".join(messages) or _plain(body.get("exception") or body.get("message"))


def _server_messages(raw: Any) -> list[str]:
    """``_server_messages`` is a JSON list of JSON-encoded ``{"message": …}`` objects."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return [_plain(raw)]
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            parsed = json.loads(item) if isinstance(item, str) else item
        except ValueError:
            parsed = item
        out.append(_plain(parsed.get("message") if isinstance(parsed, dict) else parsed))
    return [m for m in out if m]


def _plain(text: Any) -> str:
    return _TAGS.sub("", str(text or "")).strip()


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _clean(doc: Doc, *, child: bool = False) -> Doc:
    """A document ready to insert: no server-set keys, no ``__islocal``-style flags, no child row names,
    and no empty ``name`` (an unsaved document built by ERPNext has none)."""
    out: Doc = {}
    for key, value in doc.items():
        if key in _SERVER_KEYS or key.startswith("__") or (key == "name" and (child or not value)):
            continue
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            value = [_clean(row, child=True) for row in value]
        out[key] = value
    return out


def parse_zone(name: Any) -> tzinfo:
    """The IANA zone a Frappe site names; a site without one runs on the server's zone, which Frappe
    itself takes as UTC (frappe.utils.get_system_timezone)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Permanent(
            f"erpnext: the site's time zone {name!r} is unknown here (install the tzdata package)"
        ) from exc


def aware_time(value: Any, zone: tzinfo) -> datetime:
    """A Frappe stamp (naive ``YYYY-MM-DD HH:MM:SS.ffffff`` in the site's ``zone``) as an aware UTC
    instant; an aware one is only converted."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def webhook_name(webhook: Doc) -> str:
    """`syncengine <doctype> <event> <url digest>`: one name per (doctype, doc event, URL)."""
    digest = hashlib.sha256(str(webhook["request_url"]).encode()).hexdigest()[:8]
    return f"syncengine {webhook['webhook_doctype']} {webhook['webhook_docevent']} {digest}"


def primary_rows(rows: list[Doc], key: str, value: Any, flag: str, columns: Sequence[str]) -> list[Doc]:
    """A Contact's email or phone rows with ``value`` as the one flagged ``flag`` (primary): the old
    primary row goes, the others stay as they were, and an empty value leaves no primary."""
    kept = [{c: r.get(c) for c in columns} for r in rows if not r.get(flag) and r.get(key) != value]
    same = next((r for r in rows if r.get(key) == value), {})
    return [{**{c: same.get(c) or 0 for c in columns}, key: value, flag: 1}, *kept] if value else kept


def _first_match(rows: list[Doc], alternatives: Filters) -> Doc | None:
    """The first row matching the first alternative any row matches. MariaDB compares with a
    case-insensitive collation; so does this pick among the rows."""
    for field, _op, value in alternatives:
        match = next((r for r in rows if str(r.get(field)).casefold() == str(value).casefold()), None)
        if match is not None:
            return match
    return None


def holds_as_primary(rows: list[Doc], key: str, value: Any, flag: str) -> bool:
    """Whether a Contact's rows already have ``value`` as their one primary (none when it is empty)."""
    flagged = [r.get(key) for r in rows if r.get(flag)]
    return flagged == ([value] if value else [])


class ERPNextConnector(Connector):
    """ERPNext v15 through ``/api/v2``; see the module docstring for how creates happen once."""

    service = "erpnext"

    def __init__(
        self, base_url: str, *, api_key: str | Secret, api_secret: str | Secret, company: str | None = None,
        customer_marker: str | None = MARKER_FIELD, invoice_marker: str = MARKER_FIELD,
        site_timezone: tzinfo | None = None, bank_account: str | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """``customer_marker``: the Customer field holding our marker, or None to match on the customer
        name; ``invoice_marker``: the Sales Invoice field holding our invoice number, or ``"remarks"``;
        ``site_timezone``: the site's zone when known (read from the site otherwise); ``bank_account``: the
        ledger account Payment Entries receive into (the company's default when None)."""
        super().__init__(base_url, **kwargs)
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self._secret = api_secret if isinstance(api_secret, Secret) else Secret(api_secret)
        register_secrets([self._secret.reveal()])
        self.company = company
        self.customer_marker = customer_marker
        self.invoice_marker = invoice_marker
        self._site_timezone = site_timezone
        self.bank_account = bank_account

    @classmethod
    def from_settings(cls, **kwargs: Any) -> ERPNextConnector:
        svc = get_settings().services["erpnext"]
        creds = svc.credentials
        if not svc.url or "api_key" not in creds or "api_secret" not in creds:
            raise Permanent("ERPNext is not configured (ERPNEXT_URL, ERPNEXT_API_KEY, ERPNEXT_API_SECRET)")
        kwargs.setdefault("company", svc.options.get("company"))
        kwargs.setdefault("bank_account", svc.options.get("bank_account"))
        return cls(svc.url, api_key=creds["api_key"], api_secret=creds["api_secret"], **kwargs)

    # --- hooks -------------------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = f"token {self._key.reveal()}:{self._secret.reveal()}"

    def classify(self, response: requests.Response) -> SyncError | None:
        """The base's classes, with Frappe's exception type and message in a permanent failure."""
        error = super().classify(response)
        if not isinstance(error, Permanent):
            return error
        body = _json(response)
        exc_type, message = frappe_error(body)
        where = f"{self.service} {response.request.method} {response.url.split('?', 1)[0]}"
        detail = f"{where} answered {response.status_code} {exc_type or 'error'}: {redact(message)[:300]}"
        return FrappeError(detail, response.status_code, body, exc_type)

    # --- documents ---------------------------------------------------------------------------------

    @staticmethod
    def doc_path(doctype: str, name: str | None = None) -> str:
        path = f"/api/v2/document/{quote(doctype)}"
        return path if name is None else f"{path}/{segment(name, 'name', what='erpnext document name')}"

    def get(self, doctype: str, name: str) -> Doc:
        return self.get_json(self.doc_path(doctype, name))["data"]

    def create(self, doctype: str, doc: Doc) -> Doc:
        """One insert (not once-safe on its own: use the ``ensure_*`` methods for effects)."""
        body = _clean(doc)
        if self.company and doctype in ("Sales Invoice", "Purchase Invoice", "Payment Entry"):
            body.setdefault("company", self.company)
        if doctype == "Webhook" and not body.get("name"):  # ERPNext: 417 "Please set the document name"
            body["name"] = webhook_name(body)
        return self.request("POST", self.doc_path(doctype), json=body).json()["data"]

    def update(self, doctype: str, name: str, changes: Doc, *, modified: str | None = None) -> Doc:
        """Set fields. With ``modified`` (the version the caller merged against) Frappe refuses a stale
        save; that raises StaleDocument carrying the current document. Without it a repeat is harmless,
        so the call is retried like a read."""
        body = dict(changes) if modified is None else {**changes, "modified": modified}
        try:
            response = self.request(
                "PUT", self.doc_path(doctype, name), json=body, idempotent=modified is None
            )
        except FrappeError as exc:
            if exc.exc_type != "TimestampMismatchError":
                raise
            raise StaleDocument(
                f"{doctype} {name} changed since {modified}", self.get(doctype, name)
            ) from exc
        return response.json()["data"]

    def update_customer(self, name: str, changes: Doc, *, read: Doc | None = None) -> Doc:
        """Set a Customer's fields and answer it as it now is. Its `email_id` and `mobile_no` are read-only
        copies of its primary Contact's, fetched again on every save (a PUT changing them answers 200 with
        the old values), so they are written on that Contact and the Customer is saved after it, which
        fetches them. A Customer without a primary Contact gets one from ERPNext on that save
        (Customer.create_primary_contact), made from the values the save carries. `read`: the Customer as
        just read (it names the primary Contact), else it is read here."""
        on_contact = {k: changes[k] for k in CONTACT_FIELDS if k in changes}
        rest = {k: v for k, v in changes.items() if k not in CONTACT_FIELDS}
        primary = (read or self.get("Customer", name)).get("customer_primary_contact") if on_contact else None
        if primary:
            self._set_primary_contact(primary, on_contact)
        else:
            rest |= on_contact
        return self.update("Customer", name, rest)

    def _set_primary_contact(self, name: str, changes: Doc) -> None:
        """Only the rows whose primary is not already the value are written, and nothing when none is: a
        merge that leaves email and phone as they are (a first sync matching on the email) saves the
        Customer alone, a request less than a write of the Contact with what it holds."""
        contact, body = self.get("Contact", name), {}
        rows = {"email_ids": ("email_id", "email_id", "is_primary", ("email_id", "is_primary")),
                "phone_nos": ("mobile_no", "phone", "is_primary_mobile_no",
                              ("phone", "is_primary_phone", "is_primary_mobile_no"))}  # fmt: skip
        for table, (field, key, flag, columns) in rows.items():
            held = contact.get(table) or []
            if field in changes and not holds_as_primary(held, key, changes[field], flag):
                body[table] = primary_rows(held, key, changes[field], flag, columns)
        if body:
            self.update("Contact", name, body)

    def delete(self, doctype: str, name: str) -> bool:
        """True if we deleted it, False if it was already gone (a repeat after a lost answer)."""
        return self.delete_if_present(self.doc_path(doctype, name))

    def submit(self, doctype: str, name: str) -> Doc:
        """Submit a draft. A lost answer or a "cannot change docstatus" is settled by reading it back."""
        try:
            response = self.request("POST", f"{self.doc_path(doctype, name)}/method/submit")
        except (Ambiguous, FrappeError) as exc:
            if isinstance(exc, FrappeError) and exc.exc_type != "DocstatusTransitionError":
                raise
            current = self.get(doctype, name)
            if current.get("docstatus") == 1:
                return current
            raise
        return response.json()["data"]

    def call(self, method: str, **params: Any) -> Any:
        """A whitelisted method that changes nothing (``get_payment_entry``, ``has_permission``), by POST
        with a JSON body: over GET every argument arrives as a string, and ``get_payment_entry`` then fails
        on ``abs()`` of a string ``party_amount`` (500)."""
        body = {k: v for k, v in params.items() if v is not None}
        return self.request("POST", f"/api/v2/method/{method}", json=body, idempotent=True).json()["data"]

    # --- time ----------------------------------------------------------------------------------------

    @property
    def site_timezone(self) -> tzinfo:
        """The zone Frappe writes its naive stamps in: the site's System Settings ``time_zone``."""
        if self._site_timezone is not None:
            return self._site_timezone
        cached = _site_zones.get(self.base_url)
        if cached is not None and time.monotonic() - cached[0] < SITE_ZONE_TTL:
            return cached[1]
        answer = self.get_json(f"/api/v2/method/{TIME_ZONE_METHOD}")["data"]  # no arguments: a plain read
        zone = parse_zone((answer or {}).get("time_zone"))
        _site_zones[self.base_url] = (time.monotonic(), zone)
        return zone

    def aware(self, value: Any) -> datetime:
        return aware_time(value, self.site_timezone)

    # --- listing -----------------------------------------------------------------------------------

    def list_page(
        self, doctype: str, *, filters: Filters | Mapping[str, Any] | None = None,
        fields: Sequence[str] = ("*",), order_by: str = "modified asc, name asc", start: int = 0,
        limit: int = DEFAULT_PAGE, or_filters: Filters | None = None,
    ) -> list[Doc]:  # fmt: skip
        """One page of ``frappe.client.get_list``; filters/fields travel as URL-encoded JSON."""
        params: dict[str, Any] = {"fields": json.dumps(list(fields)), "order_by": order_by}
        params.update(limit=limit, start=start)
        if filters:
            params["filters"] = json.dumps(filters, default=str)
        if or_filters:
            params["or_filters"] = json.dumps(or_filters, default=str)
        return self.get_json(self.doc_path(doctype), params=params)["data"]

    def versions(self, doctype: str, name: str, limit: int = VERSIONS) -> list[Doc]:
        """The document's last saves that changed something, newest first: each Version's `data` and
        `creation`, for a doctype that tracks changes (Customer and Item do). `data` is JSON text,
        `{"added":[],"changed":[["tax_id",null,"FR1"]],"data_import":null,"removed":[],"row_changed":[],
        "updater_reference":null}`; `creation` naive site time, a little after the save's `modified` (the
        Version is written after on_update). An insert writes none unless its on_update set fields (a
        Customer's new primary Contact). Version is a System Manager doctype: refused (403) to another
        API user, this is empty, with one warning."""
        filters = [["ref_doctype", "=", doctype], ["docname", "=", name]]
        try:
            return self.list_page("Version", filters=filters, fields=("name", "data", "creation"),
                                  order_by="creation desc, name desc", limit=limit)  # fmt: skip
        except Permanent as exc:
            if exc.status != 403:
                raise
            self.warn_once(
                "versions",
                "erpnext refused read on Version (%s): grant its API user read on "
                "Version, or changes read back are dated by the document's modified alone",
                exc,
            )
            return []

    def iter_documents(
        self, doctype: str, *, filters: Filters | None = None,
        fields: Sequence[str] = ("*",), page_size: int = DEFAULT_PAGE,
    ) -> Iterator[Doc]:  # fmt: skip
        """Every matching document by name, each page asked as ``name > <last name>``: a document edited,
        added or deleted during the listing moves no other between pages (an offset over ``modified``
        skipped one whenever a listed document was edited, and the drift report took it for missing)."""
        fields = list(fields) if "*" in fields else [*dict.fromkeys([*fields, "name"])]

        def page(after: str | None) -> list[Doc]:
            where = [*(filters or []), *([] if after is None else [["name", ">", after]])]
            return self.list_page(doctype, filters=where, fields=fields, order_by="name asc", limit=page_size)

        return pages_after(page, page_size, lambda row: row["name"])

    def iter_modified(
        self, doctype: str, since: datetime | str, *, fields: Sequence[str] = ("*",),
        filters: Filters | None = None, page_size: int = DEFAULT_PAGE,
    ) -> Iterator[Doc]:  # fmt: skip
        """The sweep: documents with ``modified >= since``, oldest first.

        Paged by key, (``modified``, ``name``) past the last row seen: ``modified >= <last>`` and, in
        ``or_filters`` (Frappe ANDs them with the filters as one group), ``modified > <last>`` or
        ``name > <last name>``. A document edited during the sweep moves to the end of the order and is
        listed there; no other row moves. An offset, even one counted inside the tie at a timestamp, skips a
        row when a row before it moves: a data import stamps thousands of rows with one ``modified``, and
        the first sync edits them while it lists them (measured: 2 of 400 never listed)."""
        fields = list(fields) if "*" in fields else [*fields, "name", "modified"]

        def page(last: tuple[str, str] | None) -> list[Doc]:
            boundary = self.frappe_time(since) if last is None else last[0]
            where = [["modified", ">=", boundary], *(filters or [])]
            past = None if last is None else [["modified", ">", last[0]], ["name", ">", last[1]]]
            return self.list_page(doctype, filters=where, or_filters=past, fields=fields, limit=page_size)

        return pages_after(page, page_size, lambda row: (row["modified"], row["name"]))

    def iter_deleted(
        self, since: datetime | str, doctype: str | None = None, page_size: int = DEFAULT_PAGE
    ) -> Iterator[Doc]:
        """Deleted Document rows (``deleted_doctype``, ``deleted_name``, ``data``) for the delete sweep."""
        extra = [["deleted_doctype", "=", doctype]] if doctype else None
        fields = ("name", "deleted_doctype", "deleted_name", "data", "creation", "modified")
        yield from self.iter_modified(
            "Deleted Document", since, fields=fields, filters=extra, page_size=page_size
        )

    def frappe_time(self, value: datetime | str) -> str:
        """Frappe compares naive ``YYYY-MM-DD HH:MM:SS.ffffff`` in the site's time zone; a naive datetime
        is taken as UTC (the hub's time), never as site time."""
        if isinstance(value, str):
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.site_timezone).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    # --- creates that happen once ------------------------------------------------------------------

    def find_one(
        self, doctype: str, filters: Filters, accept: Callable[[Doc], bool] | None = None
    ) -> Doc | None:
        """The oldest document matching ``filters`` (and ``accept``), read in full, or None."""
        fields = ("*",) if accept else ("name",)
        rows = self.list_page(doctype, filters=filters, fields=fields, order_by="creation asc", limit=20)
        match = next((r for r in rows if accept is None or accept(r)), None)
        return None if match is None else self.get(doctype, match["name"])

    def find_first(self, doctype: str, alternatives: Filters) -> Doc | None:
        """The document matching the first of several `[field, "=", value]` conditions that any document
        matches, in that order of preference, with every field of its own table (`*`; not its child tables):
        one `or_filters` list request for them all, and no second request to read the one found."""
        rows = self.list_page(
            doctype, or_filters=alternatives, fields=("*",), order_by="creation asc", limit=20
        )
        return _first_match(rows, alternatives)

    def find_firsts(self, doctype: str, many: list[Filters]) -> list[Doc | None] | None:
        """`find_first` for each list of alternatives in `many`, in one request: the `=` conditions of all
        gathered field by field into `in` conditions. None when the answer may be cut short (a full page):
        then each is asked alone."""
        values: dict[str, list[Any]] = {}
        for alternatives in many:
            for field, _op, value in alternatives:
                values.setdefault(field, []).append(value)
        if not values:
            return [None] * len(many)
        limit = 20 * len(many)
        or_filters = [[field, "in", list(dict.fromkeys(vs))] for field, vs in values.items()]
        rows = self.list_page(doctype, or_filters=or_filters, fields=("*",), order_by="creation asc",
                              limit=limit)  # fmt: skip
        if len(rows) >= limit:
            return None
        return [_first_match(rows, alternatives) for alternatives in many]

    def ensure(
        self, effect: Effect, doctype: str, doc: Doc | Callable[[], Doc], *, match: Filters, marker: str,
        submit: bool = False, accept: Callable[[Doc], bool] | None = None,
    ) -> Doc:  # fmt: skip
        """Create ``doc`` once: found by ``match`` (under the lock on ``marker``) or inserted, and with
        ``submit`` inserted with ``docstatus: 1`` (insert and submit in one transaction). ``doc`` may be a
        function building the body, called only when the document is absent."""

        def find() -> Doc | None:
            found = self.find_one(doctype, match, accept)
            if found is not None and submit and found.get("docstatus") == 0:
                found = self.submit(doctype, found["name"])  # a draft left by an earlier path
            return found

        def create(attempt: Attempt) -> Doc:
            body = doc() if callable(doc) else doc
            return self._insert(doctype, {**body, "docstatus": 1} if submit else body, find)

        return self.create_once(effect, marker=f"{doctype}:{marker}", find=find, create=create)

    def _insert(self, doctype: str, doc: Doc, find: Callable[[], Doc | None]) -> Doc:
        try:
            created = self.create(doctype, doc)
        except FrappeError as exc:
            if exc.exc_type not in EXISTS and exc.status != 409:
                raise
            existing = find()
            if existing is None:
                raise
            log.info("%s: %s %s already exists, using it", self.service, doctype, existing.get("name"))
            return existing
        # Inserted submitted, ERPNext answers the document as it was before its own on-submit updates
        # (status "Draft", an older `modified`): what it holds now is read back.
        return self.get(doctype, created["name"]) if doc.get("docstatus") == 1 else created

    def ensure_customer(self, effect: Effect, customer: Doc, *, record_id: str) -> Doc:
        """Our record id goes into the marker field; without one configured, the name is the marker."""
        field = self.customer_marker
        if field:
            return self.ensure(
                effect, "Customer", {**customer, field: record_id},
                match=[[field, "=", record_id]], marker=record_id,
            )  # fmt: skip
        name = customer["customer_name"]
        return self.ensure(effect, "Customer", customer, match=[["customer_name", "=", name]], marker=name)

    def ensure_item(self, effect: Effect, item: Doc) -> Doc:
        code = item["item_code"]
        return self.ensure(effect, "Item", item, match=[["item_code", "=", code]], marker=code)

    def ensure_sales_invoice(self, effect: Effect, invoice: Doc, *, number: str, submit: bool = True) -> Doc:
        """``number`` is our (Invoice Ninja) invoice number, kept in the marker field or ``remarks``."""
        field = self.invoice_marker
        if field != REMARKS:
            body = {**invoice, field: number}
            match = [[field, "=", number]]
            return self.ensure(effect, "Sales Invoice", body, match=match, marker=number, submit=submit)
        tag = f"[syncengine:{number}]"
        remarks = " ".join(p for p in (invoice.get(REMARKS), tag) if p)
        return self.ensure(
            effect, "Sales Invoice", {**invoice, REMARKS: remarks}, match=[[REMARKS, "like", f"%{tag}%"]],
            marker=number, submit=submit, accept=lambda row: tag in str(row.get(REMARKS) or ""),
        )  # fmt: skip

    def ensure_payment_entry(
        self, effect: Effect, *, invoice: str, reference_no: str, reference_date: str,
        amount: float | None = None, bank_account: str | None = None, invoice_doctype: str = "Sales Invoice",
        extra: Doc | None = None,
    ) -> Doc:  # fmt: skip
        """A submitted Payment Entry against ``invoice``, built by ERPNext's own ``get_payment_entry`` and
        marked with ``reference_no`` (the Revolut transaction id), which is also how we find it again. The
        money goes to ``bank_account`` (a ledger Account), else the configured one, else the company's
        default (Cash on a new site)."""

        def build() -> Doc:
            entry = self.call(
                PAYMENT_ENTRY_METHOD, dt=invoice_doctype, dn=invoice, party_amount=amount,
                bank_account=bank_account or self.bank_account, reference_date=reference_date,
            )  # fmt: skip
            return {**entry, **(extra or {}), "reference_no": reference_no, "reference_date": reference_date}

        match = [["reference_no", "=", reference_no]]
        return self.ensure(effect, "Payment Entry", build, match=match, marker=reference_no, submit=True)

    # --- webhooks (for `webhooks install`) ---------------------------------------------------------

    def iter_webhooks(self) -> Iterator[Doc]:
        return self.iter_documents("Webhook")

    def ensure_webhook(self, effect: Effect, webhook: Doc) -> Doc:
        """One Webhook document per (doctype, doc event, URL). A Webhook is named by its creator (without a
        name ERPNext answers 417 "Please set the document name"): by default after those three."""
        keys = ("webhook_doctype", "webhook_docevent", "request_url")
        marker = ":".join(webhook[k] for k in keys)
        name = webhook.get("name") or webhook_name(webhook)
        match = [[k, "=", webhook[k]] for k in keys]
        return self.ensure(effect, "Webhook", {**webhook, "name": name}, match=match, marker=marker)

    def delete_webhook(self, name: str) -> bool:
        return self.delete("Webhook", name)
