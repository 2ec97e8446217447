"""The fields of a receipt or invoice read from its plain text (the offline OCR's, connectors.tesseract_ocr).

It reads what is printed and nothing more: a field it cannot find is null, and where several printed amounts
could be the totals it keeps the reading whose net + VAT = total, never a computed value.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from syncengine.ocr.validation import ISO_4217

LABELS = re.compile(r"^(vat|tva|mwst|ust|date|receipt|ticket|invoice|tel|www|total|no\b)", re.I)
AMOUNT = re.compile(
    r"(?<![\d%])([€£$]?\s?-?\d{1,3}(?:[ .,'\u2019]\d{3})*[.,]\d{2}|[€£$]?\s?-?\d+[.,]\d{2})(?![\d%])"
)
SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD"}
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, start=1)}
DATES = (
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), ("y", "m", "d")),
    (re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b"), ("d", "m", "y")),
    (re.compile(r"\b(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{4})\b"), ("d", "b", "y")),
    (re.compile(r"\b([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\b"), ("b", "d", "y")),
)
VAT_ID = re.compile(r"\b([A-Z]{2,3}[\s-]?[0-9][0-9A-Z\s-]{6,14}[0-9A-Z])\b")
NUMBER = re.compile(
    r"\b(?:invoice|receipt|ticket|bill)\s*(?:no|nr|number|#)?\.?\s*[:#]?\s*([A-Z0-9][\w/-]{2,})", re.I
)
TOTAL = re.compile(r"\b(grand\s+total|total|amount\s+due|to\s+pay|summe|gesamt)\b", re.I)
SUBTOTAL = re.compile(r"\b(sub\s*-?\s*total|net\s+amount|net|zwischensumme|total\s+ht)\b", re.I)
VAT_LINE = re.compile(r"\b(vat|tva|mwst|ust|tax|iva|moms)\b", re.I)
QUANTITY = re.compile(r"^(\d+)\s*[x\u00d7*]\s*(.+)$", re.I)
# What Tesseract confuses inside digit groups.
DIGITS = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8"})


def parse(text: str) -> dict[str, Any]:
    """The extraction schema's fields from OCR text; null for what is not found."""
    lines = _lines(text)
    net, vat, total = _totals(lines)
    return {
        "supplier": {"name": _supplier(lines), "vat_id": _vat_id(lines), "address": None},
        "number": _first(NUMBER, lines),
        "issue_date": _issue_date(lines),
        "due_date": _labelled_date(lines, "due"),
        "currency": _currency(lines),
        "lines": _items(lines),
        "net": net,
        "vat": vat,
        "total": total,
        "payment": None,
    }


def adds_up(text: str) -> bool:
    net, vat, total = _totals(_lines(text))
    return None not in (net, vat, total) and Decimal(str(net)) + Decimal(str(vat)) == Decimal(str(total))


def total(text: str) -> float | None:
    """The printed total of the text, if one is found."""
    return _totals(_lines(text))[2]


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def amount_of(token: str) -> Decimal | None:
    """'1 198,71' / '1,198.71' / '€12.50' → Decimal; the last separator before two digits is the decimal."""
    digits = re.sub(r"[^\d.,-]", "", token)
    if len(digits) < 4 or digits[-3] not in ".,":
        return None
    whole = re.sub(r"[.,]", "", digits[:-3])
    try:
        return Decimal(f"{whole}.{digits[-2:]}")
    except InvalidOperation:
        return None


def amounts(line: str) -> list[Decimal]:
    return [a for a in (amount_of(m.group(1)) for m in AMOUNT.finditer(line)) if a is not None]


def _last_amount(
    lines: list[str], label: re.Pattern[str], exclude: re.Pattern[str] | None = None
) -> list[Decimal]:
    found = []
    for line in lines:
        if label.search(line) and not (exclude and exclude.search(line)):
            values = amounts(line)
            if values:
                found.append(values[-1])
    return found


