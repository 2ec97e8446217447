"""The offline engine: Tesseract on generated receipts and invoices, and field extraction from OCR text."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from connectors.receipt_text import amount_of, parse
from connectors.tesseract_ocr import TesseractOcr, available
from simulators.receipts import document, encode, make, render, style_for
from syncengine.ocr.prepare import ORIENTATION
from syncengine.ocr.validation import validate

TODAY = date(2026, 11, 20)  # fixed, so the rendered documents (and what Tesseract reads) never change
needs_tesseract = pytest.mark.skipif(
    not available(), reason="the tesseract binary is not installed (apt-get install tesseract-ocr)"
)


def checked_fields(data: dict) -> tuple:
    return (
        data["total"],
        data["net"],
        data["vat"],
        data["issue_date"],
        data["currency"],
        data["supplier"]["name"],
    )


@needs_tesseract
@pytest.mark.parametrize(("seed", "fmt"), [(1001, "PNG"), (1002, "JPEG"), (1000, "PDF")])
def test_generated_documents_are_read_exactly(seed, fmt):
    data, receipt = document(seed, fmt, TODAY)
    extraction = TesseractOcr().extract_document(data)
    assert extraction.ok and extraction.engine == "tesseract" and extraction.model.startswith("tesseract-")
    assert checked_fields(extraction.data) == checked_fields(receipt.truth)
    assert extraction.data["number"] == receipt.number
    assert validate(extraction.data, TODAY).ok  # so this one would be booked, not reviewed


@needs_tesseract
def test_a_sideways_photo_is_read_upright_by_its_exif_orientation():
    receipt = make(1004, TODAY)
    stored = render(receipt, style_for(receipt)).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to display", as a phone held sideways writes it
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    found = TesseractOcr().extract_document(buffer.getvalue()).data
    assert checked_fields(found) == checked_fields(receipt.truth)


@needs_tesseract
def test_a_sideways_scan_without_exif_is_turned_by_orientation_detection():
    receipt = make(1001, TODAY)
    sideways = render(receipt, style_for(receipt)).transpose(Image.Transpose.ROTATE_90)
    found = TesseractOcr().extract_document(encode(sideways)).data
    assert (found["total"], found["issue_date"]) == (receipt.truth["total"], receipt.truth["issue_date"])


TEXT = """Greenleaf Stationers
21 High Street, Oxford
VAT No: GB 123 4567 89
Invoice No: INV-2291
Date: Nov 3, 2026
Due date: 03/12/2026
2 x Gel pens £7.00
Delivery fee £1,204.50
Net amount £1,211.50
VAT 20% £242.30
TOTAL GBP £1,453.80
"""


def test_fields_are_parsed_from_ocr_text():
    found = parse(TEXT)
    assert found["supplier"] == {"name": "Greenleaf Stationers", "vat_id": "GB123456789", "address": None}
    assert found["number"] == "INV-2291" and found["currency"] == "GBP"
    assert (found["issue_date"], found["due_date"]) == ("2026-11-03", "2026-12-03")
    assert (found["net"], found["vat"], found["total"]) == (1211.5, 242.3, 1453.8)
    assert found["lines"] == [
        {"description": "Gel pens", "quantity": 2, "unit_price": 3.5, "vat_rate": None, "amount": 7.0},
        {
            "description": "Delivery fee",
            "quantity": 1,
            "unit_price": 1204.5,
            "vat_rate": None,
            "amount": 1204.5,
        },
    ]


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("1 198,71", "1198.71"),
        ("1.234,56", "1234.56"),
        ("€12.50", "12.50"),
        ("1,204.50", "1204.50"),
        ("7", None),
    ],
)
def test_amounts_in_national_styles(token, value):
    assert str(amount_of(token)) == str(value)


def test_nothing_is_invented_when_the_text_lacks_it():
    found = parse("Corner Shop\nThank you!\nTOTAL\n")
    assert (found["net"], found["vat"], found["total"], found["issue_date"], found["currency"]) == (None,) * 5
    result = validate(found, TODAY)
    assert not result.ok and {"totals", "date", "currency", "lines"} <= {
        c.name for c in result.checks if not c.ok
    }


def test_a_misread_total_is_not_replaced_by_a_computed_one():
    found = parse("Shop\nDate: 2026-11-02\nTea 3.00\nSubtotal 3.00\nVAT 20% 0.60\nTOTAL EUR 3.66\n")
    assert (found["net"], found["vat"], found["total"]) == (3.0, 0.6, 3.66)  # as printed
    assert "totals" in {c.name for c in validate(found, TODAY).checks if not c.ok}  # so it goes to review
