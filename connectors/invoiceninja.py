"""Invoice Ninja v5 (docs/architecture.md, Vendors' documentation): clients, products, invoices, payments,
expenses and vendors.

Inputs and outputs are plain dicts in Invoice Ninja's own shape (the `data` of its answers, the bodies of
`StoreClientRequest`, `StoreInvoiceRequest`, `StorePaymentRequest` …); mapping to the canonical record lives
elsewhere. Ids are Invoice Ninja's hashed string ids.

Creates happen once (docs/architecture.md, Effects once): payments carry the vendor's `idempotency_key` (our
Attempt's vendor key), everything else is looked up by our marker (`id_number`/`number`/email, an invoice
`number`, a `product_key`) under a lock before it is created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from syncengine.errors import Permanent, Retryable, SyncError
from syncengine.idempotency import Attempt, Effect, once

from .base import TokenConnector, segment

log = logging.getLogger(__name__)

API = "/api/v1"
# QueryFilters::apply() ends with withTrashed(): name every status, or archived/deleted rows come and go.
ALL_STATUSES = "active,archived,deleted"
DEFAULT_PAGE_SIZE = 100  # the vendor allows up to 5000; 100 keeps one answer small
MAX_PER_PAGE = 5000  # BaseController::resolveQueryLimit
LOOKUP_PAGE = 1000  # clients per page when many are looked up by listing them all
# StorePaymentRequest refuses the same amount+client within about a second with a bare 429.
DUPLICATE_PAYMENT_WAIT = 1.0
BULK_ACTIONS = frozenset({"archive", "restore", "delete", "mark_sent"})
# Fields a client may be found by, with the list filter Invoice Ninja has for each (ClientFilters).
CLIENT_MARKERS = ("id_number", "number", "email")


class InvoiceNinja(TokenConnector):
    """The Invoice Ninja API with a company token (`X-API-TOKEN`)."""

    service = "invoiceninja"

    label = "Invoice Ninja"
    default_page_size = DEFAULT_PAGE_SIZE

    # --- the shared connector's hooks ----------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> None:
        """The token, and the AJAX header without which Laravel answers a validation error with a
        redirect instead of JSON 422."""
        headers["X-API-TOKEN"] = self._token.reveal()
        headers["X-Requested-With"] = "XMLHttpRequest"

    def classify(self, response: requests.Response) -> SyncError | None:
        """A refused token is 403 here (not 401) and is configuration: Permanent, never a breaker
        failure. The duplicate-payment guard's bare 429 says when to come back: after its window."""
        error = super().classify(response)
        status = response.status_code
        if status == 403:
            body = error.body if isinstance(error, Permanent) else None
            return Permanent(f"{error} (check INVOICENINJA_TOKEN and its permissions)", 403, body)
        if isinstance(error, Retryable) and status == 429 and error.retry_after is None:
            return Retryable(str(error), DUPLICATE_PAYMENT_WAIT, 429)
        return error

    # --- generic entity calls ------------------------------------------------------------------------

    def paginate(
        self, kind: str, params: Mapping[str, Any] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entity of `kind` matching `params`, page by page (`meta.pagination.total_pages`)."""
        for rows, _total_pages in self._pages(kind, params, page_size or self.page_size):
            yield from rows

    def _pages(
        self, kind: str, params: Mapping[str, Any] | None, size: int
    ) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """Each page's rows with the number of pages the list has (`meta.pagination.total_pages`)."""
        page = 1
        while True:
            body = self.get_json(f"{API}/{kind}", params={**(params or {}), "per_page": size, "page": page})
            total_pages = body.get("meta", {}).get("pagination", {}).get("total_pages", page)
            yield body["data"], total_pages
            if page >= total_pages or not body["data"]:
                return
            page += 1

    def changed_since(
        self, kind: str, since: int, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """The sweep's read: `updated_at >= since` (Unix seconds, inclusive), oldest change first, with
        archived and deleted rows (their changes are changes too)."""
        params = {"updated_at": int(since), "sort": "updated_at|asc", "status": ALL_STATUSES, **filters}
        return self.paginate(kind, params, page_size=page_size)

    def iter_modified(
        self, kind: str, since: int, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """The sweep's read paged by key, oldest change first: `updated_at >= boundary`, the boundary moving
        to the last row's `updated_at` after each page, so an edit during the sweep moves its row to the
        end instead of shifting the rest past a page. Invoice Ninja filters `>=` on whole seconds and sorts
        by one column, so the rows of the boundary second already yielded are asked for again (the page
        grows by them) and skipped by id: an offset inside that second could skip a row when one moves."""
        size = page_size or self.page_size
        boundary, seen = int(since), set()
        while True:
            per_page = min(len(seen) + size, MAX_PER_PAGE)
            params = {"updated_at": boundary, "sort": "updated_at|asc", "status": ALL_STATUSES, **filters}
            rows = self.get_json(f"{API}/{kind}", params={**params, "per_page": per_page, "page": 1})["data"]
            fresh = [row for row in rows if row["id"] not in seen]
            yield from fresh
            if len(rows) < per_page:
                return
            last = int(rows[-1]["updated_at"])
            if last == boundary and not fresh:
                log.warning(
                    "invoiceninja %s: over %s changes at %s; the rest waits for later", kind, per_page, last
                )
                return
            if last != boundary:
                boundary, seen = last, set()
            seen |= {row["id"] for row in rows if int(row["updated_at"]) == last}

    def get(self, kind: str, entity_id: str, *, include: str | None = None) -> dict[str, Any] | None:
        """One entity, or None when Invoice Ninja does not know the id (404)."""
        params = {"include": include} if include else None
        try:
            return self._data(self.request("GET", f"{API}/{kind}/{entity_key(entity_id)}", params=params))
        except Permanent as exc:
            if exc.status == 404:
                return None
            raise

    def update(
        self, kind: str, entity_id: str, changes: Mapping[str, Any], *,
        params: Mapping[str, Any] | None = None, idempotent: bool = True,
    ) -> dict[str, Any]:  # fmt: skip
        """PUT the fields given (Invoice Ninja keeps the others); repeating it is harmless unless a query
        flag triggers an effect (`send_email`)."""
        path = f"{API}/{kind}/{entity_key(entity_id)}"
        return self._data(self.request("PUT", path, json=dict(changes), params=params, idempotent=idempotent))

    def bulk(self, kind: str, action: str, ids: list[str]) -> list[dict[str, Any]]:
        """archive / restore / delete (and mark_sent for invoices): each is a no-op when repeated, so a
        lost answer is retried. `mark_paid` is left out on purpose: it creates a payment without our key."""
        if action not in BULK_ACTIONS or (action == "mark_sent" and kind != "invoices"):
            raise ValueError(f"unsupported bulk action {action!r} for {kind}")
        body = {"action": action, "ids": list(ids)}
        return self._data(self.request("POST", f"{API}/{kind}/bulk", json=body, idempotent=True))

    def archive(self, kind: str, entity_id: str) -> dict[str, Any]:
        return self.bulk(kind, "archive", [entity_id])[0]

    def restore(self, kind: str, entity_id: str) -> dict[str, Any]:
        return self.bulk(kind, "restore", [entity_id])[0]

    def delete(self, kind: str, entity_id: str) -> dict[str, Any]:
        """Invoice Ninja's delete is soft (`is_deleted`), and restorable."""
        return self.bulk(kind, "delete", [entity_id])[0]

    def find(
        self, kind: str, field: str, value: Any, *, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The first entity whose `field` equals `value`, whatever its status. `params` narrow the list on
        the server; the match is always checked here, so a filter the server ignores costs time, not
        correctness."""
        query = {"status": ALL_STATUSES, **(params or {})}
        return next((e for e in self.paginate(kind, query) if _field_equals(e, field, value)), None)

    # --- clients -------------------------------------------------------------------------------------

    def find_client(self, field: str, value: str) -> dict[str, Any] | None:
        """By our marker: `id_number` or `number` (unique per company) or a contact's `email`."""
        if field not in CLIENT_MARKERS:
            raise ValueError(f"clients are found by one of {CLIENT_MARKERS}, not {field!r}")
        # `filter` is Invoice Ninja's search over names, numbers and contacts' emails: it narrows the list
        # the match is then checked on, instead of paging through every client.
        return self.find("clients", field, value, params={field: value, "filter": value})

    def find_clients(
        self, wanted: list[tuple[str, str] | None], *, most_pages: int
    ) -> list[dict[str, Any] | None] | None:
        """`find` for many clients, each by one (field, value), from one listing of every client: Invoice
        Ninja's filters take one email each, so a look-up alone costs a request per client. The list is in
        `id` order, where new clients come last, so paging it skips none. None when the list is longer
        than `most_pages` pages (known from its first page; at once when `most_pages` is 0): then each is
        asked for alone."""
        if most_pages < 1:
            return None
        first: dict[tuple[str, str], dict[str, Any]] = {}
        query = {"status": ALL_STATUSES, "sort": "id|asc"}
        for rows, total_pages in self._pages("clients", query, LOOKUP_PAGE):
            if total_pages > most_pages:
                return None
            for client in rows:
                for key in _client_keys(client):
                    first.setdefault(key, client)
        return [first.get(_folded(*pair)) if pair else None for pair in wanted]

    def create_client(self, effect: Effect, client: Mapping[str, Any], *, marker: str = "id_number") -> dict:
        """`{"name", "contacts": [{"first_name", "last_name", "email"}], "id_number": <our record id>, …}`;
        `marker` names the field (id_number, number or email) that identifies our record."""
        value = _contact_email(client) if marker == "email" else client.get(marker)
        return self._create_by_marker(effect, "clients", client, marker, value, self.find_client)

    def update_client(self, client_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self.update("clients", client_id, changes)

    def get_client(self, client_id: str) -> dict[str, Any] | None:
        return self.get("clients", client_id)

    # --- products ------------------------------------------------------------------------------------

    def find_product(self, product_key: str) -> dict[str, Any] | None:
        return self.find("products", "product_key", product_key, params={"product_key": product_key})

    def create_product(self, effect: Effect, product: Mapping[str, Any]) -> dict[str, Any]:
        """`{"product_key", "notes", "price", "cost", …}`; the product key is the marker."""
        return self._create_by_marker(
            effect, "products", product, "product_key", product.get("product_key"),
            lambda _field, key: self.find_product(key),
        )  # fmt: skip

    # --- invoices ------------------------------------------------------------------------------------

    def find_invoice(self, number: str) -> dict[str, Any] | None:
        return self.find("invoices", "number", number, params={"number": number})

    def create_invoice(
        self, effect: Effect, invoice: Mapping[str, Any], *, mark_sent: bool = False, send_email: bool = False
    ) -> dict[str, Any]:
        """`{"client_id", "number", "date", "due_date", "line_items": [{"product_key", "notes", "cost",
        "quantity", "tax_name1", "tax_rate1", "type_id"}]}`; the invoice number is the marker, so it must be
        ours. The flags are applied by the same request, so a found invoice is never sent twice."""
        return self._create_by_marker(
            effect, "invoices", invoice, "number", invoice.get("number"),
            lambda _field, number: self.find_invoice(number),
            params=_flags(mark_sent=mark_sent, send_email=send_email),
        )  # fmt: skip

    def update_invoice(
        self, invoice_id: str, changes: Mapping[str, Any], *, mark_sent: bool = False,
        send_email: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """A PUT is repeatable, except with `send_email` (a repeat would send the email again)."""
        params = _flags(mark_sent=mark_sent, send_email=send_email)
        return self.update("invoices", invoice_id, changes, params=params or None, idempotent=not send_email)

    def get_invoice(self, invoice_id: str, *, include_client: bool = False) -> dict[str, Any] | None:
        return self.get("invoices", invoice_id, include="client" if include_client else None)

    def mark_sent(self, invoice_id: str) -> dict[str, Any]:
        """Draft → sent (no email); a no-op on an invoice already sent."""
        return self.bulk("invoices", "mark_sent", [invoice_id])[0]

    # --- payments ------------------------------------------------------------------------------------

    def find_payment(
        self, *, idempotency_key: str | None = None, transaction_reference: str | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any] | None:  # fmt: skip
        """By our idempotency key when the answer carries it, else by the transaction reference (the
        Revolut transaction id). The list filter searches references; the match is checked here."""
        params: dict[str, Any] = {"sort": "created_at|desc"}
        if client_id:
            params["client_id"] = client_id
        if transaction_reference:
            params["filter"] = transaction_reference
        for payment in self.paginate("payments", {"status": ALL_STATUSES, **params}):
            if idempotency_key and payment.get("idempotency_key") == idempotency_key:
                return payment
            if transaction_reference and payment.get("transaction_reference") == transaction_reference:
                return payment
        return None

    def create_payment(self, effect: Effect, payment: Mapping[str, Any]) -> dict[str, Any]:
        """`{"client_id", "amount", "date", "type_id", "transaction_reference", "invoices": [{"invoice_id",
        "amount"}]}`. Sent with `idempotency_key` = the Attempt's vendor key, so a lost answer is simply
        repeated; Invoice Ninja refuses the repeat (422 on the key), which means it is done: read it back."""
        return once(effect, lambda attempt: self.record_payment(attempt, payment))

    def record_payment(self, attempt: Attempt, payment: Mapping[str, Any]) -> dict[str, Any]:
        """The call inside `once` (for callers running their own `once`/`create_once`): send with the
        attempt's vendor key, read back when recovering or when the key is refused as taken."""

        def read_back() -> dict[str, Any] | None:
            return self.find_payment(
                idempotency_key=attempt.vendor_key,
                transaction_reference=payment.get("transaction_reference"),
                client_id=payment.get("client_id"),
            )

        if attempt.recovering and (found := read_back()) is not None:
            return found
        body = {**payment, "idempotency_key": attempt.vendor_key}
        try:
            return self._data(self.request("POST", f"{API}/payments", json=body, idempotent=True))
        except Permanent as exc:
            if not _idempotency_key_taken(exc):
                raise
        found = read_back()
        if found is None:  # the key is ours and taken, yet nothing answers to it: look again later
            raise Retryable(f"invoiceninja payment {attempt.key}: key taken but not found yet", 5.0)
        log.info("invoiceninja: payment %s was already recorded; read back", attempt.key)
        return found

    # --- expenses and vendors ------------------------------------------------------------------------

    def find_expense(self, field: str, value: str) -> dict[str, Any] | None:
        """By `number` (unique per company) or `transaction_reference`."""
        params = {"number": value} if field == "number" else {"filter": value}
        return self.find("expenses", field, value, params=params)

    def create_expense(
        self, effect: Effect, expense: Mapping[str, Any], *, marker: str = "number"
    ) -> dict[str, Any]:
        """`{"vendor_id", "category_id", "amount", "date", "number": <ours, e.g. the document hash prefix>,
        "transaction_reference", "public_notes", "private_notes"}`."""
        value = expense.get(marker)
        return self._create_by_marker(effect, "expenses", expense, marker, value, self.find_expense)

    def find_vendor(self, field: str, value: str) -> dict[str, Any] | None:
        """By `number` or `id_number`."""
        return self.find("vendors", field, value, params={field: value})

    def create_vendor(self, effect: Effect, vendor: Mapping[str, Any], *, marker: str = "number") -> dict:
        """`{"name", "number" or "id_number": <ours>, "contacts": [...], "vat_number", …}`."""
        return self._create_by_marker(effect, "vendors", vendor, marker, vendor.get(marker), self.find_vendor)

    # --- helpers -------------------------------------------------------------------------------------

    def _create_by_marker(
        self, effect: Effect, kind: str, body: Mapping[str, Any], field: str, value: Any,
        find: Callable[[str, str], dict[str, Any] | None], *, params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Create once an entity that our own value of `field` identifies: looked up by it under its lock
        (Connector.create_once), created only when absent."""
        if not value:
            raise ValueError(f"{kind} need their marker field {field!r} to be created once")
        return self.create_once(
            effect,
            marker=f"{kind}:{field}:{value}",
            find=lambda: find(field, str(value)),
            create=lambda _attempt: self.create(kind, body, params=params),
        )

    def create(
        self, kind: str, body: Mapping[str, Any], *, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One POST, never repeated here: a lost answer raises Ambiguous. Call it only inside create_once
        (as the `create_*` methods do), which finds the object by its marker instead of creating it again."""
        return self._data(self.request("POST", f"{API}/{kind}", json=dict(body), params=params or None))

    @staticmethod
    def _data(response: requests.Response) -> Any:
        return response.json()["data"]


def _flags(**flags: bool) -> dict[str, str]:
    return {name: "true" for name, on in flags.items() if on}


def _contact_email(client: Mapping[str, Any]) -> str | None:
    contacts = client.get("contacts") or []
    return next((c["email"] for c in contacts if c.get("email")), None)


def _field_equals(entity: Mapping[str, Any], field: str, value: Any) -> bool:
    """Equality as Invoice Ninja compares: emails case-insensitively, over every contact."""
    wanted = _folded(field, value)
    if field == "email":
        return any(_folded(field, c.get("email", "")) == wanted for c in entity.get("contacts") or [])
    return entity.get(field) not in (None, "") and _folded(field, entity[field]) == wanted


def _client_keys(client: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """What a client may be found by (`find_client`'s markers, `find`'s name), each folded as
    `_field_equals` compares it."""
    for contact in client.get("contacts") or []:
        if contact.get("email"):
            yield _folded("email", contact["email"])
    for field in ("name", "id_number", "number"):
        if client.get(field) not in (None, ""):
            yield _folded(field, client[field])


def _folded(field: str, value: Any) -> tuple[str, str]:
    """A value as Invoice Ninja compares it: an email whatever its case and surrounding spaces."""
    return (field, str(value).strip().lower()) if field == "email" else (field, str(value))


def _idempotency_key_taken(exc: Permanent) -> bool:
    """422 with an `idempotency_key` validation error ("has already been taken")."""
    errors = exc.body.get("errors") if exc.status == 422 and isinstance(exc.body, dict) else None
    return isinstance(errors, dict) and "idempotency_key" in errors


def entity_key(entity_id: Any) -> str:
    """Invoice Ninja's ids are hashids (letters and digits)."""
    return segment(entity_id, "hashid", what="invoice ninja id")
