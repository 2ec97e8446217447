"""Flow F6, first slice: POST /documents intake, OCR through the OpenAI simulator, validation, booking in the
Invoice Ninja, ERPNext and Directus simulators (loopback HTTP), or a Directus review item."""

from __future__ import annotations

import base64
import logging
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import Document
from syncengine.ocr.validation import validate
from syncengine.settings import get_settings

DOCS_TOKEN = "docs-token-test-51c9e2a7"
OPENAI_KEY = "sk-docs-test-8b2e6f10c3"
# Credentials of this module only: the receiver registers every configured secret with the process-wide log
# redaction, so a common word ("TOKEN") would be masked inside other tests' log lines.
IN_TOKEN = "in-docs-token-4b7d1e93"
ERP_KEY, ERP_SECRET = "erp-docs-key-2c8f", "erp-docs-secret-71ad5e"
DIRECTUS_TOKEN = "dx-docs-token-9e04b6c1"
TODAY = datetime.now(UTC).date()


def png(seed: bytes | None = None, width: int = 8, height: int = 8) -> bytes:
    """A small valid PNG (RGB), different for each seed."""
    seed = seed or os.urandom(16)
    rows = b"".join(b"\x00" + (seed * (width * 3))[: width * 3] for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def receipt(supplier: str, **changes: Any) -> dict[str, Any]:
    data = {
        "supplier": {"name": supplier, "vat_id": "FR40303265045", "address": None},
        "number": f"R-{uuid.uuid4().hex[:6]}",
        "issue_date": (TODAY - timedelta(days=3)).isoformat(),
        "due_date": None,
        "currency": "EUR",
        "lines": [
            {"description": "Paper", "quantity": 2, "unit_price": 10.0, "vat_rate": 20, "amount": 20.0},
            {"description": "Toner", "quantity": 1, "unit_price": 30.5, "vat_rate": 20, "amount": 30.5},
        ],
        "net": 50.5,
        "vat": 10.1,
        "total": 60.6,
        "payment": None,
    }
    return data | changes


# ---- the pure validation -----------------------------------------------------------------------------


def test_validation_passes_a_consistent_receipt():
    result = validate(receipt("Bureau Vallée"), TODAY)
    assert result.ok and result.confidence == 1.0 and result.reasons == []


def test_validation_accepts_gross_priced_lines_and_rounding():
    data = receipt("Café", lines=[{"description": "x", "amount": 60.6}], net=50.51, vat=10.1, total=60.6)
    assert validate(data, TODAY).ok


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"total": 70.0}, "totals"),
        ({"vat": None}, "totals"),
        ({"lines": [{"description": "x", "amount": 10.0}]}, "lines"),
        ({"lines": []}, "lines"),
        ({"currency": "EU"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": None}, "currency"),
        ({"issue_date": (TODAY + timedelta(days=2)).isoformat()}, "date"),
        ({"issue_date": (TODAY - timedelta(days=800)).isoformat()}, "date"),
        ({"issue_date": "20/11/2026"}, "date"),
        ({"supplier": {"name": " ", "vat_id": None, "address": None}}, "supplier"),
        ({"net": True}, "totals"),
    ],
)
def test_validation_failures_say_why(changes, check):
    result = validate(receipt("Shop") | changes, TODAY)
    assert not result.ok
    failed = [c for c in result.checks if not c.ok]
    assert check in [c.name for c in failed] and all(c.reason for c in failed)
    assert 0 <= result.confidence < 1


def test_confidence_is_the_share_of_checks_passed():
    result = validate(receipt("Shop", total=70.0, currency="EU"), TODAY)
    assert result.confidence == 0.6  # supplier, date and lines pass; totals and currency fail
    assert [c.name for c in result.checks if not c.ok] == ["currency", "totals"]


