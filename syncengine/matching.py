"""F5's business rule: which open invoice an incoming bank payment settles, and by how much (pure).

First the invoice number written in the transfer's reference (or the leg's description), compared without
case, spaces or separators, so "inv 0042", "INV/0042" and "Inv-0042" all name INV-0042; then, failing that,
the amount equal to an invoice's balance from a payer whose name resembles the invoice's client, among open
invoices in the payment's currency. Anything not naming exactly one invoice goes to a human (review),
because booking money against the wrong invoice costs more than a short delay.

Amounts: less than the balance is a partial payment (applied as is, the invoice stays partial); more than
the balance applies the balance and leaves the surplus for review (no credit is invented).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
SEPARATORS = r"[\s\-_/.#:]*"
LEGAL_FORMS = frozenset(
    {
        "ltd",
        "limited",
        "llc",
        "inc",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "bv",
        "nv",
        "plc",
        "co",
        "corp",
        "srl",
    }
)
NAME_SIMILARITY = 0.85


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class OpenInvoice:
    """An invoice that can still be paid, as the invoicing system says now."""

    id: str
    number: str
    client_id: str
    client_name: str
    balance: Decimal
    currency: str
    email: str | None = None


@dataclass(frozen=True)
class Incoming:
    """What the bank says about money that came in."""

    amount: Decimal
    currency: str
    reference: str = ""
    description: str = ""
    payer_name: str = ""


@dataclass(frozen=True)
class Decision:
    """The match: the invoice and the amounts to book, or the reason a human must look at it."""

    invoice: OpenInvoice | None
    by: str = ""  # "number" or "amount_payer"
    apply: Decimal = Decimal("0.00")
    surplus: Decimal = Decimal("0.00")
    reason: str = ""

    @property
    def matched(self) -> bool:
        return self.invoice is not None

    @property
    def partial(self) -> bool:
        return self.invoice is not None and self.apply < self.invoice.balance

    def to_json(self) -> dict[str, Any]:
        """JSON-safe (stored as the match effect's response, so a re-run books against the same invoice)."""
        invoice = asdict(self.invoice) if self.invoice else None
        if invoice:
            invoice["balance"] = str(invoice["balance"])
        return {
            "invoice": invoice,
            "by": self.by,
            "apply": str(self.apply),
            "surplus": str(self.surplus),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        raw = data.get("invoice")
        invoice = OpenInvoice(**{**raw, "balance": money(raw["balance"])}) if raw else None
        return cls(
            invoice,
            data.get("by", ""),
            money(data.get("apply")),
            money(data.get("surplus")),
            data.get("reason", ""),
        )


def match(payment: Incoming, invoices: Iterable[OpenInvoice]) -> Decision:
    """The invoice this payment settles, or a Decision without one and the reason."""
    open_ = [inv for inv in invoices if inv.balance > 0]
    amount = money(payment.amount)
    if amount <= 0:
        return Decision(None, reason="not an incoming payment")
    text = " ".join(p for p in (payment.reference, payment.description) if p)
    by_number = {inv.id: inv for inv in open_ if number_in(inv.number, text)}
    if len(by_number) > 1:
        numbers = ", ".join(sorted(inv.number for inv in by_number.values()))
        return Decision(None, reason=f"ambiguous: the reference names several open invoices ({numbers})")
    if by_number:
        invoice = next(iter(by_number.values()))
        if invoice.currency.upper() != payment.currency.upper():
            return Decision(
                None,
                reason=f"currency mismatch: invoice {invoice.number} is in "
                f"{invoice.currency}, the payment in {payment.currency}",
            )
        return _settle(invoice, amount, "number")
    same_currency = [inv for inv in open_ if inv.currency.upper() == payment.currency.upper()]
    candidates = [
        inv
        for inv in same_currency
        if inv.balance == amount and same_party(payment.payer_name, inv.client_name)
    ]
    if len(candidates) == 1:
        return _settle(candidates[0], amount, "amount_payer")
    if candidates:
        numbers = ", ".join(sorted(inv.number for inv in candidates))
        return Decision(
            None,
            reason=f"ambiguous: {len(candidates)} open invoices of {amount} "
            f"{payment.currency} for {payment.payer_name!r} ({numbers})",
        )
    return Decision(
        None,
        reason=f"no matching open invoice for {amount} {payment.currency} from "
        f"{payment.payer_name or 'an unknown payer'} (reference {payment.reference!r})",
    )


def _settle(invoice: OpenInvoice, amount: Decimal, by: str) -> Decision:
    apply = min(amount, invoice.balance)
    return Decision(invoice, by, apply, amount - apply)


def normalise_number(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", _ascii(value).upper())


def number_in(number: str, text: str) -> bool:
    """Whether the invoice number appears in the text as a whole token, whatever the case and separators
    ("INV-0042" in "payment inv 0042 thanks"), but not inside a longer number ("INV-00421")."""
    chars = normalise_number(number)
    if not chars or not text:
        return False
    pattern = SEPARATORS.join(re.escape(c) for c in chars)
    return re.search(rf"(?<![0-9A-Z]){pattern}(?![0-9A-Z])", _ascii(text).upper()) is not None


def name_tokens(name: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", _ascii(name).lower())
    return [w for w in words if w not in LEGAL_FORMS]


def same_party(payer: str, client: str) -> bool:
    """The payer's name resembles the client's: same words in any order, one name within the other
    ("Acme" paying for "Acme Trading Ltd"), or a near spelling."""
    a, b = name_tokens(payer), name_tokens(client)
    if not a or not b:
        return False
    if set(a) <= set(b) or set(b) <= set(a):
        return True
    return difflib.SequenceMatcher(None, " ".join(sorted(a)), " ".join(sorted(b))).ratio() >= NAME_SIMILARITY


def _ascii(value: str) -> str:
    return unicodedata.normalize("NFKD", value or "").encode("ascii", "ignore").decode()
