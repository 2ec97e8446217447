"""Frappe's change log of a `track_changes` doctype (frappe/core/doctype/version/version.py), as the
real v15 peer writes it (seen 2026-12-07, tests/connectors/test_erpnext_contract.py).

- A save that changes something writes one Version: `ref_doctype`, `docname`, and `data`, the JSON of
  `get_diff(doc before the save, doc after on_update)`: sorted keys, no spaces, ASCII only, e.g.
  `{"added":[],"changed":[["tax_id",null,"FR123"]],"data_import":null,"removed":[],"row_changed":[],
  "updater_reference":null}`. `save_version` runs after `on_update`, so what on_update writes with `db_set`
  (a Customer's new primary Contact) is in the same Version, and its `creation` is later than the
  document's `modified` (by the time on_update took).
- An insert writes none, unless on_update `db_set`s something: `db_set` then loads the row just inserted
  as the document before the save, and the diff is what on_update changed.
- `changed` holds [field, old, new] of each plain field that differs: a Link's None and "" are equal
  (`cstr`), a truthy Currency value is formatted as the site shows it ("€ 1 234,50"), a 0 or None is not;
  then `name` and `docstatus`. (Rows of child tables go to `added`, `removed` and `row_changed`; the
  tracked doctypes here have none.)
"""

from __future__ import annotations

import json
from typing import Any

Doc = dict[str, Any]

# Field types the diff treats apart, per tracked doctype (the rest are Data, Check, Int, Select...).
LINKS: dict[str, frozenset[str]] = {
    "Customer": frozenset(
        ["customer_group", "territory", "default_currency", "language", "customer_primary_contact"]
    ),
    "Supplier": frozenset(["supplier_group", "country", "default_currency"]),
    "Item": frozenset(["item_group", "stock_uom", "brand"]),
}
CURRENCY: dict[str, frozenset[str]] = {"Item": frozenset({"standard_rate", "valuation_rate"})}
# The site's money format (System Settings of a French site: number format "# ###,##", EUR as "€" left).
SYMBOL, THOUSANDS, DECIMAL = "€", " ", ","
_SKIP = frozenset({"name", "doctype", "owner", "creation", "modified", "modified_by", "docstatus", "idx"})


def money_text(value: Any) -> str:
    """``fmt_money(value, precision=2, currency=EUR)`` with the site's number format."""
    amount = f"{abs(float(value)):,.2f}".replace(",", "\0").replace(".", DECIMAL).replace("\0", THOUSANDS)
    return f"{SYMBOL} {'-' if float(value) < 0 else ''}{amount}"


def _field_diff(doctype: str, fields: list[str], old: Doc, new: Doc) -> list[list[Any]]:
    changed = []
    for field in fields:
        before, after = old.get(field), new.get(field)
        if field in LINKS.get(doctype, ()):
            before, after = before or "", after or ""
        if before == after:
            continue
        if field in CURRENCY.get(doctype, ()):
            before = money_text(before) if before else before
            after = money_text(after) if after else after
            if before == after:
                continue
        changed.append([field, before, after])
    return changed


def get_diff(old: Doc, new: Doc, fields: list[str]) -> dict[str, Any] | None:
    """The `data` of a Version between two states of one document, or None when nothing differs.
    ``fields``: its plain fields (standard ones are skipped, custom ones count). The doctypes tracked here
    have no child tables in the simulator, so `added`, `removed` and `row_changed` stay empty."""
    changed = _field_diff(str(new["doctype"]), [f for f in fields if f not in _SKIP], old, new)
    changed += [
        [key, old.get(key), new.get(key)] for key in ("name", "docstatus") if old.get(key) != new.get(key)
    ]
    if not changed:
        return None
    return {"added": [], "changed": changed, "data_import": None, "removed": [], "row_changed": [],
            "updater_reference": None}  # fmt: skip


def version_data(diff: dict[str, Any]) -> str:
    """``frappe.as_json(diff, indent=None, separators=(",", ":"))``: sorted keys, ASCII escapes."""
    return json.dumps(diff, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
