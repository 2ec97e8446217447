"""Flow F6 end to end through real processes: an upload to the receiver (gunicorn) or a file dropped into
Directus, read by the Celery worker on the `ocr` queue through the OpenAI simulator (or Tesseract when
OpenAI's breaker is open), booked in Invoice Ninja, ERPNext and Directus."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from typing import Any

import pytest
import redis
import requests
from PIL import Image
from sqlalchemy import select

from connectors.tesseract_ocr import available as tesseract_available
from simulators.receipts import document, encode, make, render, style_for
from syncengine.breaker import RedisBreakerStore
from syncengine.db import session_scope
from syncengine.models import Document
from tests.ocr.conftest import DOCS_TOKEN, MAX_DOCUMENT_BYTES, OPENAI_KEY, OcrDeployment
from tests.support import wait_until

CHAT = "/v1/chat/completions"


def upload(dep: OcrDeployment, data: bytes, name: str) -> requests.Response:
    return requests.post(
        f"{dep.receiver}/documents", files={"file": (name, data, "application/octet-stream")},
        headers={"Authorization": f"Bearer {DOCS_TOKEN}"}, timeout=10,
    )  # fmt: skip


def find(sha: str) -> Document | None:
    with session_scope() as session:
        return session.execute(select(Document).where(Document.sha256 == sha)).scalar_one_or_none()


def finished(data: bytes) -> Document:
    """The document once the worker is done with it (booked or in review)."""
    sha = hashlib.sha256(data).hexdigest()

    def done() -> Document | None:
        doc = find(sha)
        return doc if doc is not None and doc.status in ("booked", "review") else None

    return wait_until(done, timeout=60, interval=0.2)


def booked(dep: OcrDeployment, doc: Document) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The one Invoice Ninja expense, ERPNext Purchase Invoice and Directus expense item of the document."""
    tag = f"[syncengine:doc:{doc.sha256[:16]}]"
    [expense] = [
        e for e in dep.sims["invoiceninja"].db["expenses"].values() if e["number"] == f"DOC-{doc.sha256[:16]}"
    ]
    [invoice] = [
        r for r in dep.sims["erpnext"].db["Purchase Invoice"].values() if tag in str(r.get("remarks"))
    ]
    [item] = [
        i for i in dep.sims["directus"].db["expenses"].values() if i["ext_id"] == f"document:{doc.sha256}"
    ]
    return expense, invoice, item


def chats(dep: OcrDeployment) -> list[dict[str, Any]]:
    return dep.sims["openai"].requests_log("POST", CHAT)


def two_page_pdf(first_page: bytes) -> bytes:
    page = Image.open(io.BytesIO(first_page)).convert("RGB")
    terms = Image.new("RGB", page.size, "white")
    buffer = io.BytesIO()
    page.save(buffer, format="PDF", save_all=True, append_images=[terms], resolution=150.0)
    return buffer.getvalue()


def test_a_photo_and_a_pdf_are_booked_in_three_systems(ocr_deployment):
    dep = ocr_deployment
    photo, photo_receipt = document(3101, "JPEG")
    page, pdf_receipt = document(3102, "PNG")
    pdf = two_page_pdf(page)
    dep.truth.register(photo, photo_receipt.truth)
    dep.truth.register(pdf, pdf_receipt.truth)

    for data, name, receipt in ((photo, "IMG_2041.jpg", photo_receipt), (pdf, "invoice.pdf", pdf_receipt)):
        answer = upload(dep, data, name)
        assert answer.status_code == 202, answer.text
        doc = finished(data)
        assert doc.status == "booked" and doc.confidence == 1.0, doc.error
        expense, invoice, item = booked(dep, doc)
        assert float(expense["amount"]) == receipt.truth["total"]
        assert invoice["docstatus"] == 0 and invoice["supplier"] == receipt.supplier
        assert float(invoice["grand_total"]) == pytest.approx(receipt.truth["total"])
        assert item["total"] == receipt.truth["total"] and item["erpnext_purchase_invoice"] == invoice["name"]

    sent = chats(dep)[-1]["json"]
    images = [part for part in sent["messages"][0]["content"] if part["type"] == "image_url"]
    assert len(images) == 2 and all(
        p["image_url"]["url"].startswith("data:image/png;base64,") for p in images
    )

    # Neither the API key, the upload token nor any image data is in the receiver's or the worker's log.
    logged = dep.log_text()
    assert "document" in logged and "booked" in logged  # they did log
    for leak in (OPENAI_KEY, DOCS_TOKEN, base64.b64encode(photo[:300]).decode()[:40], "base64,"):
        assert leak not in logged


def test_the_same_file_twice_is_read_once_whichever_way_it_comes(ocr_deployment):
    dep = ocr_deployment
    data, receipt = document(3103, "PNG")
    dep.truth.register(data, receipt.truth)
    first = upload(dep, data, "receipt.png")
    doc = finished(data)
    calls = len(chats(dep))

    again = upload(dep, data, "receipt (1).png")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"] == doc.id
    dep.sims["directus"].upload_file(data, "scan.png", "image/png")  # the Flow posts files.upload
    wait_until(lambda: f"is document {doc.id} already: not read again" in dep.log_text(), timeout=30)

    assert len(chats(dep)) == calls
    booked(dep, doc)  # still exactly one of each
    with session_scope() as session:
        rows = session.execute(select(Document.id).where(Document.sha256 == doc.sha256)).scalars().all()
    assert rows == [doc.id]


