"""`syncengine ocr <file> [--engine openai|tesseract] [--json]`: read one document by hand.

Nothing is stored or booked: it shows what the engine reads and how the validation judges it, so a
misread receipt can be looked at (or an engine tried) without going through the intake.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncengine.errors import SyncError
from syncengine.ocr.prepare import Unreadable, accepted, sniff
from syncengine.ocr.validation import validate
from syncengine.redaction import redact

KEYS = ("supplier", "number", "date", "currency", "net", "vat", "total", "lines", "confidence")


def summary(data: dict[str, Any], confidence: float) -> dict[str, Any]:
    """The extraction under the command's keys (`date` is the ISO issue date)."""
    supplier = data.get("supplier")
    return {
        "supplier": supplier.get("name") if isinstance(supplier, dict) else None,
        "number": data.get("number"),
        "date": data.get("issue_date"),
        "currency": data.get("currency"),
        "net": data.get("net"),
        "vat": data.get("vat"),
        "total": data.get("total"),
        "lines": data.get("lines") or [],
        "confidence": confidence,
    }


def run(path: str, engine_name: str | None, as_json: bool) -> int:
    """0 when the document was read, 1 when the engine gave no usable answer, 2 for a file or setup error."""
    from tasks.ocr import choose_engine

    try:
        data = Path(path).read_bytes()
        if not accepted(sniff(data)):
            raise Unreadable("cannot read this file type (judged by its content)")
        engine = choose_engine(engine_name)
        extraction = engine.extract_document(data)
    except (OSError, Unreadable, SyncError) as exc:
        print(f"ocr: {redact(str(exc))}", file=sys.stderr)
        return 2
    if not extraction.ok or extraction.data is None:
        print(f"ocr: {extraction.engine} gave no answer: {extraction.status} {extraction.detail or ''}",
              file=sys.stderr)  # fmt: skip
        return 1
    validation = validate(extraction.data, datetime.now(UTC).date())
    result = summary(extraction.data, validation.confidence)
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    for key in KEYS[:-2]:
        print(f"{key:<10} {result[key] if result[key] is not None else '-'}")
    for line in result["lines"]:
        print(f"  {line.get('quantity') or 1} x {line.get('description')}: {line.get('amount')}")
    print(f"{'confidence':<10} {validation.confidence:.2f} ({extraction.engine})")
    for reason in validation.reasons:
        print(f"  review: {reason}")
    return 0
