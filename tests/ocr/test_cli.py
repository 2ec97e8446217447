"""`syncengine ocr <file> [--engine openai|tesseract] [--json]` as an operator runs it: a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from connectors.tesseract_ocr import available as tesseract_available
from simulators.openai import OpenAISimulator
from simulators.receipt_answers import GroundTruthResponder
from simulators.receipts import document

KEYS = ["supplier", "number", "date", "currency", "net", "vat", "total", "lines", "confidence"]
OPENAI_KEY = "sk-ocr-cli-5b81f3a0d2"


def ocr(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncengine", "ocr", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env}, check=False,
    )  # fmt: skip


@pytest.fixture()
def openai_url() -> Iterator[tuple[str, GroundTruthResponder]]:
    truth = GroundTruthResponder()
    sim = OpenAISimulator(api_keys=(OPENAI_KEY,))
    sim.responder = truth
    with sim.serve() as running:
        yield f"{running.url}/v1", truth


def test_json_from_the_openai_engine(tmp_path: Path, openai_url):
    url, truth = openai_url
    data, receipt = document(3201, "JPEG")
    truth.register(data, receipt.truth)
    path = tmp_path / "receipt.jpg"
    path.write_bytes(data)
    done = ocr(str(path), "--engine", "openai", "--json", OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=url)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert list(printed) == KEYS
    assert printed == {
        "supplier": receipt.supplier, "number": receipt.number, "date": receipt.issued.isoformat(),
        "currency": receipt.currency, "net": float(receipt.net), "vat": float(receipt.vat),
        "total": float(receipt.total), "lines": receipt.truth["lines"], "confidence": 1.0,
    }  # fmt: skip
    assert OPENAI_KEY not in done.stdout + done.stderr


@pytest.mark.skipif(not tesseract_available(), reason="the tesseract binary is not installed")
def test_json_from_the_tesseract_engine(tmp_path: Path):
    data, receipt = document(1002, "PNG", date(2026, 11, 20))
    path = tmp_path / "receipt.png"
    path.write_bytes(data)
    done = ocr(str(path), "--engine", "tesseract", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert list(printed) == KEYS
    assert (printed["supplier"], printed["date"], printed["currency"]) == (
        receipt.supplier,
        receipt.issued.isoformat(),
        receipt.currency,
    )
    assert (printed["net"], printed["vat"], printed["total"]) == (
        float(receipt.net), float(receipt.vat), float(receipt.total),
    )  # fmt: skip
    assert [line["amount"] for line in printed["lines"]] == [
        line["amount"] for line in receipt.truth["lines"]
    ]
    assert 0 < printed["confidence"] <= 1


def test_a_file_that_is_no_document_is_refused_with_a_reason(tmp_path: Path):
    path = tmp_path / "notes.pdf"
    path.write_text("not a PDF at all\n")
    done = ocr(str(path), "--engine", "tesseract", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "ocr: cannot read this file type (judged by its content)"