def test_a_file_dropped_into_directus_is_read_and_booked(ocr_deployment):
    dep = ocr_deployment
    data, receipt = document(3104, "PDF")
    dep.truth.register(data, receipt.truth)
    files_before = len(_documents())
    token = {"Authorization": "Bearer directus-static-token"}
    notes = requests.post(
        f"{dep.env['DIRECTUS_URL']}/files", headers=token, timeout=10,
        files={"file": ("notes.csv", b"date,amount\n2026-11-02,12.00\n", "text/csv")},
    )  # fmt: skip
    assert notes.status_code == 200
    answer = requests.post(
        f"{dep.env['DIRECTUS_URL']}/files", headers=token, data={"title": "Supplier invoice"}, timeout=10,
        files={"file": ("INV-scan.pdf", data, "application/pdf")},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json()["data"]["type"] == "application/pdf"

    doc = finished(data)
    assert doc.status == "booked" and doc.filename == "INV-scan.pdf" and doc.content_type == "application/pdf"
    expense, _invoice, _item = booked(dep, doc)
    assert float(expense["amount"]) == receipt.truth["total"]
    assert len(_documents()) == files_before + 1  # the CSV was left alone


def test_rate_limited_reads_wait_as_told_and_then_succeed(ocr_deployment):
    dep = ocr_deployment
    data, receipt = document(3105, "PNG")
    dep.truth.register(data, receipt.truth)
    before = len(chats(dep))
    # Three 429s: the SDK's own two retries after Retry-After, then the task's retry after it.
    dep.sims["openai"].set_faults(rate_limit_storm={"count": 3, "retry_after": 1}, match_path=CHAT)
    try:
        assert upload(dep, data, "receipt.png").status_code == 202
        doc = finished(data)
    finally:
        dep.sims["openai"].clear_faults()
    assert doc.status == "booked", doc.error
    assert [c["status"] for c in chats(dep)[before:]] == [429, 429, 429, 200]
    booked(dep, doc)


@pytest.mark.skipif(not tesseract_available(), reason="the tesseract binary is not installed")
def test_with_openai_unavailable_the_offline_engine_reads_and_books(ocr_deployment):
    dep = ocr_deployment
    receipt = make(3106)
    data = encode(render(receipt, style_for(receipt, rotation=1.0, noise=0.005)))  # not known to the model
    breakers = RedisBreakerStore(redis.Redis.from_url(dep.redis_url))
    breakers.open("openai", time.time())
    before = len(chats(dep))
    try:
        assert upload(dep, data, "receipt.png").status_code == 202
        doc = finished(data)
    finally:
        breakers.close("openai")
    assert len(chats(dep)) == before  # OpenAI was not called
    assert doc.status == "booked", doc.error
    assert (doc.extracted["total"], doc.extracted["issue_date"]) == (
        receipt.truth["total"],
        receipt.truth["issue_date"],
    )
    expense, invoice, _item = booked(dep, doc)
    assert invoice["supplier"] == receipt.supplier and float(expense["amount"]) == receipt.truth["total"]


def test_oversize_and_unknown_uploads_are_refused_with_a_clear_answer(ocr_deployment):
    dep = ocr_deployment
    gif = upload(dep, b"GIF89a" + b"\x00" * 64, "receipt.pdf")
    assert gif.status_code == 415 and "judged by its content" in gif.json()["error"]
    big = upload(dep, b"%PDF-1.7\n" + b"0" * MAX_DOCUMENT_BYTES, "big.pdf")
    assert big.status_code == 413 and str(MAX_DOCUMENT_BYTES) in big.json()["error"]


def _documents() -> list[int]:
    with session_scope() as session:
        return list(session.execute(select(Document.id)).scalars())


def test_a_document_whose_task_was_lost_is_read_and_booked_after_the_redelivery_sweep(ocr_deployment):
    """Stored while the broker was down (its task never published): the beat's document redelivery hands
    it to the ocr queue, and it is read and booked once."""
    import subprocess
    import sys

    from syncengine.ocr.documents import store
    from tests.support import ROOT

    dep = ocr_deployment
    data, receipt = document(3111, "PNG")
    dep.truth.register(data, receipt.truth)
    with session_scope() as session:
        store(session, data, "image/png", "lost.png")  # the row only: no task was ever published
    redeliver = subprocess.run(
        [sys.executable, "-c", "from tasks.ocr import redeliver_documents; print(redeliver_documents(0))"],
        env=dep.env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert redeliver.returncode == 0, redeliver.stderr
    assert int(redeliver.stdout.strip().splitlines()[-1]) >= 1
    doc = finished(data)
    assert doc.status == "booked", doc.error
    expense, _invoice, _item = booked(dep, doc)
    assert float(expense["amount"]) == receipt.truth["total"]