# ---- the deployment: four simulators, env pointed at them --------------------------------------------


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Any]]:
    from connectors import connector_for
    from simulators.directus import DirectusSimulator
    from simulators.erpnext import ERPNextSimulator
    from simulators.invoiceninja import InvoiceNinjaSimulator
    from simulators.openai import OpenAISimulator
    from tasks import ocr

    found = {
        "openai": OpenAISimulator(api_keys=(OPENAI_KEY,)),
        "invoiceninja": InvoiceNinjaSimulator(tokens=(IN_TOKEN,)),
        "erpnext": ERPNextSimulator(api_key=ERP_KEY, api_secret=ERP_SECRET),
        "directus": DirectusSimulator(token=DIRECTUS_TOKEN),
    }
    servers = {name: sim.serve() for name, sim in found.items()}
    try:
        with pytest.MonkeyPatch.context() as mp:
            env = {
                "SYNCENGINE_DOCUMENTS_TOKEN": DOCS_TOKEN,
                "SYNCENGINE_MAX_DOCUMENT_BYTES": str(64 * 1024),
                "OPENAI_API_KEY": OPENAI_KEY,
                "OPENAI_BASE_URL": f"{servers['openai'].url}/v1",
                "INVOICENINJA_URL": servers["invoiceninja"].url,
                "INVOICENINJA_TOKEN": IN_TOKEN,
                "ERPNEXT_URL": servers["erpnext"].url,
                "ERPNEXT_API_KEY": ERP_KEY,
                "ERPNEXT_API_SECRET": ERP_SECRET,
                "ERPNEXT_TAX_ACCOUNT": "VAT - MC",  # ERPNext refuses a tax row without one
                "DIRECTUS_URL": servers["directus"].url,
                "DIRECTUS_TOKEN": DIRECTUS_TOKEN,
            }
            for name, value in env.items():
                mp.setenv(name, value)
            caches = (get_settings, connector_for, ocr.ocr_engine)
            for cached in caches:
                cached.cache_clear()
            yield found
            for cached in caches:
                cached.cache_clear()
    finally:
        for server in servers.values():
            server.stop()
        get_settings.cache_clear()


@pytest.fixture()
def app_client(sims, monkeypatch):
    """The receiver's test client; publishes are recorded instead of sent (no worker reads "ocr" here)."""
    from webhooks import documents
    from webhooks.app import create_app

    published: list[int] = []
    monkeypatch.setattr(documents._publisher, "publish", published.append)
    client = create_app().test_client()
    client.published = published  # type: ignore[attr-defined]
    return client


def upload(client, data: bytes, name: str = "receipt.png", token: str | None = DOCS_TOKEN, **kw: Any):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    form = {"file": (BytesIO(data), name, kw.pop("content_type", "image/png"))}
    response = client.post("/documents", data=form, headers=headers, content_type="multipart/form-data")
    response.close()  # runs call_on_close: the publish after the answer
    return response


def chat_calls(sims) -> int:
    return len(sims["openai"].requests_log("POST", "/v1/chat/completions"))


def document(document_id: int) -> Document:
    with session_scope() as session:
        doc = session.get(Document, document_id)
        assert doc is not None
        return doc


def run_tasks(document_id: int, monkeypatch) -> str:
    """read_document through Celery's .apply(), with its follow-up book_expense applied in process too."""
    from tasks import ocr

    monkeypatch.setattr(ocr.book_expense, "apply_async", lambda args: ocr.book_expense.apply(args=args))
    return ocr.read_document.apply(args=(document_id,)).get()


def directus_items(collection: str, ext_id: str) -> list[dict[str, Any]]:
    from connectors import connector_for

    return list(connector_for("directus").items(collection, {"filter[ext_id][_eq]": ext_id}))


def expenses_numbered(number: str) -> list[dict[str, Any]]:
    from connectors import connector_for

    return [e for e in connector_for("invoiceninja").paginate("expenses") if e.get("number") == number]


def purchase_invoices(tag: str) -> list[dict[str, Any]]:
    from connectors import connector_for

    rows = connector_for("erpnext").list_page("Purchase Invoice", fields=("*",), limit=500)
    return [r for r in rows if tag in str(r.get("remarks") or "")]


# ---- intake ------------------------------------------------------------------------------------------


def test_no_token_is_401_and_wrong_token_too(app_client):
    assert upload(app_client, png(), token=None).status_code == 401
    assert upload(app_client, png(), token="docs-token-wrong").status_code == 401
    assert app_client.published == []


def test_not_configured_is_503(app_client, monkeypatch):
    monkeypatch.delenv("SYNCENGINE_DOCUMENTS_TOKEN")
    get_settings.cache_clear()
    try:
        response = upload(app_client, png())
        assert response.status_code == 503 and "not configured" in response.json["error"]
    finally:
        monkeypatch.setenv("SYNCENGINE_DOCUMENTS_TOKEN", DOCS_TOKEN)
        get_settings.cache_clear()


