"""Flow F6 (docs/architecture.md, Flows): an uploaded receipt or supplier invoice, read by OpenAI vision,
validated, then booked in Invoice Ninja, ERPNext and Directus, or handed to a human with the reasons. Nothing
invented.

The reader is chosen per document (`choose_engine`): OpenAI, or Tesseract offline when OpenAI is not
configured or its breaker is open; either way only a reading that passes every check is booked.

Document status: received → reading → extracted → booked, or → review (a Directus `reviews` item says why).
`read_document` claims the row under a row lock (received → reading), so two tasks never read a document
twice; a claim older than READING_LEASE is taken over (a worker killed mid-read). A document whose reader
was lost (killed, out of memory, past its hard time limit) or ran out of time READER_LOSS_LIMIT times goes
to review instead of being handed out again forever. Each effect runs once under a key derived from the
document's sha256:

ocr:expense:invoiceninja:<sha>   the Invoice Ninja expense (number DOC-<sha[:16]>)
ocr:purchase:erpnext:<sha>       the ERPNext Purchase Invoice draft (remarks tag [syncengine:doc:<sha[:16]>])
ocr:expense:directus:<sha>       the Directus `expenses` item (ext_id document:<sha>)
ocr:review:directus:<sha>        the review item, at most one per document
ocr:vendor:invoiceninja:<sha>    the vendor (number SUP-<hash of the supplier's name>), the Supplier and the
ocr:supplier:erpnext:<sha>       expense Item: per document, so each booking looks them up again under the
ocr:item:erpnext:<sha>           lock on their name (one deleted meanwhile is made again, never assumed)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select

from connectors import connector_for, tesseract_ocr
from connectors.openai_ocr import Extraction, OpenAIOcr
from connectors.tesseract_ocr import TesseractOcr
from syncengine import counters
from syncengine.breaker import OPEN, breaker_for
from syncengine.celery_app import app
from syncengine.db import session_scope
from syncengine.errors import CircuitOpen, Permanent, Retryable
from syncengine.idempotency import Effect
from syncengine.models import Document, utcnow
from syncengine.ocr.prepare import Unreadable
from syncengine.ocr.validation import amount, validate
from syncengine.redaction import redact
from syncengine.settings import get_settings
from syncengine.vendors import invoiceninja
from syncengine.vendors.erpnext import ITEM_DEFAULTS

from .dispatch import run_or_review

log = logging.getLogger(__name__)

RECEIVED, READING, EXTRACTED, BOOKED, REVIEW = "received", "reading", "extracted", "booked", "review"
# OCR's own limits (the default task limits are 240/300 s): the SDK's timeout and retries fit inside.
OCR_SOFT_TIME_LIMIT = 150
OCR_TIME_LIMIT = 180
OCR_REQUEST_TIMEOUT = 45.0
READING_LEASE = timedelta(seconds=OCR_TIME_LIMIT + 60)
MAX_RETRIES = 8
# Readings that died or ran out of time before the document goes to review: one bad file must not crash
# workers forever; a deploy's restart or a slow API call now and then must not send a good one to review.
READER_LOSS_LIMIT = 3
READER_LOSSES = "ocr_reader_losses"  # a shared count per document (syncengine.counters)
EXPENSE_ITEM = "OCR Expense"  # the ERPNext Item on every Purchase Invoice row made from a document


# OCR reads and bookings wait up to 10 s before their first retry, twice the usual base.
OCR_BACKOFF_BASE = 10.0


@cache
def ocr_engine() -> OpenAIOcr:
    """One OpenAI client per process (raises Permanent when OPENAI_API_KEY is not set)."""
    return OpenAIOcr(timeout=OCR_REQUEST_TIMEOUT)


@cache
def offline_engine() -> TesseractOcr:
    """Tesseract (raises Permanent when pytesseract or the binary is missing)."""
    return TesseractOcr()


def choose_engine(preference: str | None = None) -> OpenAIOcr | TesseractOcr:
    """The engine for `preference` ("openai", "tesseract", else SYNCENGINE_OCR_ENGINE). "auto": OpenAI when
    its key is set and its breaker is not open, else Tesseract when installed, else OpenAI (whose open breaker
    then retries the task)."""
    preference = (preference or get_settings().ocr_engine).lower()
    if preference == "tesseract":
        return offline_engine()
    if preference == "openai":
        return ocr_engine()
    configured = get_settings().openai_api_key is not None
    if configured and breaker_for(OpenAIOcr.service).state() != OPEN:
        return ocr_engine()
    if tesseract_ocr.available():
        log.info("OCR offline with Tesseract: OpenAI %s", "unavailable" if configured else "not configured")
        return offline_engine()
    return ocr_engine()


# ---- the tasks ------------------------------------------------------------------------------------


@app.task(
    name="tasks.ocr.read_document", bind=True, acks_late=True, max_retries=MAX_RETRIES,
    soft_time_limit=OCR_SOFT_TIME_LIMIT, time_limit=OCR_TIME_LIMIT,
)  # fmt: skip
def read_document(self, document_id: int) -> str:  # type: ignore[no-untyped-def]
    outcome = _retry_or_review(
        self, document_id, lambda: read(document_id), "OCR", _why,
        retryable=(Retryable, SoftTimeLimitExceeded), hopeless=lambda exc: _out_of_time(document_id, exc),
        release=True,
    )  # fmt: skip
    if outcome == EXTRACTED:
        book_expense.apply_async((document_id,))
    return outcome


@app.task(name="tasks.ocr.redeliver_documents", acks_late=True)
def redeliver_documents(grace_seconds: float = 15 * 60.0, limit: int = 200) -> int:
    """Hand over again the documents whose task never reached a worker or died with one: stored while the
    broker was down, read by a worker killed before its booking was published. Left alone for `grace`
    (longer than a retry usually waits); a repeat is skipped by the status each step checks."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with session_scope() as session:
        stuck = session.execute(
            select(Document.id, Document.status)
            .where(Document.status.in_((RECEIVED, READING, EXTRACTED)), Document.updated_at <= cutoff)
            .order_by(Document.id)
            .limit(limit)
        ).all()
    for document_id, status in stuck:
        (book_expense if status == EXTRACTED else read_document).apply_async((document_id,))
    if stuck:
        log.info("redelivered %s documents", len(stuck))
    return len(stuck)


