"""Checks on what OCR extracted from a receipt or supplier invoice (flow F6), before anything is booked.

Pure: no I/O, `today` is given. Each check either passes or gives a reason a human can act on; the
confidence is the share of checks that passed. Only a document that passes every check is booked; any
failure sends it to a Directus review item with the reasons. Nothing here fills in a missing value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

# Rounding allowed per summed amount (each printed amount is rounded to the cent).
CENT = Decimal("0.01")
MAX_AGE = timedelta(days=731)  # about two years: older receipts are usually a mistaken upload
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# ISO 4217 active codes (2024), so "EUR" passes and "EU" / "XYZ" / "Eur" do not.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
    SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL""".split()  # noqa: SIM905 - a table, kept readable
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class Validation:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.checks if not c.ok and c.reason]

    @property
    def confidence(self) -> float:
        if not self.checks:
            return 0.0
        return round(sum(c.ok for c in self.checks) / len(self.checks), 2)


def amount(value: Any) -> Decimal | None:
    """A finite number as a Decimal; None for null, booleans, strings and anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def validate(data: dict[str, Any], today: date) -> Validation:
    return Validation(
        [
            _supplier(data),
            _currency(data),
            _date(data, today),
            _totals(data),
            _lines(data),
        ]
    )


def _supplier(data: dict[str, Any]) -> Check:
    supplier = data.get("supplier")
    name = supplier.get("name") if isinstance(supplier, dict) else None
    if isinstance(name, str) and name.strip():
        return Check("supplier", True)
    return Check("supplier", False, "no supplier name on the document")


def _currency(data: dict[str, Any]) -> Check:
    code = data.get("currency")
    if isinstance(code, str) and _CURRENCY.match(code) and code in ISO_4217:
        return Check("currency", True)
    return Check("currency", False, f"currency {code!r} is not an ISO 4217 code")


def _date(data: dict[str, Any], today: date) -> Check:
    raw = data.get("issue_date")
    issued = parse_date(raw)
    if issued is None:
        return Check("date", False, f"issue date {raw!r} is missing or not YYYY-MM-DD")
    if issued > today:
        return Check("date", False, f"issue date {issued} is in the future")
    if issued < today - MAX_AGE:
        return Check("date", False, f"issue date {issued} is more than two years old")
    return Check("date", True)


def _totals(data: dict[str, Any]) -> Check:
    net, vat, total = (amount(data.get(k)) for k in ("net", "vat", "total"))
    missing = [k for k, v in (("net", net), ("vat", vat), ("total", total)) if v is None]
    if missing:
        return Check("totals", False, f"missing {', '.join(missing)}")
    assert net is not None and vat is not None and total is not None
    if total <= 0 or net < 0 or vat < 0:
        return Check("totals", False, f"implausible amounts: net {net}, VAT {vat}, total {total}")
    if abs(net + vat - total) > CENT:
        return Check("totals", False, f"net {net} + VAT {vat} = {net + vat}, not the total {total}")
    return Check("totals", True)


def _lines(data: dict[str, Any]) -> Check:
    """The line amounts add up to the net (or, on receipts that print gross line prices, to the total),
    within a cent per line."""
    lines = data.get("lines")
    if not isinstance(lines, list) or not lines:
        return Check("lines", False, "no lines on the document")
    amounts = [amount(line.get("amount")) if isinstance(line, dict) else None for line in lines]
    if any(a is None for a in amounts):
        return Check("lines", False, "a line has no amount")
    lines_sum = sum(amounts, Decimal(0))  # type: ignore[arg-type]
    tolerance = CENT * len(lines)
    net, total = amount(data.get("net")), amount(data.get("total"))
    if any(t is not None and abs(lines_sum - t) <= tolerance for t in (net, total)):
        return Check("lines", True)
    return Check("lines", False, f"lines sum to {lines_sum}, not the net {net} (nor the total {total})")
