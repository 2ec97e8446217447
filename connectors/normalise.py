"""One spelling for every canonical value, shared by the contact, product and invoice mappers.

Echo suppression compares hashes of what we pushed with what the vendor answers back, so a value must come
back from every vendor exactly as `carried()` put it: text stripped, empty text as None, emails lower-case,
countries as ISO alpha-2 codes, money as floats rounded to cents, booleans as booleans. Every carried field is
always present (None when empty), so a field cleared in one system is cleared in the others too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from syncengine.errors import Permanent

from . import countries

MONEY_PLACES = 2
RATE_PLACES = 3  # tax rates such as 8.875 % need three
_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})


def text(value: Any) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def email(value: Any) -> str | None:
    stripped = text(value)
    return stripped.lower() if stripped else None


def code(value: Any) -> str | None:
    """Currency codes and the like: upper-case."""
    stripped = text(value)
    return stripped.upper() if stripped else None


def _number(value: Any, places: int) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return round(float(value), places)


def money(value: Any) -> float | None:
    return _number(value, MONEY_PLACES)


def rate(value: Any) -> float | None:
    return _number(value, RATE_PLACES)


def flag(value: Any) -> bool | None:
    """Booleans as vendors spell them (true, 1, "1", "yes" …); anything else is unknown (None)."""
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def country(value: Any) -> str | None:
    """The ISO alpha-2 code for a known code or name; other text is kept as it is (never guessed)."""
    stripped = text(value)
    if stripped is None:
        return None
    return countries.code_of(stripped) or stripped


def day(value: Any) -> str | None:
    """Dates as ISO `YYYY-MM-DD` (vendors add a time or send "" for none)."""
    stripped = text(value)
    return stripped[:10] if stripped else None


def record_id(value: Any) -> int | None:
    """A hub record id (a link to another record), as an int."""
    stripped = text(value)
    return int(stripped) if stripped else None


def quantity(value: Any) -> float | None:
    return _number(value, RATE_PLACES)


def lines(value: Any) -> list[dict[str, Any]]:
    """Invoice lines `{sku, description, quantity, unit_price, tax_rate}`, every key present; an empty
    quantity is 1 and empty numbers 0, as billing systems store them, so every vendor reports the same."""
    out = []
    for line in value or []:
        out.append(
            {
                "sku": text(line.get("sku")),
                "description": text(line.get("description")),
                "quantity": quantity(line.get("quantity")) or 1.0,
                "unit_price": money(line.get("unit_price")) or 0.0,
                "tax_rate": rate(line.get("tax_rate")) or 0.0,
            }
        )
    return out


def taxes_by_rate(invoice_lines: list[dict[str, Any]]) -> dict[float, float]:
    """Net amount per tax rate (exclusive taxes), for vendors that tax a total rather than each line."""
    nets: dict[float, float] = {}
    for line in invoice_lines:
        net = line["quantity"] * line["unit_price"]
        nets[line["tax_rate"]] = nets.get(line["tax_rate"], 0.0) + net
    return nets


def gross_total(invoice_lines: list[dict[str, Any]]) -> float:
    """What the lines come to with their taxes, cents rounded once at the end as Invoice Ninja does."""
    return round(sum(net * (1 + tax_rate / 100) for tax_rate, net in taxes_by_rate(invoice_lines).items()), 2)


def full_name(first: Any, last: Any) -> str | None:
    return text(" ".join(part for part in (text(first), text(last)) if part))


def billing_name(data: Mapping[str, Any]) -> str | None:
    """The name a billing system shows for a contact: its own name, else its company, else the person."""
    return (
        text(data.get("name"))
        or text(data.get("company_name"))
        or full_name(data.get("first_name"), data.get("last_name"))
    )


NORMALISERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "contact": {
        "name": text,
        "first_name": text,
        "last_name": text,
        "email": email,
        "phone": text,
        "company_name": text,
        "address1": text,
        "address2": text,
        "city": text,
        "postal_code": text,
        "country": country,
        "vat_number": text,
        "marketing_consent": flag,
    },
    "product": {
        "sku": text,
        "name": text,
        "description": text,
        "price": money,
        "cost": money,
        "tax_rate": rate,
        "currency": code,
    },
    "invoice": {
        "number": text,
        "contact_id": record_id,
        "date": day,
        "due_date": day,
        "currency": code,
        "notes": text,
        "lines": lines,
        "status": text,
        "total": money,
        "tax_total": money,
        "paid": money,
        "balance": money,
    },
}


def canonical(kind: str, names: tuple[str, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    """The named canonical fields of `values`, each normalised, None when absent."""
    normalisers = NORMALISERS[kind]
    return {name: normalisers[name](values.get(name)) for name in names}


def or_zero(fields: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Vendors whose number columns cannot be empty (they store 0) report 0.0 for "not set"."""
    return {**fields, **{name: fields[name] or 0.0 for name in names if name in fields}}


def blank(value: Any) -> Any:
    """None as the empty string, for vendors that clear a text field with ""."""
    return "" if value is None else value


def contact_marker(fields: Mapping[str, Any], name_field: str = "name") -> str:
    """How a contact is looked up before it is created: its email, else its name in that vendor."""
    if fields.get("email"):
        return str(fields["email"])
    if fields.get(name_field):
        return f"name:{fields[name_field]}"
    raise Permanent("a contact with neither email nor name cannot be created once (no marker)")