@app.task(name="tasks.ocr.book_expense", bind=True, acks_late=True, max_retries=MAX_RETRIES)
def book_expense(self, document_id: int) -> str:  # type: ignore[no-untyped-def]
    return _retry_or_review(
        self, document_id, lambda: book(document_id), "booking", lambda exc: redact(str(exc))
    )


def _retry_or_review(
    task: Task,
    document_id: int,
    work: Callable[[], str],
    step: str,
    describe: Callable[[Exception], str],
    *,
    retryable: tuple[type[Exception], ...] = (Retryable,),
    hopeless: Callable[[Exception], str | None] | None = None,
    release: bool = False,
) -> str:
    """The shared rule (tasks.dispatch.run_or_review) as both OCR tasks use it: up to MAX_RETRIES retries
    on OCR's longer backoff, then the document to review. `work` reviews its own Permanent failures, each
    with its own words; a review is the document's outcome, not a failure of its outbox row; the retry is
    Celery's bare Retry (no exception carried). A read that will be retried gives its claim back first."""

    def retrying(exc: Exception, wait: float) -> None:
        why = describe(exc)
        if release:
            _release(document_id, why)
        log.warning("document %s: %s will be retried in %.0f s: %s", document_id, step, wait, why)

    return run_or_review(
        task, work, lambda reason: _to_review(document_id, [reason]), limit=MAX_RETRIES, what=None,
        retryable=retryable, permanent=(), hopeless=hopeless, base=OCR_BACKOFF_BASE, before_retry=retrying,
        gave_up=lambda retries, exc: f"{step} failed after {retries} retries: {describe(exc)}", carry=False,
    )  # fmt: skip


def _why(exc: Exception) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


