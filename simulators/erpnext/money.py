"""ERPNext's arithmetic of a Sales Invoice and a Payment Entry, as the simulator recomputes them on save."""

from __future__ import annotations

from datetime import date
from typing import Any


def _flt(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def compute_invoice(doc: dict[str, Any]) -> None:
    """Line amounts, taxes ("On Net Total" or "Actual"), totals and the outstanding amount of a draft.

    Rounded total follows a currency whose smallest fraction is 0.01 (EUR), so it equals the grand total.
    """
    net = 0.0
    qty_total = 0.0
    for row in doc.get("items") or []:
        row["qty"] = _flt(row.get("qty") or 1)
        row["rate"] = round(_flt(row.get("rate")), 2)
        row["amount"] = row["net_amount"] = round(row["qty"] * row["rate"], 2)
        row["net_rate"] = row["rate"]
        net += row["amount"]
        qty_total += row["qty"]
    net = round(net, 2)
    running = net
    for row in doc.get("taxes") or []:
        row.setdefault("charge_type", "On Net Total")
        if row["charge_type"] == "On Net Total":
            row["tax_amount"] = round(net * _flt(row.get("rate")) / 100, 2)
        else:
            row["tax_amount"] = round(_flt(row.get("tax_amount")), 2)
        running = round(running + row["tax_amount"], 2)
        row["total"] = running
    grand = running
    doc.update(
        total_qty=qty_total,
        total=net,
        net_total=net,
        base_net_total=net,
        total_taxes_and_charges=round(grand - net, 2),
        grand_total=grand,
        base_grand_total=grand,
        rounding_adjustment=0.0,
        rounded_total=grand,
        base_rounded_total=grand,
    )
    if doc.get("docstatus", 0) == 0:
        doc["outstanding_amount"] = grand


def invoice_status(doc: dict[str, Any], today: date) -> str:
    """ERPNext's order of checks (``SalesInvoice.set_status``), without returns and discounting."""
    if doc.get("docstatus") == 0:
        return "Draft"
    if doc.get("docstatus") == 2:
        return "Cancelled"
    outstanding, grand = _flt(doc.get("outstanding_amount")), _flt(doc.get("grand_total"))
    due = date.fromisoformat(str(doc.get("due_date") or doc["posting_date"])[:10])
    if outstanding > 0 and due < today:
        return "Overdue"
    if 0 < outstanding < grand:
        return "Partly Paid"
    if outstanding > 0:
        return "Unpaid"
    return "Paid"


def compute_payment(doc: dict[str, Any]) -> None:
    paid = _flt(doc.get("paid_amount"))
    doc["received_amount"] = _flt(doc.get("received_amount")) or paid
    allocated = round(sum(_flt(r.get("allocated_amount")) for r in doc.get("references") or []), 2)
    doc.update(
        base_paid_amount=paid,
        base_received_amount=doc["received_amount"],
        total_allocated_amount=allocated,
        unallocated_amount=round(paid - allocated, 2),
        difference_amount=0.0,
    )
    doc.setdefault("source_exchange_rate", 1.0)
    doc.setdefault("target_exchange_rate", 1.0)
    doc["status"] = {0: "Draft", 1: "Submitted", 2: "Cancelled"}[doc.get("docstatus", 0)]