def test_text_named_png_is_415(app_client):
    response = upload(app_client, b"hello, I am a text file\n", name="receipt.png", content_type="image/png")
    assert response.status_code == 415
    assert app_client.published == []


def test_oversize_is_413(app_client):
    limit = get_settings().max_document_bytes
    big = png() + b"\x00" * (limit + 1)  # valid magic, too many bytes
    response = upload(app_client, big)
    assert response.status_code == 413
    assert app_client.published == []


def test_webp_jpeg_and_pdf_are_sniffed():
    from webhooks.documents import sniff

    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert sniff(b"%PDF-1.7\n") == "application/pdf"
    assert sniff(png()) == "image/png"
    assert sniff(b"GIF89a") is None


# ---- the flow ----------------------------------------------------------------------------------------


def test_receipt_is_booked_in_three_systems_and_read_once(app_client, sims, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    supplier = f"Bureau Vallée {uuid.uuid4().hex[:6]}"
    data = png()
    sims["openai"].queue_answer(json=receipt(supplier))
    before = chat_calls(sims)

    first = upload(app_client, data)
    assert first.status_code == 202, first.json
    document_id = first.json["id"]
    assert app_client.published == [document_id]
    assert run_tasks(document_id, monkeypatch) == "extracted"  # and book_expense ran after it

    again = upload(app_client, data, name="same-receipt-again.png")
    assert again.status_code == 200 and again.json["id"] == document_id and again.json["duplicate"]
    assert app_client.published == [document_id]  # not published again
    from tasks import ocr

    assert ocr.read_document.apply(args=(document_id,)).get() == "skipped"  # a redelivered task
    assert chat_calls(sims) == before + 1

    doc = document(document_id)
    assert doc.status == "booked" and doc.confidence == 1.0 and doc.content_type == "image/png"
    with session_scope() as session:
        same = session.execute(select(Document.id).where(Document.sha256 == doc.sha256)).scalars().all()
    assert same == [document_id]

    [expense] = expenses_numbered(f"DOC-{doc.sha256[:16]}")
    assert float(expense["amount"]) == 60.6 and expense["date"] == doc.extracted["issue_date"]
    [invoice] = purchase_invoices(f"[syncengine:doc:{doc.sha256[:16]}]")
    assert invoice["docstatus"] == 0 and invoice["supplier"] == supplier
    assert float(invoice["grand_total"]) == pytest.approx(60.6)
    [item] = directus_items("expenses", f"document:{doc.sha256}")
    assert item["total"] == 60.6 and item["erpnext_purchase_invoice"] == invoice["name"]
    assert directus_items("reviews", f"document:{doc.sha256}") == []

    # Booking again (a redelivered book_expense) changes nothing.
    assert ocr.book(document_id) == "booked"
    assert len(expenses_numbered(f"DOC-{doc.sha256[:16]}")) == 1

    # Neither the API key nor the image (raw or base64) is in any log line.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert OPENAI_KEY not in logged and DOCS_TOKEN not in logged
    assert base64.b64encode(data).decode()[:40] not in logged
    sent = sims["openai"].requests_log("POST", "/v1/chat/completions")[-1]["json"]
    assert base64.b64encode(data).decode() in sent["messages"][0]["content"][1]["image_url"]["url"]


def test_totals_that_do_not_add_up_go_to_review(app_client, sims, monkeypatch):
    supplier = f"Wrong Sums {uuid.uuid4().hex[:6]}"
    sims["openai"].queue_answer(json=receipt(supplier, total=75.0))
    response = upload(app_client, png())
    assert response.status_code == 202
    document_id = response.json["id"]
    assert run_tasks(document_id, monkeypatch) == "review"

    doc = document(document_id)
    assert doc.status == "review" and doc.confidence is not None and doc.confidence < 1
    [review] = directus_items("reviews", f"document:{doc.sha256}")
    assert "not the total 75" in review["details"] and review["document_id"] == document_id
    assert expenses_numbered(f"DOC-{doc.sha256[:16]}") == []
    assert purchase_invoices(f"[syncengine:doc:{doc.sha256[:16]}]") == []
    assert directus_items("expenses", f"document:{doc.sha256}") == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"refusal": "I'm sorry, I can't help with that."}, "refused"),
        ({"content": "{not json"}, "not valid JSON"),
    ],
)
def test_refusal_and_invalid_answer_go_to_review(app_client, sims, monkeypatch, answer, reason):
    sims["openai"].queue_answer(**answer)
    response = upload(app_client, png())
    document_id = response.json["id"]
    assert run_tasks(document_id, monkeypatch) == "review"
    doc = document(document_id)
    assert doc.status == "review" and doc.extracted is None
    [review] = directus_items("reviews", f"document:{doc.sha256}")
    assert reason in review["details"]
    assert directus_items("expenses", f"document:{doc.sha256}") == []