def _out_of_time(document_id: int, exc: Exception) -> str | None:
    """A reading past its soft time limit counts as a lost reader: the last one allowed sends the document
    to review rather than to another try."""
    if isinstance(exc, SoftTimeLimitExceeded) and _lost_reader(document_id) >= READER_LOSS_LIMIT:
        return _gave_up(f"ran out of its {OCR_SOFT_TIME_LIMIT} s")
    return None


# ---- reading --------------------------------------------------------------------------------------


def read(document_id: int, today: date | None = None) -> str:
    """Read one document once; returns its new status ("skipped" when another task has it or had it)."""
    claimed = _claim(document_id)
    if claimed is None:
        return "skipped"
    blob, losses = claimed
    if losses >= READER_LOSS_LIMIT:
        return _to_review(document_id, [_gave_up("was killed or stopped mid-read")])
    if not blob:
        return _to_review(document_id, ["the document has no stored bytes"])
    try:
        engine = choose_engine()
    except Permanent as exc:
        return _to_review(document_id, [f"OCR not configured: {exc}"])
    try:
        extraction = _extract(engine, blob)
    except Unreadable as exc:
        return _to_review(document_id, [str(exc)])
    except Permanent as exc:
        return _to_review(document_id, [f"OCR failed: {redact(str(exc))}"])
    return _judge(document_id, extraction, today or datetime.now(UTC).date())


def _extract(engine: OpenAIOcr | TesseractOcr, blob: bytes) -> Extraction:
    """Read with the chosen engine; a breaker that opened meanwhile hands the page to Tesseract."""
    try:
        return engine.extract_document(blob)
    except CircuitOpen:
        if isinstance(engine, TesseractOcr) or not tesseract_ocr.available():
            raise
        return offline_engine().extract_document(blob)


def _lost_reader(document_id: int) -> int:
    """Count one reading of the document that died or ran out of time; the total so far."""
    return counters.bump(READER_LOSSES, str(document_id))


def _gave_up(how: str) -> str:
    return (
        f"the OCR reader {how} {READER_LOSS_LIMIT} times on this document without finishing (too large or "
        "malformed?): it is not read again; check the file and upload a smaller or cleaner copy"
    )


def _claim(document_id: int) -> tuple[bytes, int] | None:
    """(the bytes, how many readings were lost so far) once claimed; None when another task has it."""
    with session_scope() as session:
        doc = session.execute(
            select(Document).where(Document.id == document_id).with_for_update()
        ).scalar_one_or_none()
        if doc is None:
            log.warning("document %s does not exist", document_id)
            return None
        stale = doc.status == READING and doc.updated_at < utcnow() - READING_LEASE
        if doc.status != RECEIVED and not stale:
            log.info("document %s is %s, not read again", document_id, doc.status)
            return None
        doc.status = READING
        doc.updated_at = utcnow()
        blob = bytes(doc.blob or b"")
    # A stale claim is a reader that never came back: it counts, in a store that outlives the worker.
    return blob, _lost_reader(document_id) if stale else 0


def _release(document_id: int, reason: str) -> None:
    """A failed read that will be retried gives the claim back."""
    with session_scope() as session:
        doc = session.execute(
            select(Document).where(Document.id == document_id).with_for_update()
        ).scalar_one_or_none()
        if doc is not None and doc.status == READING:
            doc.status, doc.error = RECEIVED, reason[:2000]


def _judge(document_id: int, extraction: Extraction, today: date) -> str:
    if not extraction.ok or extraction.data is None:
        reason = {
            "refused": "the model refused to read the document",
            "truncated": "the model's answer was cut off (output token limit)",
            "invalid": "the model's answer was not valid JSON for the schema",
        }.get(extraction.status, f"model outcome {extraction.status}")
        detail = f": {extraction.detail}" if extraction.detail else ""
        return _to_review(document_id, [reason + detail])
    validation = validate(extraction.data, today)
    with session_scope() as session:
        doc = session.get(Document, document_id, with_for_update=True)
        assert doc is not None
        doc.extracted = extraction.data
        doc.confidence = validation.confidence
    if not validation.ok:
        offline = [f"read offline by {extraction.model}"] if extraction.engine != "openai" else []
        return _to_review(document_id, [*validation.reasons, *offline])
    with session_scope() as session:
        doc = session.get(Document, document_id, with_for_update=True)
        assert doc is not None
        doc.status, doc.error = EXTRACTED, None
    counters.forget(READER_LOSSES, str(document_id))
    log.info("document %s extracted by %s, confidence %.2f", document_id, extraction.engine,
             validation.confidence)  # fmt: skip
    return EXTRACTED