def _totals(lines: list[str]) -> tuple[float | None, float | None, float | None]:
    """Net, VAT and total as printed; among several candidates, the combination that adds up."""
    totals = _last_amount(lines, TOTAL, SUBTOTAL) or _last_amount(lines, TOTAL)
    nets = _last_amount(lines, SUBTOTAL)
    vats = _last_amount(lines, VAT_LINE, TOTAL)
    for total in reversed(totals):
        for net in nets:
            for vat in vats:
                if net + vat == total:
                    return float(net), float(vat), float(total)
    return _last(nets), _last(vats), _last(totals)


def _last(values: list[Decimal]) -> float | None:
    return float(values[-1]) if values else None


def _supplier(lines: list[str]) -> str | None:
    for line in lines[:4]:
        name = re.sub(r"[^\w&'.,\- ]", "", line).strip(" .,-")
        if sum(c.isalpha() for c in name) >= 3 and not LABELS.match(name) and not amounts(line):
            return name
    return None


def _vat_id(lines: list[str]) -> str | None:
    for line in lines:
        if VAT_LINE.search(line) and not amounts(line):
            match = VAT_ID.search(line.split(":", 1)[-1].upper().replace("€", "C"))
            if match:
                raw = match.group(1).replace(" ", "")
                return raw[:2] + raw[2:].translate(DIGITS)
    return None


def _first(pattern: re.Pattern[str], lines: list[str]) -> str | None:
    for line in lines:
        match = pattern.search(line)
        if match:
            return match.group(1).strip(".,;:")
    return None


def to_date(text: str) -> date | None:
    """The first date in the text, whatever its national style, as a date."""
    fixed = re.sub(r"(?<=\d)[OoD]|[OoD](?=\d)", "0", text)
    for pattern, order in DATES:
        for match in pattern.finditer(fixed):
            parts = dict(zip(order, match.groups(), strict=True))
            try:
                month = MONTHS[parts["b"].lower()[:3]] if "b" in parts else int(parts["m"])
                return date(int(parts["y"]), month, int(parts["d"]))
            except (KeyError, ValueError):
                continue
    return None


def _labelled_date(lines: list[str], label: str) -> str | None:
    for line in lines:
        if label in line.lower():
            found = to_date(line)
            if found:
                return found.isoformat()
    return None


def _issue_date(lines: list[str]) -> str | None:
    for line in lines:
        lower = line.lower()
        if "date" in lower and "due" not in lower:
            found = to_date(line)
            if found:
                return found.isoformat()
    for line in lines:
        if "due" not in line.lower():
            found = to_date(line)
            if found:
                return found.isoformat()
    return None


def _currency(lines: list[str]) -> str | None:
    ordered = [line for line in lines if TOTAL.search(line)] + lines
    for line in ordered:
        for code in re.findall(r"\b([A-Z]{3})\b", line):
            if code in ISO_4217 and code != "ALL":
                return code
        for symbol, code in SYMBOLS.items():
            if symbol in line:
                return code
    return None


def _items(lines: list[str]) -> list[dict[str, Any]]:
    """Lines with one amount between the header and the totals: best effort, for the review screen."""
    items = []
    for line in lines:
        if TOTAL.search(line) or SUBTOTAL.search(line) or VAT_LINE.search(line) or to_date(line):
            if items:
                break
            continue
        values = amounts(line)
        if len(values) != 1:
            continue
        description = AMOUNT.sub("", line).strip(" .:-~|'\u2018")
        quantity = 1
        match = QUANTITY.match(description)
        if match:
            quantity, description = int(match.group(1)), match.group(2).strip()
        amount = values[0]
        items.append({
            "description": description or "item", "quantity": quantity,
            "unit_price": float((amount / quantity).quantize(Decimal("0.01"))), "vat_rate": None,
            "amount": float(amount),
        })  # fmt: skip
    return items