def test_a_damaged_pdf_goes_to_review_unread(app_client, sims, monkeypatch):
    before = chat_calls(sims)
    pdf = b"%PDF-1.4\n" + os.urandom(32).hex().encode() + b"\n%%EOF\n"
    response = upload(app_client, pdf, name="invoice.pdf", content_type="application/pdf")
    assert response.status_code == 202 and response.json["content_type"] == "application/pdf"
    assert run_tasks(response.json["id"], monkeypatch) == "review"
    doc = document(response.json["id"])
    assert doc.error.startswith("the PDF could not be rendered")
    assert chat_calls(sims) == before


def test_server_error_is_retried_and_the_claim_given_back(app_client, sims, monkeypatch):
    from celery.exceptions import Retry

    from tasks import ocr

    supplier = f"Retry Later {uuid.uuid4().hex[:6]}"
    response = upload(app_client, png())
    document_id = response.json["id"]
    sims["openai"].set_faults(fixed_status=500)
    try:
        with pytest.raises(Retry):
            ocr.read_document(document_id)  # called directly, Celery raises Retry instead of publishing
    finally:
        sims["openai"].clear_faults()
    doc = document(document_id)
    assert doc.status == "received" and "500" in (doc.error or "")

    sims["openai"].queue_answer(json=receipt(supplier))
    assert run_tasks(document_id, monkeypatch) == "extracted"
    assert document(document_id).status == "booked"


def _failing(exc: Exception):
    def step(document_id: int) -> str:
        raise exc

    return step


def test_a_retried_read_waits_on_ocr_backoff_and_says_so(app_client, sims, monkeypatch, caplog):
    from celery.exceptions import Retry

    from syncengine.errors import Retryable
    from tasks import ocr

    document_id = upload(app_client, png()).json["id"]
    monkeypatch.setattr(ocr, "read", _failing(Retryable("openai 503")))
    with caplog.at_level(logging.WARNING, logger="tasks.ocr"), pytest.raises(Retry) as retry:
        ocr.read_document.apply(args=(document_id,), retries=1, throw=True)
    assert retry.value.exc is None  # Celery's own Retry: the error is in the document and the log line
    wait = float(retry.value.when or -1)
    assert 0 <= wait <= 20  # the second step of OCR's 10 s base
    said = f"document {document_id}: OCR will be retried in {wait:.0f} s: Retryable: openai 503"
    assert said in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    ("task", "step", "reason"),
    [
        ("read_document", "read", "OCR failed after 8 retries: Retryable: openai 503"),
        ("book_expense", "book", "booking failed after 8 retries: erp 503"),
    ],
)
def test_a_step_still_failing_after_its_retries_goes_to_review_and_its_task_ends(
    app_client, sims, monkeypatch, task, step, reason
):
    from syncengine import outbox
    from syncengine.errors import Retryable
    from tasks import ocr

    assert ocr.MAX_RETRIES == 8
    document_id = upload(app_client, png()).json["id"]
    monkeypatch.setattr(ocr, step, _failing(Retryable(reason.rsplit(": ", 1)[1])))
    held = outbox.Claim(row_id=1, token="test-claim", attempts=1, replays=0)
    with outbox.running(held):  # as read_document runs when a Directus upload defers it
        outcome = getattr(ocr, task).apply(args=(document_id,), retries=ocr.MAX_RETRIES).get()
    doc = document(document_id)
    assert outcome == "review" and doc.status == "review" and doc.error == reason
    assert held.failure is None  # the review is the document's outcome: its outbox row closes done
    [review] = directus_items("reviews", f"document:{doc.sha256}")
    assert review["reasons"] == [reason]