def _to_review(document_id: int, reasons: list[str]) -> str:
    """A Directus review item with the reasons (once per document), and the document marked `review`."""
    with session_scope() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            return "skipped"
        sha, filename, extracted, confidence = doc.sha256, doc.filename, doc.extracted, doc.confidence
    review = {
        "ext_id": f"document:{sha}",
        "kind": "ocr",
        "title": f"Document {document_id} ({filename or 'upload'}) needs review",
        "details": "; ".join(reasons),
        "reasons": reasons,
        "document_id": document_id,
        "confidence": confidence,
        "extracted": extracted,
    }
    effect = Effect(f"ocr:review:directus:{sha}", "directus", "create_review", {"ext_id": review["ext_id"]})
    connector_for("directus").create_review(effect, review)
    with session_scope() as session:
        doc = session.get(Document, document_id, with_for_update=True)
        assert doc is not None
        doc.status, doc.error = REVIEW, "; ".join(reasons)[:2000]
    counters.forget(READER_LOSSES, str(document_id))
    log.info("document %s sent to review: %s", document_id, "; ".join(reasons))
    return REVIEW


# ---- booking --------------------------------------------------------------------------------------


def book(document_id: int) -> str:
    """Book an extracted document in the three systems; a re-run finds what an earlier run created."""
    with session_scope() as session:
        doc = session.get(Document, document_id)
        if doc is None or doc.status not in (EXTRACTED, BOOKED):
            return "skipped"
        if doc.status == BOOKED:
            return BOOKED
        sha, data = doc.sha256, dict(doc.extracted or {})
    try:
        expense = _invoiceninja(sha, data)
        purchase = _erpnext(sha, data)
        _directus(document_id, sha, data, expense, purchase)
    except Permanent as exc:
        return _to_review(document_id, [f"booking failed: {redact(str(exc))}"])
    with session_scope() as session:
        doc = session.get(Document, document_id, with_for_update=True)
        assert doc is not None
        doc.status = BOOKED
    log.info(
        "document %s booked: expense %s, purchase invoice %s", document_id, expense["id"], purchase["name"]
    )
    return BOOKED


def _supplier_name(data: dict[str, Any]) -> str:
    return " ".join(str((data.get("supplier") or {}).get("name") or "").split())


def _name_key(name: str) -> str:
    return hashlib.sha256(name.casefold().encode()).hexdigest()[:16]


def _number(value: Any) -> float:
    found = amount(value)
    if found is None:
        raise Permanent(f"not an amount: {value!r}")
    return float(found)


def _invoiceninja(sha: str, data: dict[str, Any]) -> dict[str, Any]:
    connector = connector_for("invoiceninja")
    name = _supplier_name(data)
    vendor = connector.find("vendors", "name", name, params={"filter": name})
    if vendor is None:
        body = {"name": name, "number": f"SUP-{_name_key(name)}"}
        vat_id = (data.get("supplier") or {}).get("vat_id")
        effect = Effect(f"ocr:vendor:invoiceninja:{sha}", "invoiceninja", "create_vendor", body)
        vendor = connector.create_vendor(effect, {**body, "vat_number": vat_id} if vat_id else body)
    expense: dict[str, Any] = {
        "vendor_id": vendor["id"],
        "amount": _number(data["total"]),
        "date": data["issue_date"],
        "number": f"DOC-{sha[:16]}",
        "transaction_reference": data.get("number") or "",
        "public_notes": f"{name} {data.get('number') or ''}".strip(),
        "private_notes": f"syncengine document sha256 {sha}",
        "tax_name1": "VAT",
        "tax_amount1": _number(data["vat"]),
        "uses_inclusive_taxes": True,
        "calculate_tax_by_amount": True,
    }
    if data["currency"] in invoiceninja.CURRENCY_IDS:
        expense["currency_id"] = invoiceninja.CURRENCY_IDS[data["currency"]]
    effect = Effect(f"ocr:expense:invoiceninja:{sha}", "invoiceninja", "create_expense", expense)
    return connector.create_expense(effect, expense)


