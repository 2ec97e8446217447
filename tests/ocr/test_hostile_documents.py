"""Hostile documents through the real receiver and OCR worker: the 80-megapixel PNG is refused at upload
(422, from its header), the PDFs of giant pages end in review with the worker's peak memory under 300 MB, and
a document that kills or times out its reader N times goes to review instead of being handed out forever."""

from __future__ import annotations

import subprocess
import sys
import zlib
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from syncengine.db import session_scope
from syncengine.models import Document, utcnow
from syncengine.ocr.documents import store
from tasks.ocr import READER_LOSS_LIMIT, READING_LEASE
from tests.hostile_documents import issue_17, pdf_of_pages
from tests.ocr.conftest import OcrDeployment
from tests.ocr.test_flow import finished, upload
from tests.support import ROOT

LIMIT_MB = 300


def worker_peak_mb(dep: OcrDeployment) -> float:
    """The largest peak RSS (VmHWM) among the worker's processes: the pool child is the one that reads."""
    worker = dep.worker_pid
    pids = [worker, *(int(p) for p in Path(f"/proc/{worker}/task/{worker}/children").read_text().split())]
    peaks = []
    for pid in pids:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        peaks.append(int(status["VmHWM"].split()[0]) / 1024)
    return max(peaks)


def test_the_documents_of_the_report_end_in_review_or_a_clear_4xx(ocr_deployment):
    dep = ocr_deployment
    documents = issue_17()
    refused = upload(dep, documents.pop("8944 x 8944 PNG"), "huge.png")
    assert refused.status_code == 422, refused.text
    assert "8944 x 8944 pixels is larger than the 25 megapixels" in refused.json()["error"]
    for name, data in documents.items():
        answer = upload(dep, data, f"{name}.pdf")
        assert answer.status_code == 202, answer.text
        doc = finished(data)
        assert doc.status == "review", (name, doc.status, doc.error)
        assert "refused" in (doc.error or ""), doc.error  # blank pages: nothing to read, nothing invented
    peak = worker_peak_mb(dep)
    print(f"OCR worker peak RSS after the hostile documents: {peak:.0f} MB")
    assert peak < LIMIT_MB


# The reader as a killed worker leaves it: the process dies (SIGKILL, as the kernel's OOM killer sends) in
# the middle of reading, with the document claimed.
KILLED_MID_READ = """
import os, signal, sys
from tasks import ocr

class KilledMidRead:
    def extract_document(self, data, hint=None):
        os.kill(os.getpid(), signal.SIGKILL)

ocr.choose_engine = lambda preference=None: KilledMidRead()
print(ocr.read(int(sys.argv[1])))
"""

# The reader past its soft time limit, each try; Celery's eager mode runs the retries at once.
OUT_OF_TIME = """
import sys
from celery.exceptions import SoftTimeLimitExceeded
from tasks import ocr

class OutOfTime:
    def extract_document(self, data, hint=None):
        raise SoftTimeLimitExceeded()

ocr.choose_engine = lambda preference=None: OutOfTime()
print(ocr.read_document.apply((int(sys.argv[1]),)).get())
"""


def _run(dep: OcrDeployment, script: str, document_id: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, str(document_id)], cwd=ROOT, env=dep.env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _stored(name: str) -> int:
    """A new document row only (no task published), so only this test's processes read it."""
    with session_scope() as session:
        document_id, new = store(session, pdf_of_pages(600, 800 + zlib.crc32(name.encode()) % 1000, 1),
                                 "application/pdf", name)  # fmt: skip
    assert new
    return document_id


def _later(document_id: int) -> None:
    """The claim as it looks once READING_LEASE has passed without the reader coming back."""
    with session_scope() as session:
        session.execute(
            update(Document).where(Document.id == document_id)
            .values(updated_at=utcnow() - READING_LEASE - timedelta(seconds=5))
        )  # fmt: skip


def _document(document_id: int) -> Document:
    with session_scope() as session:
        doc = session.get(Document, document_id)
        assert doc is not None
        return doc


def test_a_document_that_kills_its_reader_goes_to_review_after_the_limit(ocr_deployment):
    dep = ocr_deployment
    document_id = _stored("kills-its-reader.pdf")
    for attempt in range(READER_LOSS_LIMIT):
        killed = _run(dep, KILLED_MID_READ, document_id)
        assert killed.returncode == -9, (attempt, killed.stdout, killed.stderr[-1500:])
        assert _document(document_id).status == "reading"
        _later(document_id)
    last = _run(dep, KILLED_MID_READ, document_id)  # not read again: straight to review
    assert last.returncode == 0, last.stderr[-1500:]
    assert last.stdout.strip().splitlines()[-1] == "review"
    doc = _document(document_id)
    assert doc.status == "review" and f"{READER_LOSS_LIMIT} times" in (doc.error or ""), doc.error
    reviews = dep.sims["directus"].db["reviews"].values()
    assert any(r.get("document_id") == document_id for r in reviews)


def test_a_document_that_runs_its_reader_out_of_time_goes_to_review_after_the_limit(ocr_deployment):
    dep = ocr_deployment
    document_id = _stored("runs-out-of-time.pdf")
    run = _run(dep, OUT_OF_TIME, document_id)
    assert run.returncode == 0, run.stderr[-1500:]
    assert run.stdout.strip().splitlines()[-1] == "review"
    doc = _document(document_id)
    assert doc.status == "review" and "ran out of its 150 s" in (doc.error or ""), doc.error