def _erpnext(sha: str, data: dict[str, Any]) -> dict[str, Any]:
    erp = connector_for("erpnext")
    name = _supplier_name(data)
    supplier_doc: dict[str, Any] = {"supplier_name": name}
    effect = Effect(f"ocr:supplier:erpnext:{sha}", "erpnext", "ensure_supplier", supplier_doc)
    vat_id = (data.get("supplier") or {}).get("vat_id")
    body = {**supplier_doc, "tax_id": vat_id} if vat_id else supplier_doc
    supplier = erp.ensure(effect, "Supplier", body, match=[["supplier_name", "=", name]], marker=name)
    item = {**ITEM_DEFAULTS, "item_code": EXPENSE_ITEM, "item_name": EXPENSE_ITEM}
    erp.ensure_item(Effect(f"ocr:item:erpnext:{sha}", "erpnext", "ensure_item", item), item)
    tag = f"[syncengine:doc:{sha[:16]}]"
    # One row per line at its amount (qty 1), so ERPNext's net is the document's net exactly.
    rows = [
        {"item_code": EXPENSE_ITEM, "description": str(line.get("description") or EXPENSE_ITEM)[:140],
         "qty": 1, "rate": _number(line.get("amount"))}
        for line in data["lines"]
    ]  # fmt: skip
    if abs(sum(r["rate"] for r in rows) - _number(data["net"])) > 0.01 * len(rows):
        # Gross-priced lines (the validation accepted lines summing to the total): book the net as one row.
        rows = [
            {"item_code": EXPENSE_ITEM, "description": name[:140], "qty": 1, "rate": _number(data["net"])}
        ]
    tax = {"charge_type": "Actual", "description": "VAT", "rate": 0, "tax_amount": _number(data["vat"])}
    account = get_settings().services["erpnext"].options.get("tax_account")
    invoice: dict[str, Any] = {
        "supplier": supplier["name"],
        "posting_date": data["issue_date"],
        "set_posting_time": 1,
        "bill_date": data["issue_date"],
        "currency": data["currency"],
        "items": rows,
        "taxes": [{**tax, "account_head": account} if account else tax] if _number(data["vat"]) else [],
        "remarks": f"{name} {data.get('number') or ''} {tag}".strip(),
    }
    if data.get("number"):
        invoice["bill_no"] = str(data["number"])[:140]
    if isinstance(data.get("due_date"), str) and data["due_date"] >= data["issue_date"]:
        invoice["due_date"] = data["due_date"]
    effect = Effect(f"ocr:purchase:erpnext:{sha}", "erpnext", "purchase_invoice", invoice)
    return erp.ensure(
        effect, "Purchase Invoice", invoice, match=[["remarks", "like", f"%{tag}%"]], marker=f"doc:{sha}",
        accept=lambda row: tag in str(row.get("remarks") or ""),
    )  # fmt: skip


def _directus(
    document_id: int, sha: str, data: dict[str, Any], expense: dict[str, Any], purchase: dict[str, Any]
) -> dict[str, Any]:
    item = {
        "ext_id": f"document:{sha}",
        "document_id": document_id,
        "supplier": _supplier_name(data),
        "number": data.get("number"),
        "date": data["issue_date"],
        "currency": data["currency"],
        "net": _number(data["net"]),
        "vat": _number(data["vat"]),
        "total": _number(data["total"]),
        "invoiceninja_expense_id": expense.get("id"),
        "erpnext_purchase_invoice": purchase.get("name"),
        "status": "draft",
    }
    effect = Effect(f"ocr:expense:directus:{sha}", "directus", "create_expense_item", item)
    return connector_for("directus").create_item(effect, "expenses", item)
